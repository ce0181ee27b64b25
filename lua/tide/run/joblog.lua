-- joblog.lua: run bookkeeping.  The job log (GNU parallel's --joblog
-- format), resuming from it keyed on content, and dry runs.
--
-- run.job calls before() for a job whose options set joblog, resume or
-- dry_run (a result means: do not run it) and after() once it has ended.
local core = require("tide.core")
local logfile = require("tide.run.logfile")
local result = require("tide.run.result")
local state = require("tide.state")
local util = require("tide.util")

local M = {}

M.HEADER = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"

-- Job numbers of jobs run outside any map.
local seq = 0

local quote = util.quote

local ESCAPES = { ["\\"] = "\\\\", ["\t"] = "\\t", ["\n"] = "\\n", ["\r"] = "\\r" }

-- s with backslashes, tabs, newlines and carriage returns escaped: one
-- line, one column, and two strings never look alike.
local function escape(s)
  return (s:gsub("[\\\t\n\r]", ESCAPES))
end

-- The Command column, which is also the resume key: the command itself,
-- escaped, and when the job was given a cwd or env, a marker " #tide
-- cwd=DIR env=K=V ..." (values quoted for sh, then escaped; env sorted by
-- name; a variable removed with false is "-K").  " #tide" in the command
-- is written " \#tide", so the marker is always the key's only one and
-- two jobs that differ have different keys.
function M.key(cmdstr, opts)
  local k = escape(cmdstr):gsub(" #tide", " \\#tide")
  local cwd, env = opts.cwd, opts.env
  if cwd or env then
    local parts = { k, " #tide" }
    if cwd then
      parts[#parts + 1] = " cwd=" .. escape(quote(cwd))
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
          parts[#parts + 1] = (i > 1 and " " or "")
            .. (v == false and "-" .. name or name .. "=" .. escape(quote(tostring(v))))
        end
      end
    end
    k = table.concat(parts)
  end
  return k
end

-- Reads an existing log: Command column -> its last line's fields; a
-- torn last line is left out (logfile.lua).  Whether it had any line.
local function load(path, done)
  local lines = logfile.read(path)
  for _, line in ipairs(lines) do
    local sq, _, start, runtime, _, _, code, sig, cmd =
      line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    if sq and sq ~= "Seq" then
      done[cmd] = {
        code = math.tointeger(tonumber(code)) or tonumber(code) or -1, signal = tonumber(sig) or 0,
        elapsed = tonumber(runtime) or 0, start = tonumber(start),
      }
    end
  end
  return #lines > 0
end

-- The open log for path (one per file, however it is named).  Without
-- resume the file is started afresh (as GNU parallel does) the first time
-- this run opens it; with resume, its lines are read and new ones
-- appended.
local function open(path, resume)
  local log, new = logfile.open(path, not resume, "shell: joblog")
  if new then
    log.done = {}
    if not (resume and load(path, log.done)) then
      logfile.write(log, M.HEADER:sub(1, -2))
    end
  end
  return log
end

-- nil to run the job; else the result to give without running it.
function M.before(pol, cmdstr, opts)
  if pol.dry_run then
    io.stdout:write(cmdstr, "\n")
    return result.dry_run(cmdstr)
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
  local r = result.resumed(cmdstr, e, pol.ok_codes)
  if not r.ok and resume == "failed" then
    return nil
  end
  state.resumed = state.resumed + 1
  return r
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
  local sig = result.logged_signal(r)
  -- Host: the sshlogin that ran it, ":" for this machine, as GNU parallel
  logfile.write(log, ("%d\t%s\t%.3f\t%.3f\t0\t0\t%d\t%d\t%s")
    :format(n, r.host or ":", core.time() - elapsed, elapsed, math.tointeger(code) or -1, sig, key))
  log.done[key] = { code = code, signal = sig, elapsed = elapsed }
end

return M
