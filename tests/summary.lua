-- summary.lua: what tide's end-of-run summary on stderr looks like, as a
-- Lua pattern, for the specs that check a run's whole stderr.
local M = {}

local SECS = "%d+%.%d%d%ds"

local function lit(s)
  return (s:gsub("%p", "%%%0"))
end

-- The summary of a run where failed of run jobs failed (skipped by
-- resume: skipped; stopped by a halt or a stop: stopped, default 0),
-- anchored at both ends: the line `tide: N of M jobs
-- failed`, the counts, then one line per entry of fails ({why, cmd}, in
-- that order; an entry false matches any failed command), then `... and N
-- more failed` if more, then nslow slowest jobs (commands given in slow,
-- or any).  Without failures (failed = 0) it starts at the counts.
function M.pattern(failed, run, skipped, fails, nslow, slow, stopped)
  stopped = stopped or 0
  local p = { "^" }
  if failed > 0 then
    p[#p + 1] = ("tide: %d of %d jobs failed\n"):format(failed, run)
  end
  p[#p + 1] = ("tide: summary: %d jobs run, %d succeeded, %d failed, %s%d skipped by resume, %s wall time\n")
    :format(run, run - failed - stopped, failed, stopped > 0 and (stopped .. " stopped, ") or "", skipped, SECS)
  for _, f in ipairs(fails) do
    p[#p + 1] = f and ("tide:   failed %%(%s%%): %s\n"):format(lit(f[1]), lit(f[2])) or "tide:   failed %([^\n]+\n"
  end
  if failed > #fails then
    p[#p + 1] = ("tide:   %%.%%.%%. and %d more failed\n"):format(failed - #fails)
  end
  for i = 1, nslow do
    local cmd = slow and slow[i]
    p[#p + 1] = ("tide:   slowest #%d: %s %s\n"):format(i, SECS, cmd and lit(cmd) or "[^\n]+")
  end
  return table.concat(p) .. "$"
end

return M
