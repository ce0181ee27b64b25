-- worker.lua: jobs on a tide worker, `tide --worker` started once per host
-- (through ssh) or per node (as one Slurm step), instead of one ssh
-- session or srun per job.  A job then costs a frame each way on a
-- connection that is already up (frame.lua), and the far end runs it as a
-- local job (serve.lua).
--
-- Here a job on a worker is a virtual job (core.virtual): output options,
-- buffers, tee files and line splitting are the same C objects as a local
-- job's, fed from the connection, so output modes, capture, results
-- directories and the report need nothing of their own.  Only stopping
-- differs: terminate and kill become requests to the worker.
--
-- A connection that ends (the worker killed, ssh cut, the step cancelled)
-- settles every job still on it as lost: the launcher moves them to
-- another host and marks this one down.
local core = require("tide.core")
local frame = require("tide.backend.frame")
local sched = require("tide.run.sched")
local state = require("tide.state")

local M = {}

-- A job on a worker: the virtual job's methods, with stopping sent there.
local Job = {}
Job.__index = Job
for name, f in pairs(debug.getregistry()["tide.job"].__index) do
  Job[name] = function(self, ...)
    return f(self.vj, ...)
  end
end

local function send(conn, kind, id, list)
  return conn.job:send(frame.encode(kind, id, list))
end

function Job.pid()
  return nil -- it is not a process of this machine
end

-- kill(0) asks whether it still runs, as for a local job.
function Job:kill(sig)
  if self.ended then
    return false
  end
  if sig ~= 0 then
    send(self.conn, "kill", self.id, { sig or "SIGTERM" })
  end
  return true
end

function Job:terminate(grace)
  if not self.ended then
    send(self.conn, "term", self.id, { grace or state.KILL_GRACE })
  end
end
Job.hangup = Job.terminate

local function settle(p, code, signal, elapsed, user, sys, rss)
  p.ended = true
  local t0 = p.t0
  p.vj:settle(code, signal, t0, t0 + (elapsed or core.now() - t0), user, sys, rss)
  sched.complete(p)
end

-- Whoever waits for the connection to be up or to end (M.ready) looks.
local function wake(conn)
  sched.complete_all(conn.waiting)
end

-- The end of a connection: its jobs are lost, whoever waits learns why.
local function closed(conn, why)
  if conn.up == nil then
    conn.up, conn.why = false, why
  elseif conn.up then
    conn.up, conn.why = false, why or "connection lost"
  end
  for id, p in pairs(conn.jobs) do
    conn.jobs[id] = nil
    p.lost = true
    settle(p, nil, "SIGKILL")
  end
  wake(conn)
end

local STREAM = { "stdout", "stderr" }

local function dispatch(conn, kind, id, s)
  local p = conn.jobs[id]
  if kind == "out" and p then
    p.vj:feed(STREAM[tonumber(s[1])], s[2])
    if p.watch then
      sched.notify(p)
    end
  elseif kind == "end" and p then
    conn.jobs[id] = nil
    settle(p, tonumber(s[1]), s[2] ~= "" and s[2] or nil, tonumber(s[3]), tonumber(s[4]), tonumber(s[5]),
      math.tointeger(tonumber(s[6])))
  elseif kind == "fail" and p then
    conn.jobs[id] = nil
    p.failed, p.failed_name = s[1], s[2] ~= "" and s[2] or nil
    settle(p, 127)
  elseif kind == "hello" then
    if s[1] ~= frame.VERSION then
      error(("worker speaks protocol %s, not %s (tide %s there)"):format(s[1], frame.VERSION, s[2]), 0)
    end
    conn.up, conn.cpus, conn.host, conn.env = true, tonumber(s[3]), s[4], {}
    for k, v in (s[5] or ""):gmatch("([^=\n]+)=([^\n]*)") do
      conn.env[k] = v
    end
    wake(conn)
  end
end

