-- state.lua: the run's shared state, in one place.  Every module that
-- counts jobs or reads the counts requires this leaf; none keeps run-wide
-- figures in its own tables.  Only tide.core below it.
--
-- Who writes what:
--   run.job      jobs, failed, outside, outside_done (a job starts, ends)
--   run.joblog   resumed (a job skipped by resume)
--   run.summary  slow, slow_floor, fails (what the summary will show)
--   run.pool     halt_status, halt_failed (the first halt decides the exit)
--   host, pool   jobs_default (-j), summary (asked for), pool_defaults,
--                resume_records (options given before a script)
local core = require("tide.core")

local M = {
  t0 = core.now(), -- the run's clock: tide's start
  started = core.time(), -- the same moment in seconds since the epoch
  jobs = 0, -- jobs run (a job's retries are one job)
  failed = 0, -- of those, failed
  stopped = 0, -- of those, stopped on purpose by a halt or a stop (not failed)
  resumed = 0, -- jobs skipped because the job log says they ran
  outside = 0, -- jobs started outside any map (the status line counts them)
  outside_done = 0,
  slow = {}, -- the 3 slowest jobs, slowest first
  slow_floor = -1, -- the time a job must beat to be one of them
  fails = nil, -- the first failures, for the summary
  halt_status = nil, -- set by the first map that halted: tide's exit status
  halt_failed = nil, -- jobs failed when it halted
  summary = nil, -- true: a summary was asked for; false: none, even on failure
  jobs_default = nil, -- the -j of the command line
  -- tide [options] script.lua: the options every pool starts from, and
  -- --resume without --joblog, which resumes item records
  pool_defaults = nil,
  resume_records = nil,
  report = nil, -- true while a report or trace is being collected (run.report)
  command = nil, -- the command line, for the report's header
}

-- Default seconds between SIGTERM and SIGKILL when a job is stopped (a
-- timeout, a halt, Ctrl-C); the kill_grace option overrides it per job.
-- C's teardown (Ctrl-C, the end of a script) uses the same value.
M.KILL_GRACE = 2
core.configure({ kill_grace = M.KILL_GRACE })

-- Why a running job's task was cancelled, as sched.cancel carries it to
-- the job: a job stopped on purpose is not a failure.
M.ON_PURPOSE = { halt = true, stop = true }

-- The size of a pool given no size: -j, else the number of CPUs.
function M.default_jobs()
  return M.jobs_default or core.cpus()
end

return M
