-- helper.lua: runs the real tide binary as a subprocess, as a user would.
-- The binary is $TIDE (set by ctest), else build/tide.
local M = {}

M.TIDE = os.getenv("TIDE") or "build/tide"
-- Absolute, so that tests may run tide from another directory.
if M.TIDE:sub(1, 1) ~= "/" then
  local p = io.popen("pwd")
  M.TIDE = p:read("l") .. "/" .. M.TIDE
  p:close()
end
M.SANITIZED = os.getenv("TIDE_SANITIZED") == "1"

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end
M.slurp = slurp

-- Lua source that defines hwm(): tide's peak resident memory so far, in
-- KiB.  Put before a script that checks its memory stays bounded.
M.HWM = [[
local function hwm()
  for l in io.lines("/proc/self/status") do
    local kb = l:match("^VmHWM:%s*(%d+)")
    if kb then return tonumber(kb) end
  end
end
]]

function M.spit(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
  return path
end

function M.quote(s)
  return "'" .. tostring(s):gsub("'", [['\'']]) .. "'"
end
local q = M.quote

function M.tmpdir()
  local p = io.popen("mktemp -d /tmp/tide-test.XXXXXX")
  local d = p:read("l")
  p:close()
  return d
end

-- A fresh temporary directory for each test of the describe block this is
-- called in, given to set before the test and removed after it.
function M.tmpdir_each(set)
  local busted = require("busted") -- a spec's before_each is in its own environment
  local dir
  busted.before_each(function()
    dir = M.tmpdir()
    set(dir)
  end)
  busted.after_each(function()
    os.execute("rm -rf " .. M.quote(dir))
  end)
end

-- The lines of s that end in a newline, without it.
function M.lines(s)
  local t = {}
  for l in s:gmatch("([^\n]*)\n") do
    t[#t + 1] = l
  end
  return t
end

-- The lines of the file at path; none if it cannot be read.
function M.file_lines(path)
  local t = {}
  local f = io.open(path, "rb")
  if f then
    for l in f:lines() do
      t[#t + 1] = l
    end
    f:close()
  end
  return t
end

-- The first line of the Lua error a script must stop with (exit 2), its
-- path shortened to script.lua.
function M.error_of(src)
  local r = M.script(src)
  assert(r.code == 2, ("exit %s, not 2: %s"):format(r.code, r.out))
  return (r.err:match("^tide: [^\n]*"):gsub("/[^ ]*/script%.lua", "script.lua"))
end

function M.now()
  local p = io.popen("date +%s.%N")
  local t = tonumber(p:read("l"))
  p:close()
  return t
end

-- Runs `tide args...` with opts.stdin (string), opts.env (table), opts.sh
-- (a shell prefix such as "ulimit -n 64;") and a hard timeout, so a hang
-- fails the test instead of the suite.  Returns {code, out, err, secs}.
-- opts.stdout: a path to send tide's stdout to instead (r.out is then "").
-- opts.wrap: a command prefix for tide itself, e.g. "prlimit --nofile=13:13".
function M.run(args, opts)
  opts = opts or {}
  local dir = M.tmpdir()
  local words = {}
  for i, a in ipairs(args) do
    words[i] = q(a)
  end
  local env = {}
  for k, v in pairs(opts.env or {}) do
    env[#env + 1] = k .. "=" .. q(v)
  end
  local stdin = "/dev/null"
  if opts.stdin then
    stdin = M.spit(dir .. "/in", opts.stdin)
  end
  local cmd = ("cd %s && %s t0=$(date +%%s%%N); %s timeout -s KILL %d %s %s %s <%s >%s 2>%s/err; "
    .. "echo $? $(( ($(date +%%s%%N) - t0) / 1000000 ))"):format(
    q(opts.cwd or "."), opts.sh or "", table.concat(env, " "), opts.timeout or 120,
    opts.wrap or "", q(M.TIDE), table.concat(words, " "), stdin, opts.stdout and q(opts.stdout) or dir .. "/out", dir)
  local p = io.popen(cmd)
  local code, ms = p:read("n", "n")
  p:close()
  local r = {
    code = code, out = opts.stdout and "" or slurp(dir .. "/out"), err = slurp(dir .. "/err"),
    secs = ms / 1000,
  }
  os.execute("rm -rf " .. q(dir))
  return r
end

-- Writes src to a temporary script and runs it with tide.
function M.script(src, args, opts)
  local dir = M.tmpdir()
  local path = M.spit(dir .. "/script.lua", src)
  local argv = { path }
  for _, a in ipairs(args or {}) do
    argv[#argv + 1] = a
  end
  local r = M.run(argv, opts)
  os.execute("rm -rf " .. q(dir))
  return r
end

-- Processes whose command line contains marker (tests put a unique marker
-- in job commands to check that nothing outlives tide).
-- The pattern is written as a regex that does not match itself ("[t]ide..."),
-- so the shell running pgrep, whose command line holds the pattern, is not
-- counted.
function M.pgrep(marker)
  local first, rest = marker:sub(1, 1), marker:sub(2)
  local pat = "[" .. first .. "]" .. rest:gsub("[%^%$%.%*%+%?%(%)%[%]%{%}|\\]", "\\%0")
  local p = io.popen("pgrep -f " .. q(pat) .. " | wc -l")
  local n = tonumber(p:read("l"))
  p:close()
  return n
end

-- The marker every long-running test process carries in its command line;
-- unique per run of the suite, so that concurrent runs do not see each
-- other's processes.
do
  -- ctest runs each spec file in its own busted: scripts/test then sets
  -- TIDE_TEST_TOKEN once for the whole run.  Otherwise busted reloads this
  -- module for every spec file, and its pid is the same for all of them.
  local f = assert(io.open("/proc/self/stat"))
  M.TOKEN = os.getenv("TIDE_TEST_TOKEN") or ("p" .. f:read("a"):match("^%d+"))
  f:close()
end
M.MARK = "tidetestmarker" .. M.TOKEN

-- A separate marker, also unique per run, for a test whose leak must not be
-- counted again by the final leftovers check.
function M.mark(name)
  return "tide" .. name .. "marker" .. M.TOKEN
end

-- Polls until no process carries marker, up to secs; returns the count left
-- (a killed process can take a moment to leave the process table).
function M.gone(marker, secs)
  local deadline = M.now() + (secs or 2)
  local n = M.pgrep(marker)
  while n > 0 and M.now() < deadline do
    os.execute("sleep 0.05")
    n = M.pgrep(marker)
  end
  return n
end

-- Path of a `sleep` whose name carries a marker (default M.MARK), so that it
-- shows in pgrep -f even as a grandchild: `SLEEP 100 &` inside a job.
function M.sleeper(marker)
  marker = marker or M.MARK
  local dir = "/tmp/tide-test-bin"
  local path = dir .. "/" .. marker .. "_sleep"
  os.execute(("mkdir -p %s && ln -sf /bin/sleep %s"):format(q(dir), q(path)))
  return path
end

-- Runs `tide script args | head -n lines`; returns {code (tide's status),
-- out (what head printed), err (tide's stderr), secs}.
function M.pipe_head(src, lines, opts)
  opts = opts or {}
  local dir = M.tmpdir()
  local path = M.spit(dir .. "/script.lua", src)
  local cmd = ("cd %s && t0=$(date +%%s%%N); { timeout -s KILL %d %s %s </dev/null 2>%s/err; "
    .. "echo $? >%s/code; } | head -n %d >%s/out; echo $(( ($(date +%%s%%N) - t0) / 1000000 ))"):format(
    q(opts.cwd or "."), opts.timeout or 60, q(M.TIDE), q(path), dir, dir, lines or 1, dir)
  local p = io.popen("bash -c " .. q(cmd))
  local ms = p:read("n")
  p:close()
  local r = {
    code = tonumber(slurp(dir .. "/code")), out = slurp(dir .. "/out"),
    err = slurp(dir .. "/err"), secs = ms / 1000,
  }
  os.execute("rm -rf " .. q(dir))
  return r
end

-- Python driver for signal tests: starts tide with SIGINT, SIGTERM and SIGHUP
-- at their defaults (whatever busted inherited), waits until `ready` files
-- exist in the work directory, then sends signals, each after its delay.
local SIGRUN = [[
import os, signal, subprocess, sys, time
tide, script, work, ready, plan = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
wait = float(sys.argv[6])
def dfl():
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)
out = open(os.path.join(work, "out"), "wb")
if sys.argv[7] == "pipe":  # a pipe nobody reads: writes to it block once full
    keep, out = os.pipe()
err = open(os.path.join(work, "err"), "wb")
p = subprocess.Popen([tide, script], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                     cwd=work, preexec_fn=dfl)
t0 = time.time()
while len([f for f in os.listdir(work) if f.startswith("ready")]) < ready:
    if p.poll() is not None or time.time() - t0 > 30:
        break
    time.sleep(0.02)
ts = time.time()
for step in plan.split(","):
    if not step:
        continue
    delay, name = step.split(":")
    time.sleep(float(delay))
    if p.poll() is None:
        p.send_signal(getattr(signal, "SIG" + name))
try:
    rc = p.wait(timeout=wait)
except subprocess.TimeoutExpired:
    p.kill()
    p.wait()
    rc = "timeout"
if isinstance(rc, int) and rc < 0:
    rc = 128 - rc
print(rc, time.time() - ts)
]]

-- Runs src with tide, waits for opts.ready files named ready* in the script's
-- working directory (the script sees it as its cwd), then sends opts.signals,
-- a list of {delay_seconds, "TERM"|"INT"|"HUP"|"KILL"}.  Returns {code (or
-- "timeout"), out, err, secs (from the first signal's time base to exit)}.
-- opts.wait: seconds to wait for tide to exit after the signals (default 30)
-- before SIGKILLing it and reporting "timeout".  opts.stdout_pipe: tide's
-- stdout is a pipe that is never read (r.out is then "").  opts.env:
-- variables to set for tide.
function M.signal_run(src, opts)
  local dir = M.tmpdir()
  local path = M.spit(dir .. "/script.lua", src)
  local steps = {}
  for i, s in ipairs(opts.signals or {}) do
    steps[i] = ("%g:%s"):format(s[1], s[2])
  end
  local env = {}
  for k, v in pairs(opts.env or {}) do
    env[#env + 1] = q(k .. "=" .. v)
  end
  local cmd = ("env %s python3 -c %s %s %s %s %d %s %g %s"):format(table.concat(env, " "), q(SIGRUN),
    q(M.TIDE), q(path), q(dir), opts.ready or 0, q(table.concat(steps, ",")), opts.wait or 30,
    opts.stdout_pipe and "pipe" or "file")
  local p = io.popen(cmd)
  local code = p:read("n") or p:read("l")
  local secs = p:read("n")
  p:close()
  local r = { code = code, secs = secs, out = slurp(dir .. "/out"), err = slurp(dir .. "/err") }
  os.execute("rm -rf " .. q(dir))
  return r
end

-- Runs the shell command cmd (not tide) with opts.env (table), opts.stdin
-- (string) and a hard timeout (opts.timeout, default 60 s).  Returns
-- {code, out, err}.
function M.sh(cmd, opts)
  opts = opts or {}
  local dir = M.tmpdir()
  local env = {}
  for k, v in pairs(opts.env or {}) do
    env[#env + 1] = "export " .. k .. "=" .. q(v) .. ";"
  end
  local stdin = "/dev/null"
  if opts.stdin then
    stdin = M.spit(dir .. "/in", opts.stdin)
  end
  local p = io.popen(("%s timeout -s KILL %d sh -c %s <%s >%s/out 2>%s/err; echo $?"):format(
    table.concat(env, " "), opts.timeout or 60, q(cmd), stdin, dir, dir))
  local code = p:read("n")
  p:close()
  local r = { code = code, out = slurp(dir .. "/out"), err = slurp(dir .. "/err") }
  os.execute("rm -rf " .. q(dir))
  return r
end

-- The real engines of the backend specs (scripts/services, started by the
-- ctest fixture tide_services for tests/backend_*_spec.lua): reads
-- $TIDE_SERVICES/env.  Returns {dir, ssh (a command prefix: "ssh -F ..."),
-- host_a, host_b (two ssh aliases of 127.0.0.1, one port each), slurm_conf,
-- env (the variables as a table, for M.run's or M.sh's opts.env)}.  Raises
-- an error if the services are not running.
local SERVICE_DAEMONS = { "munge/munged", "slurm/slurmctld", "slurm/slurmd", "ssh/sshd" }

function M.services()
  local dir = os.getenv("TIDE_SERVICES")
  local hint = "; run the spec through ctest (fixture tide_services), or "
    .. "scripts/services start DIR and set TIDE_SERVICES=DIR"
  if not dir or dir == "" then
    error("TIDE_SERVICES is not set" .. hint, 2)
  end
  local f = io.open(dir .. "/env")
  if not f then
    error("no " .. dir .. "/env: the test services are not running" .. hint, 2)
  end
  local env = {}
  for line in f:lines() do
    local k, v = line:match("^export ([%w_]+)='(.*)'$")
    if k then
      env[k] = v
    end
  end
  f:close()
  for _, d in ipairs(SERVICE_DAEMONS) do
    local pf = io.open(dir .. "/" .. d .. ".pid")
    local pid = pf and pf:read("n")
    if pf then
      pf:close()
    end
    local st = pid and io.open("/proc/" .. pid .. "/stat")
    local state = st and st:read("a"):match("%) (%a)")
    if st then
      st:close()
    end
    if not state or state == "Z" or state == "X" then
      error(d:match("[^/]+$") .. " of the test services in " .. dir .. " is not running" .. hint, 2)
    end
  end
  return {
    dir = dir, ssh = env.TIDE_TEST_SSH, host_a = env.TIDE_TEST_HOST_A, host_b = env.TIDE_TEST_HOST_B,
    slurm_conf = env.SLURM_CONF, env = env,
  }
end

-- The services' environment (SLURM_CONF, TIDE_TEST_SSH, TIDE_TEST_HOST_A/B,
-- TIDE_TEST_SERVICES) as a fresh table, to pass as opts.env, e.g.
-- h.run({"script.lua"}, {env = h.service_env()}).
-- Polls squeue until no job is queued or running, up to 30 s (Slurm ends
-- a cancelled job's books on its own schedule, usually within 0.1 s);
-- returns what squeue still shows ("" once empty).
function M.squeue_empty(env)
  local left
  for _ = 1, 300 do
    left = M.sh("squeue -h -o '%i %T'", { env = env }).out
    if left == "" then
      break
    end
    os.execute("sleep 0.1")
  end
  return left
end

function M.service_env(extra)
  local env = {}
  for _, t in ipairs({ M.services().env, extra or {} }) do
    for k, v in pairs(t) do
      env[k] = v
    end
  end
  return env
end

-- h.script with the services' environment unless opts.env is given.
function M.service_script(src, opts)
  opts = opts or {}
  opts.env = opts.env or M.service_env()
  return M.script(src, opts.args, opts)
end

-- The run report in a real headless Chromium (Debian's chromium, which
-- the test command installs), with no network at all when we are root.
local CHROMIUM = "chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
  .. "--disable-background-networking --disable-component-update --disable-sync"

-- Loads path in Chromium; returns the DOM after the page's scripts ran and
-- what the page wrote to its console.  As root the browser runs with no
-- network at all (unshare -n), so a page that needed one would show it.
function M.render(path)
  local dir = M.tmpdir()
  local offline = M.sh("id -u").out == "0\n" and "unshare -n " or ""
  local r = M.sh(("%stimeout -s KILL 90 %s --user-data-dir=%s --enable-logging=stderr --v=0 --dump-dom %s")
    :format(offline, CHROMIUM, M.quote(dir .. "/profile"), M.quote("file://" .. path)), { timeout = 120 })
  os.execute("rm -rf " .. M.quote(dir))
  if r.code ~= 0 then
    error("chromium failed: " .. r.err:sub(1, 2000), 2)
  end
  local console = {}
  for line in r.err:gmatch("[^\n]+") do
    if line:find(":CONSOLE", 1, true) then
      console[#console + 1] = line
    end
  end
  return r.out, console
end

-- The checks every report passes: the script ran to its end with no
-- console message, nothing in the file points outside it.
function M.check_page(path)
  local text = M.slurp(path)
  for _, outside in ipairs({ "http://", "https://", "<link", "<script src" }) do
    if text:find(outside, 1, true) then
      error(("the report refers to something outside it: %s"):format(outside), 2)
    end
  end
  local dom, console = M.render(path)
  if console[1] then
    error("the page wrote to its console:\n" .. table.concat(console, "\n"), 2)
  end
  if not dom:find('data-ready="1"', 1, true) then
    error("the page's script did not finish", 2)
  end
  return dom
end

-- Runs a shell command; its stdout and stderr together, and its exit code.
function M.out_of(cmd)
  local p = io.popen("(" .. cmd .. ") 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

-- Whether a program is in PATH.
function M.have(prog)
  return os.execute("command -v " .. prog .. " >/dev/null 2>&1") == true
end

return M
