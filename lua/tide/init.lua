-- tide: the public Lua API, also installed as globals by the host.
local core = require("tide.core")
local pool = require("tide.pool")
local sched = require("tide.sched")
local shell = require("tide.shell")

return {
  pool = pool.new,
  shell = shell.run,
  sleep = sched.sleep,
  quote = shell.quote,
  version = core.version,
  SKIPPED = pool.SKIPPED,
  KILLED = pool.KILLED,
}
