-- backend.lua: where a job's command is launched.  Local spawning is the
-- default and needs nothing from here; with hosts (ssh.lua) or backend =
-- "slurm" (slurm.lua) a launcher turns each attempt into a local client
-- process (ssh, srun) that runs the job elsewhere, and everything else
-- (output modes, timeouts, retries, halts, the job log, resume) works on
-- that process as it does on a local job.
--
-- A launcher has start(argv, cmdstr, spec, slots, grace) -> plan (argv and
-- spec to spawn here) or nil and why; finish(plan, r) -> true when the
-- attempt must run again elsewhere (its connection was lost); abandon(plan)
-- when the attempt ends without finish (cancelled, or an error); and
-- cancel(plan, grace) when its job is being stopped (tide stops the local
-- client itself; this cancels what the engine may still hold after the
-- grace, e.g. a Slurm step).
local M = {}

local launchers = setmetatable({}, { __mode = "k" }) -- [hosts or slurm option] = launcher

-- Checks that an options table's backend, hosts and slurm agree; returns
-- nil or a message for "bad argument".  whole: the table has every option
-- that applies (a pool's); a map's or a job's may inherit the rest.
function M.conflict(opts, whole)
  local b = opts.backend
  if opts.hosts and (b == "local" or b == "slurm") then
    return ("option 'hosts' runs jobs through ssh, but option 'backend' is '%s'"):format(b)
  elseif opts.slurm and (b == "local" or b == "ssh" or opts.hosts or (whole and b ~= "slurm")) then
    return "option 'slurm' needs backend = 'slurm'"
  elseif whole and b == "ssh" and not opts.hosts then
    return M.NO_HOSTS
  end
end

M.NO_HOSTS = "option 'backend' is 'ssh' but no 'hosts' are given (e.g. hosts = {'node1', '4/node2'})"

-- The launcher for a job's options, or nil to spawn locally; nil and a
-- message if they contradict each other.
function M.launcher(pol)
  local why = M.conflict(pol, true)
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
      l = require("tide.ssh").launcher(pol, pol.hosts_each or require("tide.pool").default_jobs())
    else
      l = require("tide.slurm").launcher(pol)
    end
    launchers[key] = l
  end
  return l
end

-- At the end of a script: closes ssh masters, reaps scancels.
function M.shutdown()
  for _, name in ipairs({ "tide.ssh", "tide.slurm" }) do
    local m = package.loaded[name]
    if m then
      m.shutdown()
    end
  end
end

-- The job options of this file, for control.JOB.
function M.options(JOB)
  JOB.backend = function(v)
    if v == "local" or v == "ssh" or v == "slurm" then
      return v
    end
    return nil, "'local', 'ssh' or 'slurm'"
  end
  JOB.hosts = function(v)
    return require("tide.ssh").check(v)
  end
  local function words(what)
    return function(v)
      if type(v) == "string" and v:find("%S") then
        local list = {}
        for w in v:gmatch("%S+") do
          list[#list + 1] = w
        end
        return list
      elseif type(v) == "table" then
        for i = 1, #v do
          if type(v[i]) ~= "string" then
            return nil, what
          end
        end
        if #v > 0 or what:find("srun") then
          return v
        end
      end
      return nil, what
    end
  end
  JOB.ssh = words("an ssh command such as 'ssh -F my_config' or an argv table")
  JOB.slurm = words("a list of srun options such as {'--mem=4G', '--time=10'}")
end

return M
