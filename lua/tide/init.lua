-- tide: the public Lua API, also installed as globals by the host.
local core = require("tide.core")
local csv = require("tide.csv")
local json = require("tide.json")
local pool = require("tide.run.pool")
local record = require("tide.run.record")
local sched = require("tide.run.sched")
local shell = require("tide.run.job")
local sweep = require("tide.sweep")

local M = {
  pool = pool.new,
  shell = shell.run,
  sleep = sched.sleep,
  version = core.version,
  stop = pool.stop,
  records = record.rows,
  json = { encode = json.encode, decode = json.decode, null = json.null },
  csv = { write = csv.write },
  SKIPPED = pool.SKIPPED,
  KILLED = pool.KILLED,
}

-- The sweep library (sweep/): range, product, fmt, quote...
for name, f in pairs(sweep) do
  M[name] = f
end

return M
