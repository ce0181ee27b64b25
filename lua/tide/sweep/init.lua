-- sweep.lua: the sweep library in one table, what host.lua installs as
-- globals and init.lua exports: generators (seq, grid, files), random
-- search (random) and command templates (template).
local files = require("tide.sweep.files")
local grid = require("tide.sweep.grid")
local random = require("tide.sweep.random")
local seq = require("tide.sweep.seq")
local template = require("tide.sweep.template")

return {
  range = seq.range,
  product = grid.product,
  grid = grid.grid,
  zip = grid.zip,
  lines = files.lines,
  glob = files.glob,
  map = seq.map,
  filter = seq.filter,
  take = seq.take,
  chain = seq.chain,
  enumerate = seq.enumerate,
  collect = seq.collect,
  sample = random.sample,
  uniform = random.uniform,
  loguniform = random.loguniform,
  choice = random.choice,
  random_grid = random.random_grid,
  latin_hypercube = random.latin_hypercube,
  fmt = template.fmt,
  argv = template.argv,
  quote = template.quote,
}
