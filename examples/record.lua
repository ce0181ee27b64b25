-- examples/record.lua    run with:  tide examples/record.lua [outdir]
-- A sweep whose results are data: every finished item is appended to a
-- record file as it ends, a rerun (after Ctrl-C, kill -9 or a crash) runs
-- only what has no "ok" record yet, the sweep stops early once the loss is
-- good enough, and the records become a CSV table for a spreadsheet or
-- pandas, and report.html shows the run at a glance.  Run it twice: the
-- second run runs nothing and prints the same.
local out = arg[1] or "."
local record = out .. "/sweep.jsonl"

-- A stand-in trainer: prints a few lines, one of them the loss.  Its loss
-- falls with depth and is best near lr = 0.01.
local TRAIN = [[sleep 0.1; awk -v lr={lr} -v d={depth} 'BEGIN {
  x = log(lr) / log(10) + 2
  printf "loss=%.4f\n", x * x + 1 / d }']]

-- Parameters in the order given: lr varies slowest.
local params = grid{ { "lr", { 0.1, 0.01, 0.001 } }, { "depth", { 1, 2, 4, 8 } } }

local results = pool{ jobs = 2, record = record, resume = true, report = out .. "/report.html" }:map(function(p)
  local r = shell(fmt(TRAIN, p), { capture = true })
  return { loss = tonumber(r.stdout:match("loss=(%S+)")) }
end, params, {
  -- stop once one is good enough: no new item starts, running ones are
  -- stopped, and none of that counts as a failure
  stop_when = function(v, p)
    return v.loss < 0.2 and ("loss %g at lr=%g depth=%d"):format(v.loss, p.lr, p.depth)
  end,
})

local done = 0
for i = 1, results.n do
  if type(results[i]) == "table" and results[i].loss then
    done = done + 1
  end
end
print(("%d of %d runs have a loss%s"):format(done, results.n,
  results.stopped and ("; stopped: " .. tostring(results.stopped)) or ""))
local rows = tide.csv.write(out .. "/sweep.csv", tide.records(record))
print(("%d records in %s, as CSV in %s/sweep.csv; the report: %s/report.html"):format(rows, record, out, out))
