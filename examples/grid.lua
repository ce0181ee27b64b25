-- examples/grid.lua        run with:  tide examples/grid.lua [outdir]
-- A hyperparameter grid: my-program once per combination of learning rate
-- and depth, 4 at a time, each run's output in a file of its own under
-- outdir (default: a new temporary directory); then the scores, best last.
local here = arg[0]:match("^(.*)/") or "."
local out = arg[1] or (shell({ "mktemp", "-d" }, { capture = true }).stdout:gsub("\n$", ""))
shell({ "mkdir", "-p", out }, { check = true })

-- 3 x 3 = 9 combinations, depth varying slowest (names in sorted order).
-- prog is a fixed value: it rides along in every item.
local params = grid{
  lr = { 0.1, 0.01, 0.001 },
  depth = { 2, 4, 8 },
  prog = here .. "/my-program",
}

local results = pool(4):map(function(p)
  p.file = ("%s/lr=%s,depth=%s.txt"):format(out, p.lr, p.depth)
  -- fmt quotes every value it fills in: an outdir with spaces or quotes
  -- in its name still arrives as one word.
  shell(fmt("{prog} --lr {lr} --depth {depth} > {file}", p), { check = true })
  local f = assert(io.open(p.file)) -- "my-program ...: score N"
  p.score = tonumber(f:read("a"):match("score (%d+)"))
  f:close()
  return p
end, params)

table.sort(results, function(a, b) return a.score < b.score end)
print(("%-6s %-6s %5s  %s"):format("depth", "lr", "score", "file"))
for _, p in ipairs(results) do
  print(("%-6s %-6s %5d  %s"):format(p.depth, p.lr, p.score, p.file))
end
local best = results[#results]
print(("best: depth=%s lr=%s (score %d); %d result files in %s")
  :format(best.depth, best.lr, best.score, #results, out))
