-- slurm.lua: running jobs through Slurm (backend = "slurm").
--
-- By default a job runs on a tide worker (worker.lua), one per node of
-- the allocation, each started as one job step: `srun -N1 -n1 -w NODE -u
-- tide --worker`, with its stdio forwarded by srun.  Steps and
-- submissions are O(nodes), never O(jobs), and nothing polls Slurm per
-- job.  Inside an allocation (SLURM_JOB_ID is set) the workers run on its
-- nodes; outside one, each worker is an srun of its own, `srun -N1 -n1
-- -c SLOTS`, which asks for an allocation of one node for it (the slurm
-- option's nodes field says how many such workers, time, partition and
-- account go with each).  Such an allocation is the worker's step's:
-- it ends when the worker does, when tide closes its stdin or dies, even
-- by kill -9, so none outlives tide.  Jobs go to the workers that are up
-- as soon as one is.  A node whose worker is lost (killed, its step
-- cancelled) is down: its running jobs are lost and run again on the
-- others.
--
-- With workers = false, or where no worker can start (a node without
-- tide at this path), each job is its own srun, as follows.
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
local resources = require("tide.run.resources")
local sched = require("tide.run.sched")
local state = require("tide.state")
local util = require("tide.util")
local worker = require("tide.backend.worker")

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

-- Runs argv to its end: code, stdout, stderr.
local function run(argv)
  local job, msg = core.spawn(argv)
  if not job then
    return nil, "", msg
  end
  sched.await(job)
  local code = job:result()
  local out, err = job:output("stdout"), job:output("stderr")
  job:release()
  return code, out, err
end

local function last_line(s)
  return ((s or ""):gsub("%s+$", ""):match("[^\n]*$"))
end

