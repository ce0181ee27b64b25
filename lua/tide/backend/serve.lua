-- serve.lua: `tide --worker`, the far end of a worker connection (see
-- worker.lua): it reads job requests on its stdin and writes their output
-- and ends on its stdout, in frames (frame.lua), and runs every job as
-- tide runs a local one: its own process group, killed with the job.
--
-- Its stdin closing is the coordinator going away (tide ended, was
-- killed, or the ssh connection or Slurm step was cut): every job still
-- running gets SIGTERM, SIGKILL after the grace, and the worker exits.
-- Nothing it started outlives it: a job's group is killed with the job,
-- and jobs die with the worker (PDEATHSIG) if it is killed outright.
local core = require("tide.core")
local frame = require("tide.backend.frame")
local sched = require("tide.run.sched")
local state = require("tide.state")

local M = {}

local jobs = {} -- [id] = the running job
local tasks = 0 -- requests not finished (their jobs may not have started)
local stopping = false -- stdin ended: stop every job, start none for long
local gone = false -- the coordinator's end of stdout is closed

-- Frames go out once a loop turn, all at once, before the worker waits
-- (sched.on_idle): jobs that end together cost one write, not one each.
local pending, npending = {}, 0

local function flush()
  if npending == 0 then
    return
  end
  local bytes = npending == 1 and pending[1] or table.concat(pending, "", 1, npending)
  for i = 1, npending do
    pending[i] = nil
  end
  npending = 0
  if not gone and not core.write(1, bytes) then
    gone = true -- no one to tell: stop everything
    for _, job in pairs(jobs) do
      job:terminate(state.KILL_GRACE)
    end
  end
end

local function send(kind, id, list, n)
  if not gone then
    npending = npending + 1
    pending[npending] = frame.encode(kind, id, list, n)
  end
end

local spawn = sched.start_process -- descriptors short: wait, as locally

local STREAMS = { "stdout", "stderr" }

-- run ID: flags ("c": a directory, "i": input), cwd, stdin, #argv,
-- argv..., then NAME, VALUE pairs ("\0" as VALUE unsets NAME).
local function run(id, s)
  local flags, nargv = s[1], tonumber(s[4])
  local argv = table.move(s, 5, 4 + nargv, 1, {})
  local spec = { watch = true, keep = false }
  if flags:find("c", 1, true) then
    spec.cwd = s[2]
  end
  if flags:find("i", 1, true) then
    spec.stdin = s[3]
  end
  local i = 5 + nargv
  if s[i] then
    spec.env = {}
    while s[i] do
      local v = s[i + 1]
      spec.env[s[i]] = v ~= "\0" and v
      i = i + 2
    end
  end
  local job, msg, name = spawn(argv, spec)
  if not job then
    send("fail", id, { msg, name or "" }, 2)
    return
  end
  jobs[id] = job
  if stopping then
    job:terminate(state.KILL_GRACE)
  end
  local function pump()
    for k, stream in ipairs(STREAMS) do
      local b = job:take(stream)
      if b ~= "" then
        send("out", id, { k, b }, 2)
      end
    end
  end
  while not sched.await_news(job) do
    pump()
  end
  pump()
  jobs[id] = nil
  local code, signal, elapsed = job:result()
  local user, sys, rss = job:usage()
  send("end", id, { code or "", signal or "", elapsed, user, sys, rss }, 6)
  job:release()
end

local function on_done(_, ok, err)
  tasks = tasks - 1
  if not ok and err ~= sched.CANCELLED then
    io.stderr:write("tide --worker: ", tostring(err), "\n")
  end
end

local function handle(kind, id, s)
  if kind == "run" then
    tasks = tasks + 1
    sched.spawn(function()
      run(id, s)
    end, on_done)
  elseif kind == "term" then
    local job = jobs[id]
    if job then
      job:terminate(tonumber(s[1]) or state.KILL_GRACE)
    end
  elseif kind == "kill" then
    local job = jobs[id]
    if job then
      job:kill(tonumber(s[1]) or s[1])
    end
  else
    error(("tide --worker: unknown request %q"):format(kind), 0)
  end
end

-- The name the coordinator gives this worker's jobs as their host: the
-- Slurm node's, else the machine's.
function M.hostname()
  local name = os.getenv("SLURMD_NODENAME")
  if not name then
    local f = io.open("/proc/sys/kernel/hostname")
    name = f and f:read("l")
    if f then
      f:close()
    end
  end
  return name or "?"
end

-- The variables through which a worker's environment says which devices
-- are its own: Slurm sets them for a step given GRES (--gres=gpu:2), and
-- the coordinator then hands out those ids on this node (resources.lua).
local DEVICE_VARS = { "CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL",
  "ZE_AFFINITY_MASK" }

-- "NAME=value" lines of the device variables that are set.
local function devices()
  local lines = {}
  for _, name in ipairs(DEVICE_VARS) do
    local v = os.getenv(name)
    if v then
      lines[#lines + 1] = name .. "=" .. v
    end
  end
  return table.concat(lines, "\n")
end

-- Serves until stdin ends; returns the exit status.
function M.main()
  local rd, msg = core.reader(0)
  if not rd then
    io.stderr:write("tide --worker: cannot read stdin: ", msg, "\n")
    return 2
  end
  sched.on_idle = flush
  send("hello", 0, { frame.VERSION, core.version, core.cpus(), M.hostname(), devices() }, 5)
  local fr = frame.reader()
  local ended = false
  while not ended and not gone do
    local done = sched.await_news(rd)
    local bytes, eof = rd:take()
    fr:push(bytes)
    while true do
      local kind, id, s = fr:next()
      if not kind then
        break
      end
      handle(kind, id, s)
    end
    ended = done or eof
  end
  stopping = true
  for _, job in pairs(jobs) do
    job:terminate(state.KILL_GRACE)
  end
  sched.drive(function()
    return tasks == 0
  end)
  flush()
  return 0
end

return M
