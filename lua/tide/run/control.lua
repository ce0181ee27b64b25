-- control.lua: job control while jobs run: start gates (delay, max_load,
-- min_free), deadlines and relative timeouts, and the memory watchdog.
-- The options themselves are checked in options.lua.
--
-- Nothing here busy-waits: a closed gate or a deadline is a core.timer
-- watched by the driver (sched.watch), and the machine's load and memory
-- are read from /proc only when a job is about to start or while a
-- watchdog timer runs.  TIDE_LOADAVG_FILE and TIDE_MEMINFO_FILE point
-- those reads at other files (for tests, or a container's own figures).
local core = require("tide.core")
local sched = require("tide.run.sched")
local util = require("tide.util")

local M = {}

M.RECHECK = 0.25 -- seconds between looks while a start gate is closed
M.MEMCHECK = 0.5 -- seconds between memory checks while min_free jobs run

---------------------------------------------------------------------------
-- The machine: 1-minute load average and available memory

local warned = {}

local function warn_once(what, msg)
  if not warned[what] then
    warned[what] = true
    util.warn(msg)
  end
end

local slurp = util.slurp

-- The 1-minute load average, or nil (with a warning, once) if unreadable.
function M.loadavg()
  local path = os.getenv("TIDE_LOADAVG_FILE") or "/proc/loadavg"
  local s = slurp(path)
  local load = s and tonumber(s:match("^%s*(%d*%.?%d+)"))
  if not load then
    warn_once("load", ("cannot read the load average from %s: max_load is ignored"):format(path))
  end
  return load
end

-- Available memory in bytes (MemAvailable, else MemFree + Buffers +
-- Cached on kernels before 3.14), or nil (with a warning, once).
function M.memavailable()
  local path = os.getenv("TIDE_MEMINFO_FILE") or "/proc/meminfo"
  local s = slurp(path)
  local kb = s and tonumber(s:match("MemAvailable:%s*(%d+)"))
  if s and not kb then
    local free = tonumber(s:match("MemFree:%s*(%d+)"))
    if free then
      kb = free + (tonumber(s:match("Buffers:%s*(%d+)")) or 0) + (tonumber(s:match("\nCached:%s*(%d+)")) or 0)
    end
  end
  if not kb then
    warn_once("mem", ("cannot read available memory from %s: min_free is ignored"):format(path))
    return nil
  end
  return kb * 1024
end

---------------------------------------------------------------------------
-- Start gates: delay, max_load, min_free
--
-- One gate per pool (and one for jobs run outside any pool).  Jobs wait in
-- it first come, first served; while the one at the head may not start, a
-- timer re-checks: at the end of the delay, or every RECHECK seconds while
-- the load or the memory is the obstacle.

function M.gate()
  return { q = {}, last = -math.huge }
end

-- Seconds to wait before pol allows a start through g, or nil.
local function blocked(g, pol, now)
  local d = pol.delay
  if d and d > 0 then
    local wait = g.last + d - now
    if wait > 0 then
      return wait
    end
  end
  local x = pol.max_load
  if x then
    local load = M.loadavg()
    if load and load > x then
      return M.RECHECK
    end
  end
  x = pol.min_free
  if x then
    local avail = M.memavailable()
    if avail and avail < x then
      return M.RECHECK
    end
  end
end

local function pump(g)
  local q = g.q
  while q[1] do
    local w = q[1]
    local now = core.now()
    local wait = blocked(g, w.pol, now)
    if wait then
      if not g.timer then
        local timer = core.timer(wait)
        g.timer = timer
        sched.watch(timer, function()
          g.timer = nil
          pump(g)
        end)
      end
      return
    end
    table.remove(q, 1)
    g.last = now
    sched.complete(w)
  end
end

-- Waits until pol lets a job start through gate g.
function M.pass(g, pol)
  if not g.q[1] then
    local now = core.now()
    if not blocked(g, pol, now) then
      g.last = now
      return
    end
  end
  sched.wait_turn(g.q, { pol = pol }, function()
    pump(g)
  end)
end

---------------------------------------------------------------------------
-- Deadlines: a job running past its deadline is terminated (SIGTERM to
-- its group, SIGKILL after its kill grace) and reported as timed out.
-- rec = {job, grace, t0, ...}, kept by shell.lua for the running job.

local function disarm(rec)
  local timer = rec.timer
  if timer then
    rec.timer = nil
    timer:cancel()
    sched.unwatch(timer)
  end
end

-- Seconds a remote job's client gets beyond the kill grace to bring back
-- the job's end before it is killed here.
M.REMOTE_MARGIN = 2

-- Stops rec's job: a job that runs elsewhere through its wrapper, which
-- applies the grace there (remote.lua).
function M.stop_job(rec)
  if rec.remote then
    rec.job:hangup(rec.grace + M.REMOTE_MARGIN)
  else
    rec.job:terminate(rec.grace)
  end
end

-- Arms (or moves) rec's deadline to secs from now.
function M.arm(rec, secs)
  disarm(rec)
  local timer = core.timer(secs > 0 and secs or 0)
  rec.timer = timer
  sched.watch(timer, function()
    rec.timer = nil
    if not rec.done and rec.job:kill(0) then -- still running
      rec.timed_out = true
      M.stop_job(rec)
    end
  end)
end

-- Relative timeouts ("200%"): deadlines follow the median runtime of the
-- successful jobs of one pool that ran with a relative timeout, once 3
-- have finished; each new runtime moves the running jobs' deadlines.

function M.runtimes()
  return { sorted = {}, running = {} }
end

local function median(rt)
  local s = rt.sorted
  local n = #s
  if n < 3 then
    return nil
  end
  if n % 2 == 1 then
    return s[(n + 1) // 2]
  end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

local function arm_relative(rec, med, now)
  local deadline = rec.t0 + med * rec.pct / 100
  if deadline ~= rec.deadline then
    rec.deadline = deadline
    M.arm(rec, deadline - now)
  end
end

-- A job with a relative timeout starts.
function M.start_relative(rt, rec)
  rt.running[rec] = true
  local med = median(rt)
  if med then
    arm_relative(rec, med, core.now())
  end
end

-- Records a successful runtime and moves the running jobs' deadlines.
function M.add_runtime(rt, secs)
  local s = rt.sorted
  local lo, hi = 1, #s + 1
  while lo < hi do
    local mid = (lo + hi) // 2
    if s[mid] <= secs then
      lo = mid + 1
    else
      hi = mid
    end
  end
  table.insert(s, lo, secs)
  local med = median(rt)
  if med then
    local now = core.now()
    for rec in pairs(rt.running) do
      arm_relative(rec, med, now)
    end
  end
end

---------------------------------------------------------------------------
-- The memory watchdog: while jobs with min_free run, checks every MEMCHECK
-- seconds; below half of a job's min_free, the youngest such job is
-- terminated (shell.lua then queues it again), one at a time.

local watched, nwatched, mtimer = {}, 0, nil

local function memcheck()
  mtimer = nil
  if nwatched == 0 then
    return
  end
  local pending = false
  for rec in pairs(watched) do
    if rec.mem_killed then
      pending = true -- let the last victim's memory come back first
      break
    end
  end
  local avail = not pending and M.memavailable()
  if avail then
    local victim
    for rec in pairs(watched) do
      if avail < rec.min_free / 2 and (not victim or rec.t0 > victim.t0) then
        victim = rec
      end
    end
    if victim and victim.job:kill(0) then
      victim.mem_killed = true
      util.warn(("available memory %.0f MiB is below half of min_free (%.0f MiB): "
        .. "stopping the youngest job, to run again later: %s")
        :format(avail / 2 ^ 20, victim.min_free / 2 ^ 20, victim.cmd))
      M.stop_job(victim)
    end
  end
  mtimer = core.timer(M.MEMCHECK)
  sched.watch(mtimer, memcheck)
end

function M.watch_memory(rec)
  watched[rec] = true
  nwatched = nwatched + 1
  if not mtimer then
    mtimer = core.timer(M.MEMCHECK)
    sched.watch(mtimer, memcheck)
  end
end

-- Forgets a job that finished: deadline, relative timeout, memory watch.
function M.forget(rec, rt)
  rec.done = true
  disarm(rec)
  if rt then
    rt.running[rec] = nil
  end
  if watched[rec] then
    watched[rec] = nil
    nwatched = nwatched - 1
    if nwatched == 0 and mtimer then
      mtimer:cancel()
      sched.unwatch(mtimer)
      mtimer = nil
    end
  end
end

return M