-- The node names of a Slurm node list ("tide[1-3]").
local function hostnames(list)
  local code, out, err = run({ "scontrol", "show", "hostnames", list })
  if code ~= 0 then
    return nil, last_line(err)
  end
  local names = {}
  for name in out:gmatch("%S+") do
    names[#names + 1] = name
  end
  return names
end

-- The set of workers of one slurm option: one per node, started by the
-- first job while the others wait.
local fleets = {}

local function start_fleet(f, extra, ntasks)
  local self = core.self()
  if not self then
    return nil, "tide runs as a Lua module (tide.so): there is no tide executable to start"
  end
  local id = os.getenv("SLURM_JOB_ID")
  local argvs = {}
  if id then -- in the allocation: a step on each of its nodes
    local nodes, why = hostnames(os.getenv("SLURM_JOB_NODELIST") or "")
    if not nodes then
      return nil, why
    end
    for _, node in ipairs(nodes) do
      local argv = { "srun", "-Q", "-u", "--jobid=" .. id, "-N1", "-n1", "-w", node, "--job-name=tide-worker" }
      table.move(extra, 1, #extra, #argv + 1, argv)
      argvs[#argvs + 1] = argv
    end
  else -- an allocation of one node for each worker, its step's own
    local nodes = extra.nodes or 1
    local argv = { "srun", "-Q", "-u", "-N1", "-n1", "--job-name=tide-worker",
      "--cpus-per-task=" .. math.ceil(ntasks / nodes) }
    for _, field in ipairs({ "time", "partition", "account" }) do
      if extra[field] then
        argv[#argv + 1] = ("--%s=%s"):format(field, extra[field])
      end
    end
    table.move(extra, 1, #extra, #argv + 1, argv)
    for _ = 1, nodes do
      argvs[#argvs + 1] = argv
    end
  end
  for _, a in ipairs(argvs) do
    local argv = table.move(a, 1, #a, 1, {})
    table.move({ "--", self, "--worker" }, 1, 3, #argv + 1, argv)
    f[#f + 1] = { conn = worker.open(argv), busy = 0, res = setmetatable({}, { __mode = "k" }) }
  end
  local conns = {}
  for i, n in ipairs(f) do
    conns[i] = n.conn
  end
  local up, why = worker.ready_any(conns)
  return up, why
end

-- The fleet of workers for these options; nil and why if none can run.
local function fleet(key, extra, ntasks)
  local f = fleets[key]
  if not f then
    f = { waiting = {} }
    f.wake = function() -- a node's ids came back
      sched.complete_all(f.waiting)
    end
    fleets[key] = f
  end
  sched.once(f, function()
    local ok, why = start_fleet(f, extra, ntasks)
    f.up = ok
    if not ok then
      util.warn(("no tide worker could start under Slurm (%s): one srun per job"):format(why))
    end
  end)
  return f.up and f
end

-- The least busy worker that is up and has want's ids free; then whether
-- some worker is still starting, and why none could ever run the job (no
-- node has that many ids); a worker that could not start is said so once.
local function pick(f, want)
  local best, left, could, why = nil, false, false, "no Slurm worker is up"
  for _, n in ipairs(f) do
    local up = n.conn.up
    if up and not n.down then
      -- its ids: those Slurm gave its step (GRES, which its worker
      -- reported), else the ones the pool names for the node, else the pool's
      local ok, no, fits = resources.judge(n, want, n.conn.host or "?", n.conn.env, f.wake)
      could = could or ok
      if no then
        why = "no Slurm node has the ids asked for: " .. no
      end
      if (not best or n.busy < best.busy) and fits then
        best = n
      end
    elseif up == nil then
      left = true
    elseif not n.said then
      n.said, n.down = true, true
      if not n.lost then
        util.warn(("a Slurm worker could not start: %s"):format(n.conn.why))
      end
    end
  end
  return best, left, not (could or left) and why
end

function M.launcher(pol)
  local L = {}
  local extra = pol.slurm or {}
  local workers = pol.workers ~= false
  local key = pol.slurm or M

  -- The plan of one attempt: its node, its slots and its ids there; or
  -- nil and why if no node can run it.
  function L.place(w, want)
    local f = workers and fleet(key, extra, pol.pool_jobs or state.default_jobs())
    if not f then -- a step a job: the pool's ids, as for a local job
      local grant, why
      if want then
        grant, why = resources.acquire(want.set, want.need, want.holder)
        if not grant then
          return nil, why
        end
      end
      return { w = w, grant = grant }
    end
    while true do
      local n, left, never = pick(f, want)
      if n then
        n.busy = n.busy + w
        return { node = n, w = w, grant = resources.take_at(n, want) }
      elseif never then
        return nil, never
      end
      -- wait for ids to come back or a worker to come up (or not)
      local token = {}
      f.waiting[#f.waiting + 1] = token
      for _, m in ipairs(f) do
        if left and m.conn.up == nil then
          m.conn.waiting[#m.conn.waiting + 1] = token
        end
      end
      sched.await(token)
    end
  end

  function L.start(plan, argv, cmdstr, spec, grace)
    if plan.node then
      plan.job = worker.run(plan.node.conn, argv, spec)
      return
    end
    L.start_step(plan, cmdstr, spec, plan.w, grace)
  end

  function L.start_step(plan, cmdstr, spec, w, grace)
    plan.status, plan.remote = remote.status_name(status_dir()), true
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
  end

  function L.finish(plan)
    local n = plan.node
    if n then
      n.busy = n.busy - plan.w
      if not plan.job.lost then
        return { host = n.conn.host }
      end
      if not n.down then
        n.down, n.lost = true, true
        util.warn(("node '%s' is down: its worker was lost (%s)"):format(n.conn.host or "?", n.conn.why))
      end
      return { host = n.conn.host, error = ("worker on '%s' lost"):format(n.conn.host or "?"), lost = "lost" }
    end
    plan.ended = true
    os.remove(plan.status .. ".id")
    -- the wrapper writes a status for every end; none: srun itself failed
    local code, signal = remote.decode(take(plan.status))
    return { host = "slurm", far = true, code = code, signal = signal }
  end

  function L.abandon(plan)
    if plan.node then
      plan.node.busy = plan.node.busy - plan.w
      return
    end
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
    if plan.node then
      return -- the worker stops it (job:terminate)
    end
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
  for _, f in pairs(fleets) do
    for _, n in ipairs(f) do
      worker.close(n.conn)
    end
  end
  for _, f in pairs(fleets) do
    for _, n in ipairs(f) do
      worker.wait(n.conn)
    end
  end
  fleets = {}
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
