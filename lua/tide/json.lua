-- json.lua: a small JSON encoder for what tide writes (results indexes,
-- summaries).  Every byte is escaped correctly: control bytes as \u00XX,
-- valid UTF-8 kept as it is, and each byte of invalid UTF-8 written as the
-- \u00XX of its Latin-1 code point, so the output is always valid JSON.
local M = {}

-- A value that encodes as null, for a field that must be present when it
-- has no value ({code = json.null}); a nil field is left out.
M.null = setmetatable({}, {
  __name = "json.null",
  __tostring = function()
    return "null"
  end,
})

local ESC = { [8] = "\\b", [9] = "\\t", [10] = "\\n", [12] = "\\f", [13] = "\\r",
  [34] = '\\"', [92] = "\\\\" }

local function utf8_at(s, i, c)
  local len = c >= 0xF0 and 4 or c >= 0xE0 and 3 or c >= 0xC2 and 2 or 0
  if len == 0 or i + len - 1 > #s then
    return nil
  end
  local seq = s:sub(i, i + len - 1)
  -- utf8.len is strict: it rejects overlong forms, surrogates, > U+10FFFF
  if utf8.len(seq) == 1 then
    return seq
  end
end

local function string_(s)
  if not s:find('[%z\1-\31"\\\128-\255]') then
    return '"' .. s .. '"'
  end
  local out, n, i = { '"' }, 1, 1
  while i <= #s do
    local c = s:byte(i)
    local piece
    local step = 1
    if c < 0x80 then
      piece = ESC[c] or (c < 0x20 and ("\\u%04x"):format(c)) or string.char(c)
    else
      piece = utf8_at(s, i, c)
      if piece then
        step = #piece
      else
        piece = ("\\u%04x"):format(c)
      end
    end
    n = n + 1
    out[n] = piece
    i = i + step
  end
  out[n + 1] = '"'
  return table.concat(out)
end

local function number(x)
  if math.type(x) == "integer" then
    return tostring(x)
  elseif x ~= x or x == math.huge or x == -math.huge then
    return "null" -- JSON has no NaN or infinity
  end
  return ("%.17g"):format(x)
end

local encode

-- An array when its keys are all within 1..n (n from t.n when present, so
-- nils keep their place), else
-- an object with its keys sorted, so the same table always encodes alike.
local function table_(t, seen)
  if seen[t] then
    error("json: cannot encode a table that contains itself", 0)
  end
  seen[t] = true
  local n = t.n
  local counted = math.type(n) == "integer"
  if not counted then
    n = #t
  end
  local array = true
  for k in pairs(t) do
    if not (counted and k == "n") and not (math.type(k) == "integer" and k >= 1 and k <= n) then
      array = false
      break
    end
  end
  local parts = {}
  if array then
    for i = 1, n do
      parts[i] = encode(t[i], seen)
    end
    seen[t] = nil
    return "[" .. table.concat(parts, ",") .. "]"
  end
  local keys = {}
  for k in pairs(t) do
    local tk = type(k)
    if tk ~= "string" and tk ~= "number" then
      error("json: cannot encode a key of type " .. tk, 0)
    end
    keys[#keys + 1] = k
  end
  table.sort(keys, function(a, b)
    return tostring(a) < tostring(b)
  end)
  for i, k in ipairs(keys) do
    parts[i] = string_(tostring(k)) .. ":" .. encode(t[k], seen)
  end
  seen[t] = nil
  return "{" .. table.concat(parts, ",") .. "}"
end

function encode(v, seen)
  local tv = type(v)
  if v == nil or v == M.null then
    return "null"
  elseif tv == "boolean" then
    return tostring(v)
  elseif tv == "number" then
    return number(v)
  elseif tv == "string" then
    return string_(v)
  elseif tv == "table" then
    return table_(v, seen)
  end
  error("json: cannot encode a " .. tv, 0)
end

-- json.encode(value) -> one line of JSON (no newline inside it).
function M.encode(v)
  return encode(v, {})
end

return M
