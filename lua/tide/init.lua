-- tide: the public Lua API, also installed as globals by the host.
local core = require("tide.core")
local pool = require("tide.run.pool")
local sched = require("tide.run.sched")
local shell = require("tide.run.job")
local sweep = require("tide.sweep")

local M = {
  pool = pool.new,
  shell = shell.run,
  sleep = sched.sleep,
  version = core.version,
  stop = pool.stop,
  SKIPPED = pool.SKIPPED,
  KILLED = pool.KILLED,
}

-- Loaded when first used (start-up parses only what a run needs).
local LATER = {
  records = function()
    return require("tide.run.record").rows
  end,
  json = function()
    local json = require("tide.json")
    return { encode = json.encode, decode = json.decode, null = json.null }
  end,
  csv = function()
    return { write = require("tide.csv").write }
  end,
}
setmetatable(M, {
  __index = function(t, k)
    local make = LATER[k]
    if make then
      local v = make()
      rawset(t, k, v)
      return v
    end
  end,
})

-- The sweep library (sweep/): range, product, fmt, quote...
for name, f in pairs(sweep) do
  M[name] = f
end

return M
