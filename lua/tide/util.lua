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

-- A value as an error message shows it: strings quoted.
function M.describe(v)
  if type(v) == "string" then
    return ("'%s'"):format(v)
  end
  return tostring(v)
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
