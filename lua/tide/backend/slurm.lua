-- slurm.lua: running each job through Slurm's srun (backend = "slurm").
--
-- Inside an allocation (SLURM_JOB_ID is set: under salloc or sbatch) a job
-- is a step, `srun --exact -n1`: it starts in tens of milliseconds and uses
-- one of the allocation's CPUs.  Outside one, each job is `srun -n1`, its
-- own allocation, which costs a scheduling round trip (about 45 ms on an
-- idle single-node cluster, far more on a busy one).  The pool's size is
-- how many run at once; the slurm option adds srun options (--mem, --time,
-- --partition...).
--
-- The job runs under remote.lua's wrapper, which writes its exact status
-- (and JOBID.STEPID, for scancel) into a directory that the compute nodes
-- must share with this machine, like any Slurm output file:
-- $TIDE_SLURM_DIR, default ~/.cache/tide.  If srun fails before the job
-- starts (no allocation, bad options), its own exit code and messages are
-- the result.
local core = require("tide.core")
local private = require("tide.backend.private")
local remote = require("tide.backend.remote")
local sched = require("tide.run.sched")
local util = require("tide.util")

local M = {}

local rundir -- this tide's status files
local cancels = {} -- scancel jobs not yet reaped

local function status_dir()
  if rundir then
    return rundir
  end
  local base = os.getenv("TIDE_SLURM_DIR") or ((os.getenv("HOME") or "/tmp") .. "/.cache/tide")
  util.mkdir_p(base, tonumber("700", 8)) -- an existing one is fine if it is safe
  rundir = private.make(base, "slurm-", "Slurm status files (set TIDE_SLURM_DIR)")
  return rundir
end

-- A status file's content; the file is removed.
local function take(path)
  local s = util.slurp(path)
  os.remove(path)
  return s
end

function M.launcher(pol)
  local L = {}
  local extra = pol.slurm or {}

  function L.start(_, cmdstr, spec, w, grace)
    local plan = { status = remote.status_name(status_dir()), remote = true }
    local inside = os.getenv("SLURM_JOB_ID")
    local argv = inside and { "srun", "-Q", "--exact", "-n1", "-N1" }
      or { "srun", "-Q", "-n1", "-N1", "--job-name=tide" }
    if w > 1 then
      argv[#argv + 1] = "--cpus-per-task=" .. w
    end
    for _, o in ipairs(extra) do
      argv[#argv + 1] = o
    end
    argv[#argv + 1] = "--"
    for _, word in ipairs(remote.words(cmdstr, spec, plan.status, grace, true)) do
      argv[#argv + 1] = word
    end
    plan.argv, plan.spec = argv, remote.client_spec(spec)
    return plan
  end

  function L.finish(plan)
    plan.ended = true
    os.remove(plan.status .. ".id")
    -- the wrapper writes a status for every end; none: srun itself failed
    local code, signal = remote.decode(take(plan.status))
    return { host = "slurm", far = true, code = code, signal = signal }
  end

  function L.abandon(plan)
    plan.ended = true
    os.remove(plan.status)
    os.remove(plan.status .. ".id")
  end

  -- A cancelled job (a halt, an error in its map) is stopped by its
  -- wrapper with the kill grace, and tide kills srun a little later (a
  -- queued srun then withdraws its job).  If the step is still there when
  -- the grace is over, scancel ends it: a step does not always end with
  -- its srun.
  function L.cancel(plan, grace)
    sched.spawn(function()
      sched.sleep(grace)
      local f = not plan.ended and io.open(plan.status .. ".id")
      local id = f and f:read("l")
      if f then
        f:close()
      end
      if id and id:match("^%d+%.%d+$") then
        local job = core.spawn({ "scancel", id }, { stdout = "null", stderr = "null" })
        if job then
          cancels[#cancels + 1] = job
        end
      end
    end, function() end)
  end

  return L
end

-- At the end of a script: reaps the scancels and removes the directory.
function M.shutdown()
  for _, job in ipairs(cancels) do
    sched.await(job)
    job:release()
  end
  cancels = {}
  if rundir then
    os.remove(rundir)
    rundir = nil
  end
end

M.guard = setmetatable({}, {
  __gc = function()
    if rundir then
      os.remove(rundir) -- only if empty: status files of killed jobs stay
    end
  end,
})

return M
