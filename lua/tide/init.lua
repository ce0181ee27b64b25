-- tide: the public Lua API, also installed as globals by the host.
local core = require("tide.core")
local pool = require("tide.pool")
local sched = require("tide.sched")
local shell = require("tide.shell")

local M = {
  pool = pool.new,
  shell = shell.run,
  sleep = sched.sleep,
  version = core.version,
  SKIPPED = pool.SKIPPED,
  KILLED = pool.KILLED,
}

-- The sweep library (sweep.lua): range, product, fmt, quote...
for name, f in pairs(require("tide.sweep")) do
  M[name] = f
end

return M
