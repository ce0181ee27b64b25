-- control.lua: job control policy shared by pool.lua and shell.lua: the
-- job options (timeouts, retries, throttles) and their checking, halt
-- specifications, start gates (delay, max_load, min_free), the memory
-- watchdog and relative timeouts.
--
-- Nothing here busy-waits: a closed gate or a deadline is a core.timer
-- watched by the driver (sched.watch), and the machine's load and memory
-- are read from /proc only when a job is about to start or while a
-- watchdog timer runs.  TIDE_LOADAVG_FILE and TIDE_MEMINFO_FILE point
-- those reads at other files (for tests, or a container's own figures).
local core = require("tide.core")
local sched = require("tide.sched")

local M = {}

M.RECHECK = 0.25 -- seconds between looks while a start gate is closed
M.MEMCHECK = 0.5 -- seconds between memory checks while min_free jobs run
M.KILL_GRACE = 2 -- default seconds between SIGTERM and SIGKILL

local function describe(v)
  if type(v) == "string" then
    return ("'%s'"):format(v)
  end
  return tostring(v)
end
M.describe = describe

local function callable(f)
  if type(f) == "function" then
    return true
  end
  local mt = getmetatable(f)
  return type(mt) == "table" and mt.__call ~= nil
end
M.callable = callable

local function finite(v)
  return type(v) == "number" and v == v and v > -math.huge and v < math.huge
end

---------------------------------------------------------------------------
-- Values: durations, sizes, percentages

local UNITS = { [""] = 1, s = 1, m = 60, h = 3600, d = 86400 }

-- A number of seconds, or a string as GNU parallel takes them: "90",
-- "1.5s", "2m", "1h30m", "1d".  nil if v is neither.
function M.duration(v)
  if type(v) == "number" then
    return finite(v) and v or nil
  elseif type(v) ~= "string" or v == "" then
    return nil
  end
  local total, pos = 0, 1
  while pos <= #v do
    local num, unit, after = v:match("^(%d*%.?%d+)([smhd]?)()", pos)
    if not num then
      return nil
    end
    total = total + tonumber(num) * UNITS[unit]
    pos = after
  end
  return total
end

-- "200%" -> 200
local function percent(v)
  if type(v) == "string" then
    local p = tonumber(v:match("^%s*(%d*%.?%d+)%s*%%%s*$"))
    if p and p > 0 then
      return p
    end
  end
end

local SIZE = { [""] = 1, k = 1e3, m = 1e6, g = 1e9, t = 1e12, p = 1e15 }
local BINARY = { K = 2 ^ 10, M = 2 ^ 20, G = 2 ^ 30, T = 2 ^ 40, P = 2 ^ 50 }

-- Bytes, from a number or a string such as "2G", "512M", "1.5Gi", "800k"
-- (GNU parallel's prefixes: K M G T P and Ki... are powers of 1024, k m g
-- t p powers of 1000; a trailing B is allowed).
function M.size(v)
  if type(v) == "number" then
    return finite(v) and v or nil
  elseif type(v) ~= "string" then
    return nil
  end
  local num, prefix, i = v:match("^%s*(%d*%.?%d+)%s*([KMGTPkmgtp]?)(i?)[Bb]?%s*$")
  if not num then
    return nil
  end
  local mult = (i == "i" and BINARY[prefix:upper()]) or BINARY[prefix] or SIZE[prefix]
  return tonumber(num) * mult
end

---------------------------------------------------------------------------
-- Job options: valid in pool{...}, p:map(fn, list, {...}) and shell(cmd, {...})

local SECONDS = "a number of seconds or a duration such as '1m30s'"

-- Validator of a non-negative duration (kill_grace, retry_delay, delay).
local function seconds(v)
  local d = M.duration(v)
  if d and d >= 0 then
    return d
  end
  return nil, SECONDS
end

-- Validator of a size in bytes (max_output, max_line); example for errors.
local function bytes(example)
  return function(v)
    local s = M.size(v)
    if s and s >= 1 and s < 2 ^ 53 then
      return math.floor(s)
    end
    return nil, "a size in bytes of at least 1, such as " .. example
  end
end

-- Each checker returns the normalized value, or nil and what was expected.
-- false turns an option off for one call (or one map) when the pool has it.
local JOB = {
  timeout = function(v)
    local p = percent(v)
    if p then
      return { pct = p }
    end
    local d = M.duration(v)
    if d and d > 0 then
      return d
    end
    return nil, "a positive number of seconds, a duration such as '1m30s', or a percentage of "
      .. "the median runtime such as '200%'"
  end,
  kill_grace = seconds,
  retries = function(v)
    if math.type(v) == "float" and v == math.floor(v) and finite(v) then
      v = math.tointeger(v)
    end
    if math.type(v) == "integer" and v >= 0 then
      return v
    end
    return nil, "a whole number of at least 0"
  end,
  retry_delay = seconds,
  backoff = function(v)
    if finite(v) and v >= 1 then
      return v
    end
    return nil, "a number of at least 1"
  end,
  retry = function(v)
    if callable(v) then
      return v
    end
    return nil, "a function (r, attempt) returning false, true or a new command"
  end,
  delay = seconds,
  max_load = function(v)
    if finite(v) and v > 0 then
      return v
    end
    return nil, "a positive number (a load average)"
  end,
  min_free = function(v)
    local s = M.size(v)
    if s and s > 0 then
      return s
    end
    return nil, "a size such as '2G' or '512M', or a number of bytes"
  end,

  -- Output (output.lua)
  output = function(v)
    if M.OUTPUT_MODES[v] then
      return v
    end
    return nil, "'group', 'line', 'ungroup', 'capture' or 'null'"
  end,
  tag = function(v)
    if v == true or callable(v) then
      return v
    end
    return nil, "true or a function(item, i) returning a string"
  end,
  on_line = function(v)
    if callable(v) then
      return v
    end
    return nil, "a function(line, stream, item, partial)"
  end,
  newline = function(v)
    if type(v) == "boolean" then
      return v
    end
    return nil, "a boolean"
  end,
  results = function(v)
    if type(v) == "string" and v ~= "" and not v:find("\0", 1, true) then
      return v
    end
    return nil, "a directory name"
  end,
  max_output = bytes("65536 or '10M'"),
  max_line = bytes("4096 or '1M'"),
}
-- Run bookkeeping (joblog.lua): the job log, resuming from it, dry runs.
JOB.joblog = function(v)
  if type(v) == "string" and v ~= "" then
    return v
  end
  return nil, "a file name"
end
JOB.resume = function(v)
  if v == true or v == "failed" then
    return v
  end
  return nil, "true, false or 'failed'"
end
JOB.dry_run = function(v)
  if v == true then
    return v
  end
  return nil, "a boolean"
end
-- Where jobs run: backend, hosts, ssh, slurm.
require("tide.backend").options(JOB)

M.JOB = JOB

M.OUTPUT_MODES = { group = true, line = true, ungroup = true, capture = true, null = true }

-- The order option of pools and maps: "input" or "finish"; nil and what
-- was expected otherwise.
function M.order(v)
  if v == "input" or v == "finish" then
    return v
  elseif v == false then
    return "finish"
  end
  return nil, ("option 'order' must be 'input' or 'finish', got %s"):format(describe(v))
end

-- Checks one job option: its value, or nil and "option 'k' must be ...".
function M.check(k, v)
  if v == false then
    return false
  end
  local value, want = JOB[k](v)
  if value == nil then
    return nil, ("option '%s' must be %s, got %s"):format(k, want, describe(v))
  end
  return value
end

-- The slots option: a whole number of at least 1.
function M.slots(v)
  if math.type(v) == "float" and v == math.floor(v) and finite(v) then
    v = math.tointeger(v)
  end
  if math.type(v) == "integer" and v >= 1 then
    return v
  end
end

---------------------------------------------------------------------------
-- Halt specifications, as GNU parallel's --halt

local WHEN = { now = true, soon = true }
local KINDS = { fail = true, success = true, done = true }

local function halt_value(kind, x)
  local p = percent(x)
  if p then
    if p > 100 then
      return nil
    end
    return { kind = kind, pct = p, text = ("%s=%g%%"):format(kind, p) }
  end
  if type(x) == "string" then
    x = tonumber(x)
  end
  if math.type(x) == "float" and x == math.floor(x) and finite(x) then
    x = math.tointeger(x)
  end
  if math.type(x) == "integer" and x >= 1 then
    return { kind = kind, count = x, text = ("%s=%d"):format(kind, x) }
  end
end

local HALT_WANT = "'now' or 'soon' and one of fail, success or done, as in 'now,fail=1', "
  .. "'soon,fail=10%' or {when = 'now', fail = 1}"

-- Returns a halt spec {when, kind, count | pct, text}, false for "never"
-- or false, or nil and what was expected.
function M.halt(v)
  if v == false or v == "never" then
    return false
  end
  local when, kind, x
  if type(v) == "string" then
    when, kind, x = v:match("^%s*(%a+)%s*,%s*(%a+)%s*=%s*([^%s]+)%s*$")
  elseif type(v) == "table" then
    when = v.when
    for k, val in pairs(v) do
      if KINDS[k] then
        if kind then
          return nil, HALT_WANT .. " (only one of fail, success, done)"
        end
        kind, x = k, val
      elseif k ~= "when" then
        return nil, HALT_WANT .. (" (unknown field %s)"):format(describe(k))
      end
    end
  end
  if not WHEN[when] or not KINDS[kind] then
    return nil, HALT_WANT
  end
  local spec = halt_value(kind, x)
  if not spec then
    return nil, ("%s, where %s is a whole number of at least 1 or a percentage up to 100%%")
      :format(HALT_WANT, kind)
  end
  spec.when = when
  spec.text = when .. "," .. spec.text
  return spec
end

---------------------------------------------------------------------------
-- The machine: 1-minute load average and available memory

local warned = {}

local function warn_once(what, msg)
  if not warned[what] then
    warned[what] = true
    io.stdout:flush()
    io.stderr:write("tide: " .. msg .. "\n")
  end
end

local function slurp(path)
  local f = io.open(path, "r")
  if not f then
    return nil
  end
  local s = f:read("a")
  f:close()
  return s
end

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

-- Removes v from the array q (the queues of pools and gates).
local function remove(q, v)
  for i = 1, #q do
    if q[i] == v then
      table.remove(q, i)
      return
    end
  end
end
M.remove = remove

local SIGNUM = {}
for i = 1, 64 do
  local name = core.signame(i)
  if name then
    SIGNUM[name] = i
  end
end

-- A signal's number from its name ("SIGKILL" -> 9); 0 for none.
function M.signum(name)
  return SIGNUM[name] or 0
end

-- A job's status as a shell reports it: its code, or 128 + signal.
function M.status_of(r)
  return r.code or 128 + M.signum(r.signal)
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
    w.open = true
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
  local w = { pol = pol }
  g.q[#g.q + 1] = w
  pump(g)
  if not w.open then
    sched.await(w, function()
      remove(g.q, w)
      sched.complete(w)
      pump(g)
    end)
  end
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
M.median = median

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
      io.stdout:flush()
      io.stderr:write(("tide: available memory %.0f MiB is below half of min_free (%.0f MiB): "
        .. "stopping the youngest job, to run again later: %s\n")
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
