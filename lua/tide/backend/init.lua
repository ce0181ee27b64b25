-- backend/init.lua: where a job's command is launched.  Local spawning is the
-- default and needs nothing from here; with hosts (ssh.lua) or backend =
-- "slurm" (slurm.lua) a launcher turns each attempt into a local client
-- process (ssh, srun) that runs the job elsewhere, and everything else
-- (output modes, timeouts, retries, halts, the job log, resume) works on
-- that process as it does on a local job.
--
-- A launcher has place(slots, want) -> plan, the host or node the attempt
-- runs on with its slots taken there, and plan.grant, the ids of want's
-- resources there (want: {set, need, holder}, see run/resources.lua), or
-- nil and why when no place can run it; start(plan, argv, cmdstr, spec,
-- grace), which completes the plan with argv and spec to spawn here, or
-- plan.job, a job on a worker; finish(plan, r) -> the facts of how
-- the job ended there, for result.from_far_end (host, far, code, signal,
-- error), with lost = "lost" when the attempt must run again elsewhere
-- (its connection was lost), reading r but never changing it; abandon(plan)
-- when the attempt ends without finish (cancelled, or an error); and
-- cancel(plan, grace) when its job is being stopped (tide stops the local
-- client itself; this cancels what the engine may still hold after the
-- grace, e.g. a Slurm step).
local options = require("tide.run.options")
local state = require("tide.state")

local M = {}

local launchers = setmetatable({}, { __mode = "k" }) -- [hosts or slurm option] = launcher

-- The launcher for a job's options, or nil to spawn locally; nil and a
-- message if they contradict each other.
function M.launcher(pol)
  local why = options.backend_conflict(pol, true)
  if why then
    return nil, why
  end
  local hosts = pol.hosts
  local key = hosts or (pol.backend == "slurm" and (pol.slurm or M))
  if not key or pol.backend == "local" then
    return nil
  end
  local l = launchers[key]
  if not l then
    if hosts then
      -- ssh and Slurm are loaded only by the runs that use them
      l = require("tide.backend.ssh").launcher(pol, pol.hosts_each or state.default_jobs())
    else
      l = require("tide.backend.slurm").launcher(pol)
    end
    launchers[key] = l
  end
  return l
end

-- At the end of a script: closes ssh masters, reaps scancels.
function M.shutdown()
  for _, name in ipairs({ "tide.backend.ssh", "tide.backend.slurm" }) do
    local m = package.loaded[name]
    if m then
      m.shutdown()
    end
  end
end

return M
