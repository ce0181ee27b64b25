-- joblog.lua: run bookkeeping.  The job log (GNU parallel's --joblog
-- format), resuming from it keyed on content, and dry runs.
--
-- run.job calls before() for a job whose options set joblog, resume or
-- dry_run (a result means: do not run it) and after() once it has ended.
local core = require("tide.core")
local result = require("tide.run.result")
local state = require("tide.state")
local util = require("tide.util")

local M = {}

M.HEADER = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"

-- Open logs by path: several pools (or maps, or jobs) of one run share one.
local logs = {}

-- Job numbers of jobs run outside any map.
local seq = 0

local quote = util.quote

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
  log.f:write(("%d\t%s\t%.3f\t%.3f\t0\t0\t%d\t%d\t%s\n")
    :format(n, r.host or ":", core.time() - elapsed, elapsed, math.tointeger(code) or -1, sig, key))
  log.f:flush()
  log.done[key] = { code = code, signal = sig, elapsed = elapsed }
end

return M
