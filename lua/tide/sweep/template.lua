-- template.lua: commands built from items without quoting bugs.
--
-- fmt(template, item [, i]) fills {name}, {1}, {} and {#} and shell-quotes
-- every value, so each arrives as exactly one argument whatever it holds;
-- argv(template, item [, i]) builds an argv table instead, for shell{...},
-- with no shell and no quoting at all.  GNU parallel's path modifiers work
-- on any field: {f.} {f/} {f//} {f/.}.
--
-- Only a well-formed placeholder is replaced; any other brace (awk's
-- '{print $1}', a shell's { ...; }) is left as it is, and {{name}} writes a
-- literal {name}.
local sh = require("tide.util") -- quote

local M = {}

-- Words that /bin/sh reads specially in command position even unquoted:
-- reserved words, and name=value (an assignment, not a command).
-- sh.quote leaves them bare, which is right for arguments; a value
-- substituted at the start of a command must stay a plain word too.
local RESERVED = {}
for w in ([[if then else elif fi case esac for while until do done in function
  select time]]):gmatch("%S+") do
  RESERVED[w] = true
end

-- quote(s): s as one /bin/sh word, quoted only when needed.
function M.quote(s)
  local t = type(s)
  if t == "number" then
    s = tostring(s)
  elseif t ~= "string" then
    error(("bad argument #1 to 'quote' (string expected, got %s)"):format(t == "nil" and "no value" or t), 2)
  end
  local q = sh.quote(s)
  if q == s and (RESERVED[s] or s:find("^[%a_][%w_]*=")) then
    q = "'" .. s .. "'" -- bare means no quote inside
  end
  return q
end

local MODIFIERS = { [""] = true, ["."] = true, ["/"] = true, ["//"] = true, ["/."] = true }

-- The contents of {...} as a placeholder {field, mod}, or nil if it is not
-- one.  field: a name, an index, "" for the item itself, or "#".
local function parse(c)
  if c == "#" then
    return { field = "#", mod = "" }
  end
  local field, mod = c:match("^([%a_][%w_]*)(.*)$")
  if field then
    -- {f.} would otherwise read as field "f" and mod "."; fine.  But a
    -- name then "." then more ({file.name}) is no placeholder.
    if not MODIFIERS[mod] then
      return nil
    end
    return { field = field, mod = mod }
  end
  field, mod = c:match("^(%d+)(.*)$")
  if field then
    if not MODIFIERS[mod] then
      return nil
    end
    return { field = tonumber(field), mod = mod }
  end
  if MODIFIERS[c] then
    return { field = "", mod = c }
  end
end

-- A template as a list of literal strings and placeholders.
local function compile(template)
  local parts, lit, pos = {}, {}, 1
  while true do
    local s = template:find("{", pos, true)
    if not s then
      break
    end
    lit[#lit + 1] = template:sub(pos, s - 1)
    local esc, e = template:match("^{{([^{}]*)}}()", s)
    local ph = esc and parse(esc)
    if ph then
      lit[#lit + 1] = "{" .. esc .. "}"
      pos = e
    else
      local c
      c, e = template:match("^{([^{}]*)}()", s)
      ph = c and parse(c)
      if ph then
        parts[#parts + 1] = table.concat(lit)
        parts[#parts + 1] = ph
        lit = {}
        pos = e
      else
        lit[#lit + 1] = "{"
        pos = s + 1
      end
    end
  end
  lit[#lit + 1] = template:sub(pos)
  parts[#parts + 1] = table.concat(lit)
  return parts
end

-- GNU parallel's path modifiers.  {.} removes the extension: from the last
-- dot of the last path component, unless that dot starts the component
-- (".bashrc" has none, as for Python's splitext; parallel would leave "").
local function strip_ext(p)
  local dir, base = p:match("^(.*/)([^/]*)$")
  if not dir then
    dir, base = "", p
  end
  local stem = base:match("^(.+)%.[^.]*$")
  if stem and stem:find("[^.]") then
    return dir .. stem
  end
  return p
end

local function basename(p)
  return (p:gsub("^.*/", ""))
end

-- dirname(1): "a/b" -> "a", "b" -> ".", "/b" -> "/", "a/b/" -> "a".
local function dirname(p)
  p = p:gsub("(.-)/+$", "%1")
  if p == "" then
    return "/" -- was "/" or "//..."
  end
  local d = p:match("^(.*)/[^/]*$")
  if d == nil then
    return "."
  end
  d = d:gsub("/+$", "")
  return d == "" and "/" or d
end

local function modify(s, mod)
  if mod == "." then
    return strip_ext(s)
  elseif mod == "/" then
    return basename(s)
  elseif mod == "//" then
    return dirname(s)
  elseif mod == "/." then
    return strip_ext(basename(s))
  end
  return s
end

local function describe(ph)
  local f = ph.field
  return "{" .. (f == "" and "" or tostring(f)) .. ph.mod .. "}"
end

-- A value as a string, or nil and why.
local function text(v, ph)
  local t = type(v)
  local s
  if t == "string" then
    s = v
  elseif t == "number" or t == "boolean" then
    s = tostring(v)
  else
    local mt = getmetatable(v)
    if type(mt) == "table" and mt.__tostring then
      s = tostring(v)
    else
      return nil, ("%s is a %s, not a string or a number"):format(describe(ph), t)
    end
  end
  if s:find("\0", 1, true) then
    return nil, describe(ph) .. " contains a NUL byte, which no argument can hold"
  end
  return modify(s, ph.mod)
end

-- The strings a placeholder stands for: one, or one per element for {}
-- on an array item (GNU parallel's {} with several inputs).  On failure:
-- nil, why, and the number of the argument to blame.
local function values(ph, item, i)
  local f = ph.field
  if f == "#" then
    if math.type(i) ~= "integer" then
      return nil, "{#} needs the item's number: fmt(template, item, i)", 3
    end
    return { tostring(i) }
  elseif item == nil then
    return nil, ("no item to fill %s"):format(describe(ph)), 2
  elseif f == "" then
    if type(item) == "table" and getmetatable(item) == nil then
      if item[1] == nil then
        return nil, ("%s needs a plain value or an array item; name a field, as in {name}")
          :format(describe(ph)), 2
      end
      local out = {}
      for k = 1, #item do
        local s, why = text(item[k], ph)
        if not s then
          return nil, why, 2
        end
        out[k] = s
      end
      return out
    end
    local s, why = text(item, ph)
    if not s then
      return nil, why, 2
    end
    return { s }
  end
  local v
  if type(item) == "table" then
    v = item[f]
  elseif f == 1 then
    v = item -- {1} of a plain value is the value, as in parallel
  else
    return nil, ("%s needs a table item, got a %s"):format(describe(ph), type(item)), 2
  end
  if v == nil then
    return nil, ("the item has no field %s for %s")
      :format(type(f) == "string" and "'" .. f .. "'" or tostring(f), describe(ph)), 2
  end
  local s, why = text(v, ph)
  if not s then
    return nil, why, 2
  end
  return { s }
end

local function check_template(template, fname)
  if type(template) ~= "string" then
    error(("bad argument #1 to '%s' (template string expected, got %s)")
      :format(fname, type(template)), 3)
  end
end

-- Fills a compiled template: strings stay, each placeholder becomes the
-- array of its values.  A bad field raises at the caller of fname.
local function fill(parts, item, i, fname)
  local out = {}
  for k = 1, #parts do
    local p = parts[k]
    if type(p) == "string" then
      out[k] = p
    else
      local vs, why, argn = values(p, item, i)
      if not vs then
        error(("bad argument #%d to '%s' (%s)"):format(argn, fname, why), 3)
      end
      out[k] = vs
    end
  end
  return out
end

function M.fmt(template, item, i)
  check_template(template, "fmt")
  local out = fill(compile(template), item, i, "fmt")
  for k = 1, #out do
    local vs = out[k]
    if type(vs) == "table" then
      for j = 1, #vs do
        vs[j] = M.quote(vs[j])
      end
      out[k] = table.concat(vs, " ")
    end
  end
  return table.concat(out)
end

-- argv(template, item [, i]): the template is split into words at
-- whitespace first (or given as an array of words), then each word is
-- filled in: a value is part of its word whatever it contains.  A word
-- that is just {} of an array item gives one argument per element.
function M.argv(template, item, i)
  local words
  if type(template) == "table" and getmetatable(template) == nil then
    words = {}
    for k = 1, #template do
      local w = template[k]
      if type(w) ~= "string" and type(w) ~= "number" then
        error(("bad argument #1 to 'argv' (word %d must be a string, got %s)"):format(k, type(w)), 2)
      end
      words[k] = tostring(w)
    end
  else
    check_template(template, "argv")
    words = {}
    for w in template:gmatch("%S+") do
      words[#words + 1] = w
    end
  end
  local argv = {}
  for _, w in ipairs(words) do
    local parts = compile(w)
    local whole = #parts == 3 and parts[1] == "" and parts[3] == ""
    local out = fill(parts, item, i, "argv")
    for k = 1, #out do
      if type(out[k]) == "table" and #out[k] ~= 1 and not whole then
        error(("bad argument #2 to 'argv' (%s of an array item must be a word of its own, "
          .. "to give one argument per element)"):format(describe(parts[k])), 2)
      end
    end
    if whole then
      for _, v in ipairs(out[2]) do
        argv[#argv + 1] = v
      end
    else
      for k = 1, #out do
        if type(out[k]) == "table" then
          out[k] = out[k][1]
        end
      end
      argv[#argv + 1] = table.concat(out)
    end
  end
  return argv
end

return M
