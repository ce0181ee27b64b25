-- host.lua: what the C host asks of the Lua half: set-up before the script
-- and the exit status after it.
local core = require("tide.core")

local M = {}

local EPIPE = 32

-- print and io.write to a closed pipe (`tide x.lua | head`) end tide
-- quietly, as SIGPIPE ends lua; tide itself must ignore SIGPIPE because
-- jobs' stdin pipes can close under it.
local function check_pipe(ok, msg, code)
  if not ok and code == EPIPE then
    core.die(core.SIGPIPE)
  end
  return ok, msg, code
end

local function install_pipe_checks()
  local stdout, write = io.stdout, io.write
  local methods = getmetatable(stdout).__index
  local fwrite = methods.write
  methods.write = function(f, ...)
    if f == stdout then
      return check_pipe(fwrite(f, ...))
    end
    return fwrite(f, ...)
  end
  _G.print = function(...)
    local n = select("#", ...)
    local parts = { ... }
    for i = 1, n do
      parts[i] = tostring(parts[i])
    end
    check_pipe(stdout:write(table.concat(parts, "\t", 1, n), "\n"))
  end
  io.write = function(...) -- luacheck: ignore 122
    return check_pipe(write(...))
  end
end

-- jobs: the -j value, 0 when not given.
function M.setup(jobs)
  if jobs > 0 then
    core.jobs = jobs
  end
  install_pipe_checks()
  local tide = require("tide")
  _G.pool, _G.shell = tide.pool, tide.shell
  for name in pairs(require("tide.sweep")) do
    _G[name] = tide[name]
  end
end

-- Returns tide's exit status once the script has run to its end: 1 if a
-- job failed, else 0; but the first map that halted decides (the failing
-- job's own status for fail=1, 0 for success=..., see pool.lua), except
-- that a job failing after a halt that gave 0 makes it 1.
function M.finish()
  local stats = require("tide.shell").stats
  local status = stats.halt_status
  if status == nil or (status == 0 and stats.failed > stats.halt_failed) then
    status = stats.failed > 0 and 1 or 0
  end
  if status ~= 0 and stats.failed > 0 then
    io.stdout:flush()
    io.stderr:write(("tide: %d of %d jobs failed\n"):format(stats.failed, stats.jobs))
  end
  return status
end

return M
