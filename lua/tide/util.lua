-- util.lua: small rules shared by every layer, with no state of their own:
-- how /bin/sh reads a word, how an argument is described in an error, what
-- counts as callable, tide's own warnings, and the EPIPE rule for tide's
-- writes.  Requires only tide.core, so any module may require it.
local core = require("tide.core")

local M = {}

-- Quotes s as one /bin/sh word, only when needed.  One quoting rule for
-- every place that writes commands (shell()'s cmd strings, templates, the
-- job log, the far-end wrapper).
function M.quote(s)
  if s ~= "" and not s:find("[^%w_%./,:=+@%%^-]") then
    return s
  end
  return "'" .. s:gsub("'", [['\'']]) .. "'"
end

-- A value as an error message shows it: strings quoted, a table as what
-- it is rather than its address.
function M.describe(v)
  if type(v) == "string" then
    return ("'%s'"):format(v)
  elseif type(v) == "table" and not (getmetatable(v) and getmetatable(v).__tostring) then
    return next(v) == nil and "an empty table" or "a table"
  end
  return tostring(v)
end

-- A module loaded on first use, so that start-up loads only what a run
-- needs: load() requires it; the table returned reads and writes the
-- module's fields once it is loaded.
function M.lazy(load)
  local function bind(proxy)
    local mod = load()
    setmetatable(proxy, { __index = mod, __newindex = mod })
    return mod
  end
  return setmetatable({}, {
    __index = function(proxy, k)
      return bind(proxy)[k]
    end,
    __newindex = function(proxy, k, v)
      bind(proxy)[k] = v
    end,
  })
end

function M.callable(f)
  if type(f) == "function" then
    return true
  end
  local mt = getmetatable(f)
  return type(mt) == "table" and mt.__call ~= nil
end

-- Removes v from the array q (the queues of pools, gates and hosts).
function M.remove(q, v)
  for i = 1, #q do
    if q[i] == v then
      table.remove(q, i)
      return
    end
  end
end

-- A file's whole content, or nil if it cannot be read.
function M.slurp(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local s = f:read("a")
  f:close()
  return s
end

-- A warning of tide's own on stderr, after what the script printed.
function M.warn(msg)
  io.stdout:flush()
  io.stderr:write("tide: ", msg, "\n")
end

local EPIPE = core.errno.EPIPE

-- A write of tide's to its stdout that fails with EPIPE (`tide x.lua |
-- head`) ends tide quietly, as SIGPIPE ends lua: tide itself ignores
-- SIGPIPE because jobs' stdin pipes can close under it.  Takes a write's
-- results (ok, message, and the errno's name from core or its number
-- from Lua's io library) and returns them.
function M.checked(ok, msg, err)
  if not ok and (err == "EPIPE" or err == EPIPE) then
    core.die(core.SIGPIPE)
  end
  return ok, msg, err
end

-- A traceback as a user wants it: the frames of their own code.  tide's
-- own frames (chunks under tide/), the error() call and the C entry point
-- are dropped, so a misuse error points at the user's line and no further.
-- TIDE_TRACEBACK=1 keeps everything, for debugging tide itself.
function M.user_traceback(tb)
  if os.getenv("TIDE_TRACEBACK") == "1" then
    return tb
  end
  local out = {}
  for line in (tb .. "\n"):gmatch("(.-)\n") do
    if not (line:find("^\ttide/") or line == "\t[C]: in function 'error'" or line == "\t[C]: in ?") then
      out[#out + 1] = line
    end
  end
  return table.concat(out, "\n")
end

-- The edit distance between a and b (insertions, deletions, substitutions
-- and swaps of neighbours), for "did you mean" suggestions.
local function distance(a, b)
  local prev2, prev = {}, {}
  for j = 0, #b do
    prev[j] = j
  end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      local d = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        d = math.min(d, prev2[j - 2] + 1)
      end
      cur[j] = d
    end
    prev2, prev = prev, cur
  end
  return prev[#b]
end

-- The candidate closest to word (an array or the keys of a set), if one
-- is close enough to be what was meant; nil otherwise.
function M.closest(word, candidates)
  local list = candidates
  if candidates[1] == nil then
    list = {}
    for k in pairs(candidates) do
      if type(k) == "string" then
        list[#list + 1] = k
      end
    end
  end
  table.sort(list)
  local best, bestd = nil, math.max(1, math.min(3, #word // 3))
  for _, c in ipairs(list) do
    local d = distance(word, c)
    if d <= bestd and (not best or d < bestd) then
      best, bestd = c, d
    end
  end
  return best
end

-- Creates path and its missing parents with mode (default 0777 less the
-- umask); true, or nil and core.mkdir's message.  An existing directory
-- is fine.
function M.mkdir_p(path, mode)
  local pos = 2
  while true do
    local slash = path:find("/", pos, true)
    if not slash then
      break
    end
    core.mkdir(path:sub(1, slash - 1), mode)
    pos = slash + 1
  end
  return core.mkdir(path, mode)
end

return M
