-- examples/sweep.lua        run with:  tide examples/sweep.lua
-- Runs my-program over three parameter sets, 4 at a time.
local here = arg[0]:match("^(.*)/") or "."
local program = here .. "/my-program"

local args = {"-foo 123", "-bar 456", "-baz 789"}
local results = pool(4):map(function(a)
  return shell(program .. " " .. a)
end, args)
for i, r in ipairs(results) do print(args[i], r.code) end
