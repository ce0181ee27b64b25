-- joblog.lua: run bookkeeping.  The job log (GNU parallel's --joblog
-- format), resuming from it keyed on content, dry runs, and the summary
-- printed at the end of a run.
--
-- shell.lua calls before() for a job whose options set joblog, resume or
-- dry_run (a result means: do not run it) and after() once it has ended;
-- note() with every final result.
local control = require("tide.control")
local core = require("tide.core")

local M = {}

M.HEADER = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"

-- Open logs by path: several pools (or maps, or jobs) of one run share one.
local logs = {}

-- Job numbers of jobs run outside any map.
local seq = 0

local quote = require("tide.sh").quote
local signal_number = control.signum

-- The Command column, which is also the resume key: the command itself,
-- with tabs, newlines and backslashes escaped, and when the job was given
-- a cwd or env, a marker " #tide cwd=DIR env=K=V ..." (env sorted by name;
-- a variable removed with false is "-K").
function M.key(cmdstr, opts)
  local k = cmdstr:gsub("[\\\t\n\r]", { ["\\"] = "\\\\", ["\t"] = "\\t", ["\n"] = "\\n", ["\r"] = "\\r" })
  local cwd, env = opts.cwd, opts.env
  if cwd or env then
    local parts = { k, " #tide" }
    if cwd then
      parts[#parts + 1] = " cwd=" .. quote(cwd)
    end
    if env then
      local names = {}
      for name in pairs(env) do
        names[#names + 1] = name
      end
      table.sort(names)
      if #names > 0 then
        parts[#parts + 1] = " env="
        for i, name in ipairs(names) do
          local v = env[name]
          parts[#parts + 1] = (i > 1 and " " or "") .. (v == false and "-" .. name or name .. "=" .. quote(tostring(v)))
        end
      end
    end
    k = table.concat(parts):gsub("[\t\n\r]", " ")
  end
  return k
end

-- Reads an existing log: Command column -> its last line's fields.
local function load(path, done)
  local f = io.open(path, "rb")
  if not f then
    return false
  end
  local any = false
  for line in f:lines() do
    any = true
    local sq, _, start, runtime, _, _, code, sig, cmd =
      line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    if sq and sq ~= "Seq" then
      done[cmd] = {
        code = math.tointeger(tonumber(code)) or tonumber(code) or -1, signal = tonumber(sig) or 0,
        elapsed = tonumber(runtime) or 0, start = tonumber(start),
      }
    end
  end
  f:close()
  return any
end

-- The open log for path.  Without resume the file is started afresh (as
-- GNU parallel does) the first time this run opens it; with resume, its
-- lines are read and new ones appended.
local function open(path, resume)
  local log = logs[path]
  if log then
    return log
  end
  log = { done = {} }
  local existing = resume and load(path, log.done)
  local f, err = io.open(path, existing and "ab" or "wb")
  if not f then
    error("shell: joblog: " .. err, 0)
  end
  if not existing then
    f:write(M.HEADER)
    f:flush()
  end
  log.f = f
  logs[path] = log
  return log
end

-- nil to run the job; else the result to give without running it.
function M.before(pol, cmdstr, opts, stats)
  if pol.dry_run then
    io.stdout:write(cmdstr, "\n")
    return { ok = true, dry_run = true, code = 0, cmd = cmdstr, elapsed = 0, attempts = 0 }
  end
  local resume = pol.resume
  if resume and not pol.joblog then
    error("bad argument #2 to 'shell' (option 'resume' needs option 'joblog')", 0)
  end
  if not pol.joblog then
    return nil
  end
  local log = open(pol.joblog, resume)
  if not resume then
    return nil
  end
  local e = log.done[M.key(cmdstr, opts)]
  if not e then
    return nil
  end
  local ok = e.code == 0 and e.signal == 0
  if not ok and resume == "failed" then
    return nil
  end
  stats.resumed = (stats.resumed or 0) + 1
  return {
    ok = ok, code = e.signal == 0 and e.code or nil, signal = e.signal ~= 0 and core.signame(e.signal) or nil,
    cmd = cmdstr, elapsed = e.elapsed, attempts = 0, resumed = true,
  }
end

-- Writes and flushes the log line of a job that ended with r.
function M.after(pol, r, cmdstr, opts, t)
  local log = open(pol.joblog, pol.resume)
  local n = t and t.index
  if not n then
    seq = seq + 1
    n = seq
  end
  local elapsed = r.elapsed or 0
  local key = M.key(cmdstr, opts)
  local code = r.code or 0
  local sig = signal_number(r.signal)
  if r.timed_out and sig == 0 then
    sig = 15
  end
  -- Host: the sshlogin that ran it, ":" for this machine, as GNU parallel
  log.f:write(("%d\t%s\t%.3f\t%.3f\t0\t0\t%d\t%d\t%s\n")
    :format(n, r.host or ":", core.time() - elapsed, elapsed, math.tointeger(code) or -1, sig, key))
  log.f:flush()
  log.done[key] = { code = code, signal = sig, elapsed = elapsed }
end

---------------------------------------------------------------------------
-- The summary

local MAX_FAILS = 5

-- Every final result of a job that ran: keeps the 3 slowest and the first
-- failures.  shell.lua calls it for a result slower than stats.slow_floor
-- or failed.
function M.note(stats, r)
  if not r.ok then
    local fails = stats.fails
    if not fails then
      fails = {}
      stats.fails = fails
    end
    if #fails < MAX_FAILS then
      fails[#fails + 1] = { cmd = r.cmd, code = r.code, signal = r.signal, timed_out = r.timed_out }
    end
  end
  local e = r.elapsed
  if e and e > stats.slow_floor then
    local slow = stats.slow
    slow[#slow + 1] = { cmd = r.cmd, elapsed = e }
    table.sort(slow, function(a, b)
      return a.elapsed > b.elapsed
    end)
    slow[4] = nil
    if #slow == 3 then
      stats.slow_floor = slow[3].elapsed
    end
  end
end

local function why(f)
  if f.timed_out then
    return "timed out"
  elseif f.signal then
    return f.signal
  end
  return "exit " .. tostring(f.code)
end

-- The summary lines for stats.
local function summary(stats)
  local w = {}
  local ran = stats.jobs
  local failed = stats.failed
  w[#w + 1] = ("tide: summary: %d jobs run, %d succeeded, %d failed, %d skipped by resume, %.3fs wall time\n")
    :format(ran, math.max(ran - failed, 0), failed, stats.resumed or 0, core.now() - stats.t0)
  for _, f in ipairs(stats.fails or {}) do
    w[#w + 1] = ("tide:   failed (%s): %s\n"):format(why(f), f.cmd)
  end
  if failed > #(stats.fails or {}) and stats.fails then
    w[#w + 1] = ("tide:   ... and %d more failed\n"):format(failed - #stats.fails)
  end
  for i, s in ipairs(stats.slow) do
    w[#w + 1] = ("tide:   slowest #%d: %.3fs %s\n"):format(i, s.elapsed, s.cmd)
  end
  return table.concat(w)
end

-- At the end of a run, on stderr: when a job failed, the line `tide: N of
-- M jobs failed` and the summary; else the summary if it was asked for
-- (requested, or TIDE_SUMMARY=1).
function M.report(stats, requested)
  local failed = stats.failed > 0
  if not (failed or requested or os.getenv("TIDE_SUMMARY") == "1") then
    return
  end
  io.stdout:flush()
  io.stderr:write(failed and ("tide: %d of %d jobs failed\n"):format(stats.failed, stats.jobs) or "",
    summary(stats))
end

return M
