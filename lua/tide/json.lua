-- json.lua: JSON for what tide writes and reads back (item records,
-- results indexes), public as tide.json.
--
-- encode: every byte is escaped correctly: control bytes as \u00XX, valid
-- UTF-8 kept as it is, and each byte of invalid UTF-8 written as the
-- \u00XX of its Latin-1 code point, so the output is always valid JSON.
-- Numbers are written in the fewest digits that read back as the same
-- number (0.1 is 0.1), integers as integers.  Object keys are sorted, so
-- equal tables encode alike: the encoding is a canonical key.
--
-- decode: strict RFC 8259; integers that fit come back as Lua integers;
-- null is nil (an array keeps its length in n when it has a null).
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
  for digits = 15, 16 do
    local s = ("%." .. digits .. "g"):format(x)
    if tonumber(s) == x then
      return s
    end
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

-- json.quote(s) -> s as a JSON string, quotes included.
M.quote = string_

-- json.encode(value) -> one line of JSON (no newline inside it).
function M.encode(v)
  return encode(v, {})
end

---------------------------------------------------------------------------
-- Decoding

local UNESC = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local decode_at

local function fail(s, i, what)
  local line = select(2, s:sub(1, i):gsub("\n", "")) + 1
  error(("json: %s at line %d, byte %d"):format(what, line, i), 0)
end

local function skip(s, i)
  return s:find("[^ \t\r\n]", i) or #s + 1
end

local function string_at(s, i)
  local out, n = {}, 0
  local j = i + 1
  while true do
    local k = s:find('["\\%z\1-\31]', j)
    if not k then
      fail(s, i, "unterminated string")
    end
    n = n + 1
    out[n] = s:sub(j, k - 1)
    local c = s:sub(k, k)
    if c == '"' then
      return table.concat(out), k + 1
    elseif c ~= "\\" then
      fail(s, k, "control character in a string")
    end
    local e = s:sub(k + 1, k + 1)
    if e == "u" then
      local hex = s:match("^%x%x%x%x", k + 2)
      if not hex then
        fail(s, k, "bad \\u escape")
      end
      local cp = tonumber(hex, 16)
      local after = k + 6
      if cp >= 0xD800 and cp < 0xDC00 then
        local lo = s:match("^\\u([dD][c-fC-F]%x%x)", after)
        if lo then
          cp = 0x10000 + (cp - 0xD800) * 0x400 + (tonumber(lo, 16) - 0xDC00)
          after = after + 6
        end
      end
      n = n + 1
      out[n] = utf8.char(cp)
      j = after
    elseif UNESC[e] then
      n = n + 1
      out[n] = UNESC[e]
      j = k + 2
    else
      fail(s, k, "bad escape")
    end
  end
end

local function number_at(s, i)
  local int, after = s:match("^(-?%d+)()", i)
  if not int or int:find("^-?0%d") then
    fail(s, i, "bad number")
  end
  after = s:match("^%.%d+()", after) or after
  after = s:match("^[eE][-+]?%d+()", after) or after
  local v = tonumber(s:sub(i, after - 1)) -- an integer that fits stays one
  return v, after
end

local LITERALS = { t = { "true", true }, f = { "false", false }, n = { "null", nil } }

function decode_at(s, i, depth)
  if depth > 200 then
    fail(s, i, "nesting too deep")
  end
  i = skip(s, i)
  local c = s:sub(i, i)
  if c == "{" then
    local t = {}
    i = skip(s, i + 1)
    if s:sub(i, i) == "}" then
      return t, i + 1
    end
    while true do
      if s:sub(i, i) ~= '"' then
        fail(s, i, "object key expected")
      end
      local k
      k, i = string_at(s, i)
      i = skip(s, i)
      if s:sub(i, i) ~= ":" then
        fail(s, i, "':' expected")
      end
      t[k], i = decode_at(s, i + 1, depth + 1)
      i = skip(s, i)
      c = s:sub(i, i)
      if c == "}" then
        return t, i + 1
      elseif c ~= "," then
        fail(s, i, "',' or '}' expected")
      end
      i = skip(s, i + 1)
    end
  elseif c == "[" then
    local t, n, holes = {}, 0, false
    i = skip(s, i + 1)
    if s:sub(i, i) == "]" then
      return t, i + 1
    end
    while true do
      local v
      v, i = decode_at(s, i, depth + 1)
      n = n + 1
      t[n] = v
      holes = holes or v == nil
      i = skip(s, i)
      c = s:sub(i, i)
      if c == "]" then
        if holes then
          t.n = n
        end
        return t, i + 1
      elseif c ~= "," then
        fail(s, i, "',' or ']' expected")
      end
      i = i + 1
    end
  elseif c == '"' then
    return string_at(s, i)
  elseif c == "-" or c:find("%d") then
    return number_at(s, i)
  end
  local lit = LITERALS[c]
  if lit and s:sub(i, i + #lit[1] - 1) == lit[1] then
    return lit[2], i + #lit[1]
  end
  fail(s, i, c == "" and "unexpected end" or "unexpected character")
end

-- json.decode(text) -> value; raises "json: ... at line L, byte B" on
-- anything that is not exactly one JSON value.
function M.decode(s)
  if type(s) ~= "string" then
    error(("bad argument #1 to 'decode' (string expected, got %s)"):format(type(s)), 2)
  end
  local v, i = decode_at(s, 1, 0)
  i = skip(s, i)
  if i <= #s then
    fail(s, i, "trailing characters")
  end
  return v
end

return M
