-- shell.lua: shell(cmd [, opts]), one job and its result.
--
-- A failing command is data (r.ok == false); only misuse raises.  Output is
-- grouped: a job's stdout and stderr are printed as one block each when it
-- ends, so jobs never interleave.
local core = require("tide.core")
local sched = require("tide.sched")

local M = {}

-- Every job run by this tide, for the exit status and the summary.
M.stats = { jobs = 0, failed = 0 }

M.KILL_GRACE = 2 -- seconds between SIGTERM and SIGKILL when cancelling

local OPTIONS = {
  capture = "boolean", check = "boolean", cwd = "string", stdin = "string",
  env = "table",
}

-- Words that only a shell understands, or that its builtins treat unlike
-- the programs of the same name (echo -e, pwd and symlinks): a command
-- starting with one goes to /bin/sh even with no special characters.
local SHELL_WORDS = {}
for w in ([[! . : [[ alias bg break case cd command continue declare do done
  echo elif else esac eval exec exit export fc fg fi for function getopts hash if
  in jobs kill let local logout popd printf pushd pwd read readonly return select set
  shift source suspend test then time times trap type typeset ulimit umask
  unalias unset until wait while { }]]):gmatch("%S+") do
  SHELL_WORDS[w] = true
end

-- A command string with nothing a shell would interpret runs directly:
-- /bin/sh -c doubles the cost of a short job and changes nothing.
local function argv_of(cmd)
  if cmd:find("[^%w_%./,:=+@%%^ \t-]") then
    return { "/bin/sh", "-c", cmd }
  end
  local argv, n = {}, 0
  for w in cmd:gmatch("[^ \t]+") do
    n = n + 1
    argv[n] = w
  end
  if n == 0 or SHELL_WORDS[argv[1]] or argv[1]:find("=", 1, true) then
    return { "/bin/sh", "-c", cmd }
  end
  return argv
end

-- Quotes one word for /bin/sh, only when needed.
local function quote(s)
  if s ~= "" and not s:find("[^%w_%./,:=+@%%^-]") then
    return s
  end
  return "'" .. s:gsub("'", [['\'']]) .. "'"
end
M.quote = quote

-- level: 3 from run itself, 4 from the checks it calls.
local function argerror(n, msg, level)
  error(("bad argument #%d to 'shell' (%s)"):format(n, msg), level or 4)
end

local function check_argv(cmd)
  local n = cmd.n or #cmd
  if n == 0 then
    argerror(1, "empty argv table")
  end
  local argv, words = {}, {}
  for i = 1, n do
    local v = cmd[i]
    if type(v) == "number" then
      v = tostring(v)
    elseif type(v) ~= "string" then
      argerror(1, ("argv[%d] must be a string, got %s"):format(i, type(v)))
    end
    argv[i], words[i] = v, quote(v)
  end
  return argv, table.concat(words, " ")
end

local function check_opts(opts)
  if opts == nil then
    return {}
  end
  if type(opts) ~= "table" then
    argerror(2, "options table expected, got " .. type(opts))
  end
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if not want then
      argerror(2, ("unknown option '%s'"):format(tostring(k)))
    elseif type(v) ~= want then
      argerror(2, ("option '%s' must be a %s, got %s"):format(k, want, type(v)))
    end
  end
  if opts.env then
    for k, v in pairs(opts.env) do
      local tv = type(v)
      if type(k) ~= "string" or k == "" or k:find("[=%z]") then
        argerror(2, ("env: bad variable name %s"):format(tostring(k)))
      elseif tv ~= "string" and tv ~= "number" and v ~= false then
        argerror(2, ("env.%s must be a string, a number or false, got %s"):format(k, tv))
      end
    end
  end
  return opts
end

local function result_without_job(cmd, capture, msg)
  local r = { ok = false, code = 126, cmd = cmd, elapsed = 0, error = msg }
  local line = ("tide: cannot start %s: %s\n"):format(cmd, msg)
  if capture then
    r.stdout, r.stderr = "", line
  else
    io.stderr:write(line)
  end
  return r
end

-- Starts the job; when descriptors or processes run out, waits for running
-- jobs to finish and tries again rather than failing (pool(200) under
-- `ulimit -n 64`).  With nothing running to wait for, gives up.
local function spawn(argv, spec)
  local delay = 0.005
  while true do
    local job, msg, name = core.spawn(argv, spec)
    if job then
      return job
    end
    local transient = name == "EMFILE" or name == "ENFILE" or name == "EAGAIN"
    if not transient or core.running() == 0 then
      return nil, msg
    end
    sched.sleep(delay)
    delay = math.min(delay * 2, 0.2)
  end
end

-- Prints a finished job's output as one block per stream.
local function emit(job)
  for fd, stream in ipairs({ "stdout", "stderr" }) do
    local ok, _, name = job:write(stream, fd)
    if not ok and name == "EPIPE" then
      core.die(core.SIGPIPE) -- `tide x.lua | head`: end quietly
    end
  end
end

function M.run(cmd, opts)
  opts = check_opts(opts)
  local argv, cmdstr
  local tc = type(cmd)
  if tc == "string" then
    -- sh also sets PWD when it runs in another directory.
    argv, cmdstr = opts.cwd and { "/bin/sh", "-c", cmd } or argv_of(cmd), cmd
  elseif tc == "table" then
    argv, cmdstr = check_argv(cmd)
  else
    argerror(1, "string or argv table expected, got " .. tc, 3)
  end
  local spec
  if opts.cwd or opts.env or opts.stdin then
    spec = { cwd = opts.cwd, env = opts.env, stdin = opts.stdin }
  end

  local stats = M.stats
  stats.jobs = stats.jobs + 1
  local job, msg = spawn(argv, spec)
  local r
  if not job then
    r = result_without_job(cmdstr, opts.capture, msg)
  else
    sched.await(job, function()
      -- The task is cancelled: its result is never seen, but the job
      -- did not succeed and counts as failed.
      stats.failed = stats.failed + 1
      job:terminate(M.KILL_GRACE)
    end)
    local code, signal, elapsed = job:result()
    r = {
      ok = code == 0, code = code, signal = signal, cmd = cmdstr,
      pid = job:pid(), elapsed = elapsed,
    }
    if opts.capture then
      r.stdout, r.stderr = job:output("stdout"), job:output("stderr")
    else
      emit(job)
    end
    job:release()
  end
  if not r.ok then
    stats.failed = stats.failed + 1
    if opts.check then
      local why = r.signal and ("killed by " .. r.signal) or ("exit code " .. tostring(r.code))
      error(("shell: command failed (%s): %s"):format(why, cmdstr), 2)
    end
  end
  return r
end

return M
