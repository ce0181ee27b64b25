-- result.lua: a job's result table, built here and only here.  The other
-- modules hand in facts (the job object, what the far end said, what the
-- job log remembers, the captured output) and read results through the
-- rules below, so what a timeout, a signal or a start failure looks like
-- is decided once:
--
--   r.ok        the job exited 0 (or with one of its ok_codes) and did not
--               time out
--   r.code      its exit code, nil if a signal ended it
--   r.signal    the signal's name ("SIGKILL"), nil if it exited
--   r.timed_out tide stopped it at its deadline; a job that ran elsewhere
--               and came back with no status reads as SIGTERM, the signal
--               tide sent, as a local one would
--   r.error     why it could not start or finish (no job, lost host), or
--               why output was lost (a spill or results file that could
--               not be written: the job then failed, whatever its status)
--   r.start     when it started, in seconds since the epoch
--   r.resources the ids its pool's resources gave it, {gpu = {"0"}}
local core = require("tide.core")
local state = require("tide.state")

local M = {}

local SIGNUM = {}
for i = 1, core.NSIG - 1 do
  local name = core.signame(i)
  if name and not SIGNUM[name] then
    SIGNUM[name] = i
  end
end

-- A signal's number from its name ("SIGKILL" -> 9); 0 for none.
function M.signum(name)
  return SIGNUM[name] or 0
end

-- A job's status as a shell reports it: its code, or 128 + signal.
function M.status(r)
  return r.code or 128 + M.signum(r.signal)
end

-- The signal number GNU parallel's job log shows: a job that timed out
-- was sent SIGTERM even when it then exited with a code of its own.
function M.logged_signal(r)
  local sig = M.signum(r.signal)
  if sig == 0 and r.timed_out then
    sig = SIGNUM.SIGTERM
  end
  return sig
end

-- Why a failed job failed, in words.
function M.why(r)
  if r.lost then
    return r.error
  elseif r.timed_out then
    return "timed out"
  elseif r.signal then
    return "killed by " .. r.signal
  end
  return "exit code " .. tostring(r.code)
end

-- Whether a job that ended so succeeded; ok_codes: the exit codes that
-- count as success (a set), else only 0.
local function ok(code, timed_out, ok_codes)
  if timed_out or code == nil then
    return false
  elseif ok_codes then
    return ok_codes[code] == true
  end
  return code == 0
end
M.ok = ok

-- Output that could not be kept or written (msg names the file and the
-- errno): the job failed, whatever its status said, and r.error says why.
local function lost(r, msg)
  r.ok, r.lost = false, true
  r.error = r.error or msg
end
M.lost = lost

-- The result of a job that ran: timed_out says whether tide stopped it at
-- its deadline.  Output its spill file could not take is lost output.
function M.of_job(job, cmd, timed_out, ok_codes)
  local code, signal, elapsed, t0 = job:result()
  local user, sys, maxrss = job:usage()
  -- every field in the constructor: the table is sized once (attempts is
  -- set by M.attempts)
  local r = {
    ok = ok(code, timed_out, ok_codes), code = code, signal = signal, cmd = cmd,
    pid = job:pid(), elapsed = elapsed, timed_out = timed_out, start = state.started + (t0 - state.t0),
    user = user, sys = sys, maxrss = maxrss, attempts = 0,
  }
  for _, stream in ipairs({ "stdout", "stderr" }) do
    local msg = job:spill_error(stream)
    if msg then
      lost(r, ("%s: output lost: %s"):format(stream, msg))
    end
  end
  return r
end

-- What a launcher (backend/) learnt of a job that ran through a local
-- client (ssh, srun): facts = {host, far = true when code and signal are
-- the far end's own (nil: none came back), code, signal, error}.
function M.from_far_end(r, facts, ok_codes)
  r.host = facts.host
  if facts.far then
    if facts.code or facts.signal then
      r.code, r.signal = facts.code, facts.signal
    elseif r.timed_out and r.code then
      r.code, r.signal = nil, "SIGTERM"
    end
  end
  r.error = facts.error or r.error
  r.ok = ok(r.code, r.timed_out, ok_codes) and not r.lost
end

-- libuv's "no such file or directory" as libc's strerror says it.
local function strerror(msg)
  local text = msg:match("^%u[%u%d]*: (.-) %(") or msg
  return (text:gsub("^%l", string.upper))
end

-- A job that could not start: no host is up (msg alone), or core.spawn
-- failed with (msg, errname), msg naming the (cwd) or (cmd) at fault.
-- Its status is a shell's: 127 for a directory that cannot be entered or
-- a command not found, 126 for a command that cannot run.  The message
-- is r.stderr; output.lua sends it where the job's stderr would go.
function M.not_started(cmd, msg, name)
  local code, line = 126
  local dir = name and msg:match("%(cwd%): '(.*)'$")
  local prog = name and msg:match("%(cmd%): '(.*)'$")
  if dir then
    code = 127
    line = ("tide: cannot change directory to '%s': %s\n"):format(dir, strerror(msg))
  elseif prog and name == "ENOENT" then
    code = 127
    line = ("tide: %s: command not found\n"):format(prog)
  elseif prog then
    line = ("tide: %s: %s\n"):format(prog, strerror(msg))
  else
    line = ("tide: cannot start %s: %s\n"):format(cmd, msg)
  end
  return {
    ok = false, code = code, cmd = cmd, elapsed = 0, error = msg, attempts = 1,
    user = 0, sys = 0, maxrss = 0, stdout = "", stderr = line,
  }
end

-- A job not run: dry_run prints it; resume found it in the job log
-- (entry: {code, signal number, elapsed}).
function M.dry_run(cmd)
  return { ok = true, dry_run = true, code = 0, cmd = cmd, elapsed = 0, attempts = 0 }
end

function M.resumed(cmd, e, ok_codes)
  local sig = e.signal ~= 0 and (core.signame(e.signal) or ("SIG" .. e.signal)) or nil
  return {
    ok = not sig and ok(e.code, false, ok_codes), code = not sig and e.code or nil, signal = sig,
    cmd = cmd, elapsed = e.elapsed, attempts = 0, resumed = true,
  }
end

-- Output kept for the result (capture mode): omitted counts the bytes
-- max_output dropped from the middle of each stream.
function M.captured(r, stdout, stderr, omit_out, omit_err)
  r.stdout, r.stderr = stdout, stderr
  if (omit_out or 0) + (omit_err or 0) > 0 then
    r.truncated = true
    r.omitted = { stdout = omit_out, stderr = omit_err }
  end
end

-- Output not kept for the result (it was printed, or went nowhere).
function M.uncaptured(r)
  r.stdout, r.stderr = nil, nil
end

-- The job's attempts: n, the tries' outlines when it could retry, and how
-- often it was requeued for memory.
function M.attempts(r, n, tries, requeued)
  r.attempts, r.tries = n, tries
  if requeued and requeued > 0 then
    r.requeued = requeued
  end
end

-- The resource ids the job's (last) attempt was given: {gpu = {"0"}}.
function M.resources(r, given)
  r.resources = given
end

-- The outline of one attempt, kept in r.tries.
function M.outline(r)
  return {
    cmd = r.cmd, code = r.code, signal = r.signal, elapsed = r.elapsed, timed_out = r.timed_out,
    lost = r.lost, error = r.lost and r.error or nil,
  }
end

return M