-- The last line the client (ssh, srun) or the worker wrote on stderr.
local function last_words(job)
  local err = (job:output("stderr") or ""):gsub("%s+$", "")
  return err:match("[^\n]*$")
end

-- Reads the connection until it ends.
local function read(conn)
  local job, fr = conn.job, frame.reader()
  local ok, err = pcall(function()
    while true do
      local done = sched.await_news(job)
      fr:push(job:take("stdout"))
      while true do
        local kind, id, s = fr:next()
        if not kind then
          break
        end
        dispatch(conn, kind, id, s)
      end
      if done then
        return
      end
    end
  end)
  if not ok then
    job:terminate(state.KILL_GRACE)
    sched.await(job)
  end
  local why = not ok and tostring(err) or nil
  if not why then
    local code, signal = job:result()
    local words = last_words(job)
    why = words ~= "" and words or ("exited with " .. (signal or tostring(code)))
  end
  conn.code = job:result()
  closed(conn, why)
  job:release()
end

-- Starts a worker through argv (ssh host tide --worker; srun ... tide
-- --worker) and returns its connection; M.ready waits until it is up.
function M.open(argv)
  local job, msg = core.spawn(argv, { hold_stdin = true, watch = true, max_line = 1 << 24 })
  local conn = { jobs = {}, waiting = {}, job = job }
  if not job then
    conn.up, conn.why = false, msg
    return conn
  end
  conn.task = sched.spawn(function()
    read(conn)
  end, function(_, ok, err)
    if not ok and err ~= sched.CANCELLED then
      closed(conn, tostring(err))
    end
  end)
  return conn
end

-- Waits until the worker said hello or its connection ended: true, or
-- false and why (the client's or the worker's last words).
function M.ready(conn)
  if conn.up == nil then
    sched.wait_turn(conn.waiting, {})
  end
  return conn.up, conn.why
end

-- Waits until one of conns is up (true) or none can be (false and the
-- last one's why).
function M.ready_any(conns)
  while true do
    local starting, why = false, nil
    for _, c in ipairs(conns) do
      if c.up then
        return true
      end
      starting = starting or c.up == nil
      why = c.why or why
    end
    if not starting then
      return false, why
    end
    local token = {}
    for _, c in ipairs(conns) do
      if c.up == nil then
        c.waiting[#c.waiting + 1] = token -- the first to settle wakes us
      end
    end
    sched.await(token)
  end
end

-- Starts argv on the worker with spec (cwd, env, stdin, and core.spawn's
-- output options): a job to wait for as for a local one.  If the
-- worker could not start it, job.failed and job.failed_name say why.
function M.run(conn, argv, spec)
  spec = spec or {}
  local vj, msg, name = core.virtual(spec)
  if not vj then
    return nil, msg, name
  end
  local id = (conn.last or 0) + 1
  conn.last = id
  local p = setmetatable({ vj = vj, conn = conn, id = id, watch = spec.watch, t0 = core.now() }, Job)
  local s = { (spec.cwd and "c" or "") .. (spec.stdin and "i" or ""), spec.cwd or "", spec.stdin or "", #argv }
  for i = 1, #argv do
    s[4 + i] = argv[i]
  end
  if spec.env then
    for k, v in pairs(spec.env) do
      s[#s + 1] = k
      s[#s + 1] = v == false and "\0" or tostring(v)
    end
  end
  conn.jobs[id] = p
  if not (conn.up and send(conn, "run", id, s)) then
    conn.jobs[id] = nil
    p.lost = true
    settle(p, nil, "SIGKILL")
  end
  return p
end

-- Closes the connection: the worker stops what still runs and exits.
function M.close(conn)
  if conn.job and conn.up ~= false then
    conn.job:hangup(state.KILL_GRACE + 2)
  end
end

-- Waits for the connection's end (after close).
function M.wait(conn)
  if conn.task then
    sched.drive(function()
      return conn.up == false
    end)
  end
end

return M
