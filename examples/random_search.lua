-- examples/random_search.lua    run with:  tide examples/random_search.lua [trials] [seed]
-- A random search: draws (lr, momentum, batch) at random, runs a stand-in
-- trainer on each, 4 at a time, reads the loss it prints and shows the
-- best.  The same seed draws the same trials on every machine.
local trials, seed = tonumber(arg[1]) or 20, tonumber(arg[2]) or 42

local space = random_grid({
  lr = loguniform(1e-4, 1e-1), -- spans orders of magnitude: sample its log
  momentum = uniform(0.5, 0.99),
  batch = choice{ 16, 32, 64, 128 },
}, trials, seed)

-- The trainer: an awk one-liner printing a few lines, one of them the
-- loss.  Its own braces are left alone: only {lr}-style placeholders
-- (whole names, with nothing but a path modifier) are filled in.
local TRAIN = [[awk -v lr={lr} -v m={momentum} -v b={batch} 'BEGIN {
  x = log(lr) / log(10) + 2.5
  print "epoch 1 done"
  printf "loss=%.5f\n", x * x + 4 * (m - 0.9) ^ 2 + (b - 64) ^ 2 / 40000 + 0.1 }']]

local runs = pool(4):map(function(p, i)
  local r = shell(fmt(TRAIN, p), { capture = true })
  p.loss = r.ok and tonumber(r.stdout:match("loss=(%S+)")) or math.huge
  p.trial = i
  return p
end, space)

table.sort(runs, function(a, b) return a.loss < b.loss end)
print("trial  loss      lr         momentum  batch")
for k = 1, math.min(5, #runs) do
  local p = runs[k]
  print(("%5d  %-8.5f  %-9.3e  %-8.4f  %d"):format(p.trial, p.loss, p.lr, p.momentum, p.batch))
end
local best = runs[1]
print(("best of %d: trial %d, loss %.5f (lr=%.3e momentum=%.4f batch=%d)")
  :format(#runs, best.trial, best.loss, best.lr, best.momentum, best.batch))
