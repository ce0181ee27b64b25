-- summary.lua: what the end of a run says on stderr.  When a job failed:
-- the line `tide: N of M jobs failed`, then the summary (jobs run,
-- succeeded, failed, skipped by resume, wall time, the first failures and
-- the slowest jobs); else the summary only if it was asked for (the
-- summary option, --summary, TIDE_SUMMARY=1).  run.job hands every final
-- result to note(), which keeps only what the summary shows.
local core = require("tide.core")
local result = require("tide.run.result")
local state = require("tide.state")

local M = {}

local MAX_FAILS = 5

-- A final result of a job that ran, failed or slower than
-- state.slow_floor: keeps the 3 slowest and the first failures.
function M.note(r)
  local stats = state
  if not r.ok then
    local fails = stats.fails
    if not fails then
      fails = {}
      stats.fails = fails
    end
    if #fails < MAX_FAILS then
      fails[#fails + 1] = result.outline(r)
    end
  end
  local e = r.elapsed
  if e and e > stats.slow_floor then
    local slow = stats.slow
    slow[#slow + 1] = { cmd = r.cmd, elapsed = e }
    table.sort(slow, function(a, b)
      return a.elapsed > b.elapsed
    end)
    slow[4] = nil
    if #slow == 3 then
      stats.slow_floor = slow[3].elapsed
    end
  end
end

-- "timed out", "SIGKILL" or "exit 3"
local function why(f)
  return (result.why(f):gsub("^killed by ", ""):gsub("^exit code", "exit"))
end

-- The summary lines.
local function summary(stats)
  local w = {}
  local ran = stats.jobs
  local failed, stopped = stats.failed, stats.stopped
  w[#w + 1] = ("tide: summary: %d jobs run, %d succeeded, %d failed, %s%d skipped by resume, %.3fs wall time\n")
    :format(ran, math.max(ran - failed - stopped, 0), failed, stopped > 0 and (stopped .. " stopped, ") or "",
      stats.resumed, core.now() - stats.t0)
  for _, f in ipairs(stats.fails or {}) do
    w[#w + 1] = ("tide:   failed (%s): %s\n"):format(why(f), f.cmd)
  end
  if failed > #(stats.fails or {}) and stats.fails then
    w[#w + 1] = ("tide:   ... and %d more failed\n"):format(failed - #stats.fails)
  end
  for i, s in ipairs(stats.slow) do
    w[#w + 1] = ("tide:   slowest #%d: %.3fs %s\n"):format(i, s.elapsed, s.cmd)
  end
  return table.concat(w)
end

-- At the end of a run, on stderr: when a job failed, the line `tide: N of
-- M jobs failed` and the summary; else the summary if it was asked for
-- (requested, or TIDE_SUMMARY=1).  requested = false (summary = false,
-- --no-summary) says nothing at all: the exit status still tells.
function M.report(requested)
  local stats = state
  local failed = stats.failed > 0
  if requested == false or not (failed or requested or os.getenv("TIDE_SUMMARY") == "1") then
    return
  end
  io.stdout:flush()
  io.stderr:write(failed and ("tide: %d of %d jobs failed\n"):format(stats.failed, stats.jobs) or "",
    summary(stats))
end

return M
