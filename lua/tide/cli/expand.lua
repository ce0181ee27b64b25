-- cli/expand.lua: the replacement strings of a one-liner that
-- template.fmt does not fill: {= lua =} always, and GNU parallel's --plus
-- ones with --plus.
--
-- compile(tpl, plus) cuts a command into pieces: strings, for
-- template.fmt, and functions of the job (ctx), each returning its text
-- already quoted for the shell (as it is with ctx.raw: -q's argv).  GNU's --plus strings are Perl
-- substitutions; tide does each in Lua with the same result.  The
-- bash-like ones take a pattern that GNU reads as a Perl regexp: tide
-- takes the part of that syntax that means the same in both (text, . * +
-- ? [...] and \ escapes) and refuses the rest rather than guess.
local template = require("tide.sweep.template")

local M = {}

-- Raised for a command line GNU parallel would read differently.
local function die(...)
  return M.die(...)
end

---------------------------------------------------------------------------
-- --plus, as GNU parallel 20221122 defines them (%Global::plus)

-- s:/[^/]*$:: || s:.*$:: and the like, on one argument.
local FIXED = {
  ["+/"] = function(v)
    return v:match("^(.*)/[^/]*$") or ""
  end,
  ["+."] = function(v)
    return v:match("^.*%.(.*)$") or ""
  end,
}
-- The last 2 or 3 extensions ({+..}), and the name without them ({..}),
-- or its basename without them ({/..}).
for n = 2, 3 do
  local dots = ("."):rep(n)
  local ext = "^.*%.(" .. ("[^/.]*%."):rep(n - 1) .. "[^/.]*)$"
  local stem = "^(.-)" .. ("%.[^/.]*"):rep(n) .. "$"
  FIXED["+" .. dots] = function(v)
    return v:match(ext) or ""
  end
  FIXED[dots] = function(v)
    return v:match(stem) or v
  end
  FIXED["/" .. dots] = function(v)
    v = v:match("[^/]*$")
    return v:match(stem) or v
  end
end

-- A Perl regexp of the common subset as a Lua pattern.
local function pattern(re, what)
  local out, i = {}, 1
  while i <= #re do
    local c = re:sub(i, i)
    if c == "\\" and i < #re then
      local n = re:sub(i + 1, i + 1)
      out[#out + 1] = n:find("%w") and die("--plus %s: the escape \\%s is Perl's, not supported", what, n)
        or "%" .. n
      i = i + 1
    elseif c == "[" then
      local close = re:find("]", i + 2, true)
      if not close then
        die("--plus %s: unclosed [", what)
      end
      out[#out + 1] = re:sub(i, close):gsub("%%", "%%%%")
      i = close
    elseif c == "." or c == "*" or c == "+" or c == "?" then
      out[#out + 1] = c
    elseif c:find("[%(%)|{}^$]") then
      die("--plus %s: '%s' in a pattern is Perl's regexp syntax, which tide does not take "
        .. "(text, . * + ? [...] and \\ escapes are)", what, c)
    else
      out[#out + 1] = c:find("%p") and "%" .. c or c
    end
    i = i + 1
  end
  return table.concat(out)
end

local function literal(s)
  return (s:gsub("%%", "%%%%"))
end

-- The first k such that v:sub(k) matches whole, k from a to b by step.
local function suffix_at(v, pat, a, b, step)
  for k = a, b, step do
    if v:sub(k):find("^" .. pat .. "$") then
      return k
    end
  end
end

-- The bash-inspired ones: {:-x} {:n} {:n:m} {#re} {##re} {%re} {%%re}
-- {/re/s} {/#re/s} {/%re/s} {//re/s} {^re} {^^re} {,re} {,,re}.  Returns
-- a function of one argument, or nil if body is none of them.
local function bashlike(body)
  local what = "{" .. body .. "}"
  local x = body:match("^:%-(.+)$")
  if x then
    return function(v) -- Perl's ||=: "" and "0" are false
      return (v == "" or v == "0") and x or v
    end
  end
  local n, m = body:match("^:(%d+):(%d+)$")
  if n then
    n, m = tonumber(n), tonumber(m)
    return function(v)
      return v:sub(n + 1, n + m)
    end
  end
  n = body:match("^:(%d+)$")
  if n then
    n = tonumber(n)
    return function(v)
      return v:sub(n + 1)
    end
  end
  local re = body:match("^##([^#].*)$")
  if re then -- the longest prefix
    local p = pattern(re, what)
    return function(v)
      return (v:gsub("^" .. p, "", 1))
    end
  end
  re = body:match("^#([^#].*)$")
  if re then -- the shortest prefix
    local p = pattern(re, what)
    return function(v)
      for k = 0, #v do
        if v:sub(1, k):find("^" .. p .. "$") then
          return v:sub(k + 1)
        end
      end
      return v
    end
  end
  re = body:match("^%%%%(.+)$")
  if re then -- the longest suffix
    local p = pattern(re, what)
    return function(v)
      local k = suffix_at(v, p, 1, #v + 1, 1)
      return k and v:sub(1, k - 1) or v
    end
  end
  re = body:match("^%%(.+)$")
  if re then -- the shortest suffix
    local p = pattern(re, what)
    return function(v)
      local k = suffix_at(v, p, #v + 1, 1, -1)
      return k and v:sub(1, k - 1) or v
    end
  end
  local how, rep
  how, re, rep = body:match("^/([/#%%]?)([^/]+)/(.*)$")
  if how and not (how == "" and re:find("[#%%]")) then
    local p, r = pattern(re, what), literal(rep)
    if how == "#" then
      p = "^" .. p
    elseif how == "%" then
      p = p .. "$"
    end
    if how == "/" then
      return function(v)
        return (v:gsub(p, r))
      end
    end
    return function(v)
      return (v:gsub(p, r, 1))
    end
  end
  local case, twice
  case, twice, re = body:match("^([%^,])([%^,]?)(.+)$")
  if case and (twice == "" or twice == case) then
    local p, f = pattern(re, what), case == "^" and string.upper or string.lower
    if twice == "" then
      p = "^" .. p
    end
    return function(v)
      return (v:gsub(p, f, twice == "" and 1 or nil))
    end
  end
end

-- The job-level ones: {##} {0#} {0%} {slot}, and the filters {choose_k}
-- and {uniq} (each also stands for {}).
local JOB = {
  ["##"] = function(ctx)
    return tostring(ctx.total)
  end,
  ["0#"] = function(ctx) -- as wide as the number of jobs, by GNU's formula
    local w = 1 + math.floor(math.log(math.max(ctx.total, 1)) / math.log(10))
    return ("%0" .. w .. "d"):format(ctx.i)
  end,
  ["0%"] = function(ctx)
    local w = 1 + math.floor(math.log(math.max(ctx.slots, 1)) / math.log(10))
    return ("%0" .. w .. "d"):format(ctx.slot)
  end,
  slot = function(ctx)
    return tostring(ctx.slot)
  end,
}

-- The ones GNU has that tide leaves out: its hosts' environment.
local NOT = { host = true, sshlogin = true, hgrp = true, agrp = true }

-- The --plus strings that look like {name}: not --header columns.
M.NAMES = { slot = true, choose_k = true, uniq = true }
for name in pairs(NOT) do
  M.NAMES[name] = true
end

-- Every argument with f applied, each quoted, joined by spaces; or the
-- kth argument's (k < 0 counts from the end), "" when there is none.
local function each(f, k)
  return function(ctx)
    local item, quote = ctx.item, ctx.raw and tostring or template.quote
    if k then
      local v = item[k < 0 and #item + 1 + k or k]
      return quote(v and f(v) or "")
    end
    local out = {}
    for j, v in ipairs(item) do
      out[j] = quote(f(v))
    end
    return table.concat(out, " ")
  end
end

local function same(v)
  return v
end

-- The function for {num body} with --plus, or nil when it is not one of
-- them (then it stays for template.fmt).  flags collects needs_total and
-- filter.
local function plus_string(num, body, flags)
  if JOB[num .. body] then
    flags.total = flags.total or (num .. body):find("#") ~= nil
    return JOB[num .. body]
  end
  local k = num ~= "" and tonumber(num) or nil
  local f = FIXED[body] or bashlike(body)
  if f then
    return each(f, k)
  end
  if k then
    return nil
  end
  if body == "choose_k" or body == "uniq" then
    flags.filter = body
    return each(same)
  elseif NOT[body] then
    die("tide does not implement GNU parallel's --plus {%s}", body)
  end
end

---------------------------------------------------------------------------

-- {= code =}: GNU parallel's are Perl; tide's are Lua, an expression with
-- _ bound to the job's arguments ({}), evaluated for each job, its value
-- quoted as {} is.
local function lua_expr(code)
  local f, err = load("local _ = ...\nreturn " .. code, "={=" .. code .. "=}", "t",
    setmetatable({}, { __index = _G }))
  if not f then
    die("{=%s=} is not a Lua expression: %s (tide's {= =} are Lua, with _ the argument: {= _:upper() =}; "
      .. "GNU parallel's are Perl)", code, err:gsub("^[^:]*:%d+: ", ""))
  end
  return function(ctx)
    local ok, v = pcall(f, table.concat(ctx.item, " "))
    if not ok then -- raised in a job's task: a plain message, exit 255
      error(("{=%s=}: %s"):format(code, tostring(v):gsub("^[^:]*:%d+: ", "")), 0)
    end
    v = v == nil and "" or tostring(v)
    return ctx.raw and v or template.quote(v)
  end
end

-- The pieces of tpl, or nil when it has nothing for this module.  The
-- list's fields: total (a piece needs the number of jobs) and filter
-- ("choose_k" or "uniq": some jobs are skipped).
function M.compile(tpl, plus)
  if not tpl:find("{=", 1, true) and not plus then
    return nil
  end
  local parts, flags, pos, lit = {}, {}, 1, 1
  local found = false
  while true do
    local a = tpl:find("{", pos, true)
    if not a then
      break
    end
    local code, z = tpl:match("^{=(.-)=}()", a)
    local f
    if code then
      f = lua_expr(code)
    elseif plus then
      local num, body
      num, body, z = tpl:match("^{(%-?%d*)([^{}]+)}()", a)
      f = body and plus_string(num, body, flags)
    end
    if f then
      found = true
      if a > lit then
        parts[#parts + 1] = tpl:sub(lit, a - 1)
      end
      parts[#parts + 1] = f
      pos, lit = z, z
    else
      pos = a + 1
    end
  end
  if not found then
    return nil
  end
  if lit <= #tpl then
    parts[#parts + 1] = tpl:sub(lit)
  end
  parts.total, parts.filter = flags.total, flags.filter
  return parts
end

-- Whether a job's arguments pass the filter: {choose_k}, strictly
-- increasing (as strings); {uniq}, no two the same.
function M.keep(filter, item)
  if filter == "choose_k" then
    for t = 2, #item do
      if item[t - 1] >= item[t] then
        return false
      end
    end
  elseif filter == "uniq" then
    local seen = {}
    for _, v in ipairs(item) do
      if seen[v] then
        return false
      end
      seen[v] = true
    end
  end
  return true
end

return M
