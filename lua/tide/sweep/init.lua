-- sweep.lua: the sweep library in one table, what host.lua installs as
-- globals and init.lua exports: generators (seq, grid, files), random
-- search (random) and command templates (template).
--
-- Each part is loaded when one of its functions is first called: a script
-- that uses range() alone does not pay for parsing the rest at start-up.
-- The functions here call the part's own by a tail call, so an error
-- raised at level 2 still points at the user's line.
local util = require("tide.util")

local parts = {
  files = util.lazy(function()
    return require("tide.sweep.files")
  end),
  grid = util.lazy(function()
    return require("tide.sweep.grid")
  end),
  random = util.lazy(function()
    return require("tide.sweep.random")
  end),
  seq = util.lazy(function()
    return require("tide.sweep.seq")
  end),
  template = util.lazy(function()
    return require("tide.sweep.template")
  end),
}

local M = {}
for part, names in pairs({
  seq = { "range", "map", "filter", "take", "chain", "enumerate", "collect" },
  grid = { "product", "grid", "zip" },
  files = { "lines", "glob" },
  random = { "sample", "uniform", "loguniform", "choice", "random_grid", "latin_hypercube" },
  template = { "fmt", "argv", "quote" },
}) do
  local mod = parts[part]
  for _, name in ipairs(names) do
    M[name] = function(...)
      return mod[name](...)
    end
  end
end

return M
