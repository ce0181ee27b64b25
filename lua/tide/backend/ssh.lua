-- ssh.lua: running jobs on hosts reached by ssh (GNU parallel's --sshlogin).
--
-- hosts = {"4/user@node1", "node2", ":"}: N/ is the number of slots on that
-- host (default: the pool's size), ":" is this machine, and a login with
-- spaces is a whole ssh command ("ssh -p 2222 node3").  A job takes a slot
-- on the up host with the most free slots, so jobs spread out.
--
-- Each host gets one ssh ControlMaster, started by the first job that
-- needs it while the host's other jobs wait for it; a job then costs a
-- multiplexed session (milliseconds), not a handshake.  A host whose master
-- cannot start is reported once and marked down; its jobs go elsewhere.
-- A job whose connection is lost (ssh exits 255 and the wrapper's status
-- file cannot be read) is run again on another host, and its host is
-- marked down if its master is gone.  Host keys are checked as ssh always
-- does; BatchMode keeps a password prompt from hanging a sweep.
--
-- Over the master, each host runs one `tide --worker` (worker.lua) that
-- carries all of that host's jobs: a job costs two frames, not an ssh
-- session and a Perl wrapper.  A host without tide at this tide's path is
-- sent this binary, into ~/.cache/tide/tide-SHA256 there, checked by its
-- hash; a host that still cannot run a worker (another architecture, no
-- sha256sum) gets one ssh session per job, as does every host with
-- workers = false.
local core = require("tide.core")
local private = require("tide.backend.private")
local remote = require("tide.backend.remote")
local resources = require("tide.run.resources")
local sched = require("tide.run.sched")
local sshlogin = require("tide.backend.sshlogin")
local state = require("tide.state")
local util = require("tide.util")
local worker = require("tide.backend.worker")

local M = {}

local hostsets = {} -- [key] = the slots of the hosts of one hosts option
local WEAK = { __mode = "k" }
local masters = {} -- [login] = the state of its ControlMaster
local sockdir -- where the ControlMaster sockets live

-- The ssh command: the ssh option (a string of words or an argv table),
-- else $TIDE_SSH, else ssh.
local function ssh_words(opt)
  if type(opt) == "table" then
    return opt
  end
  local words = {}
  for w in (opt or os.getenv("TIDE_SSH") or "ssh"):gmatch("%S+") do
    words[#words + 1] = w
  end
  return words
end

local function hostset(hosts, each, ssh)
  local key = table.concat(hosts, ",") .. "|" .. each .. "|" .. table.concat(ssh, " ")
  local hs = hostsets[key]
  if hs then
    return hs
  end
  hs = { waiting = {} }
  for i, s in ipairs(hosts) do
    local n, login = sshlogin.parse(s)
    local h = { login = login, free = n or each, is_local = login == ":", res = setmetatable({}, WEAK) }
    if not h.is_local then
      local words = {}
      for w in login:gmatch("%S+") do
        words[#words + 1] = w
      end
      if #words > 1 then -- "ssh -p 2222 node3": its own ssh command
        h.name = table.remove(words)
        h.ssh = words
      else
        h.name, h.ssh = login, ssh
      end
    end
    hs[i] = h
  end
  hostsets[key] = hs
  return hs
end

-- A private directory (backend/private.lua): a socket there lets whoever
-- may connect to it run commands on the host as this user.
local function socket_dir()
  if not sockdir then
    sockdir = private.make(os.getenv("TMPDIR") or "/tmp", "tide-ssh-", "ssh control sockets")
  end
  return sockdir
end

local nsockets = 0

-- The ssh options every connection to h uses.  Sockets are numbered, not
-- named after the host, so that exit can remove them however tide ends.
local function base_argv(h)
  local m = masters[h.login]
  if not m.path then
    nsockets = nsockets + 1
    m.path = ("%s/%d"):format(socket_dir(), nsockets)
  end
  local argv = {}
  for i, w in ipairs(h.ssh) do
    argv[i] = w
  end
  for _, o in ipairs({ "-o", "ControlPath=" .. m.path, "-o", "BatchMode=yes" }) do
    argv[#argv + 1] = o
  end
  return argv
end

local function run_ssh(argv, opts)
  local job, msg = core.spawn(argv, opts)
  if not job then
    return nil, nil, "", msg -- out of descriptors or processes: as a failure
  end
  sched.await(job, function()
    job:terminate(state.KILL_GRACE)
  end)
  local code, signal = job:result()
  local out, err = job:output("stdout"), job:output("stderr")
  job:release()
  return code, signal, out, err
end

local warn = util.warn

-- Waits in queue until its turn: sched.complete(token).
local function wait_in(queue)
  sched.wait_turn(queue, {})
end

local function exited(job)
  return (pcall(job.result, job))
end

-- Starts h's ControlMaster as a job of tide's own and waits until its
-- socket appears (it is up) or it exits (the host is down).  Not `ssh -f`:
-- its master forks into the background only after a moment, and the
-- group kill that ends every tide job could catch it on the way.
local function start_master(m, h)
  local argv = base_argv(h)
  for _, o in ipairs({ "-o", "ControlMaster=yes", "-o", "ControlPersist=no", "-N", h.name }) do
    argv[#argv + 1] = o
  end
  local job, msg = core.spawn(argv, { stdout = "null" })
  if not job then
    return false, msg
  end
  m.job = job
  local delay = 0.002
  while not exited(job) do
    local f, _, errno = io.open(m.path)
    if f then
      f:close()
    end
    if f or errno ~= core.errno.ENOENT then -- a socket cannot be opened: it is there
      return true
    end
    sched.sleep(delay)
    delay = math.min(delay * 1.5, 0.05)
  end
  sched.await(job)
  m.job = nil
  local why = (job:output("stderr") or ""):gsub("%s+$", ""):match("[^\n]*$")
  if why == "" then
    why = "ssh exited with " .. tostring(job:result())
  end
  job:release()
  return false, why
end

-- Brings h's ControlMaster up, or waits for the job already doing it.
-- Returns true if the host is up.
local function ensure_master(h)
  local m = masters[h.login]
  if m == nil then
    m = { host = h, worker = {} }
    masters[h.login] = m
    base_argv(h) -- names the socket
  end
  sched.once(m, function()
    local up, why = start_master(m, h)
    m.state = up and "up" or "down"
    if not up then
      warn(("host '%s' is down: %s"):format(h.login, why))
    end
  end)
  h.down = m.state == "down"
  return not h.down
end

-- The words running cmd on h through its master.
local function on_host(h, cmd, ...)
  local argv = base_argv(h)
  for _, o in ipairs({ "-o", "ControlMaster=no", h.name, cmd, ... }) do
    argv[#argv + 1] = o
  end
  return argv
end

local hash -- this tide's sha256, false if it cannot be had

-- Sends this tide to h, once per version (its hash names it), and
-- returns the path of the copy there; nil and why if that failed.
local function ship(h)
  -- the running binary itself, even if its file was replaced or removed
  local bytes = util.slurp("/proc/self/exe")
  if hash == nil and bytes then
    local code, _, out = run_ssh({ "sha256sum" }, { stdin = bytes, stderr = "null" })
    hash = code == 0 and out:match("^(%x+)") or false
  end
  if not (bytes and hash) then
    return nil, "cannot read or hash /proc/self/exe"
  end
  local set = ('d="$HOME/.cache/tide"; f="$d/tide-%s"; '):format(hash)
  local check = ('echo "%s  $f" | sha256sum -c --status 2>/dev/null'):format(hash)
  local code, _, out = run_ssh(on_host(h, set .. check .. ' && echo "$f"'), { stderr = "null" })
  if code ~= 0 then
    code, _, out = run_ssh(on_host(h, set .. 'mkdir -p "$d" && t="$f.$$" && cat > "$t" && chmod 755 "$t" && '
      .. check:gsub("%$f", "$t") .. ' && mv -f "$t" "$f" && echo "$f" || { rm -f "$t"; exit 1; }'),
      { stdin = bytes })
  end
  local path = code == 0 and out:match("^(/[^\n]+)")
  if not path then
    return nil, "could not send tide there: " .. ((out or ""):match("[^\n]*") or "")
  end
  return path
end

-- Starts a worker on h: at this tide's path, else a copy sent there.
local function start_worker(h)
  local self = core.self()
  if not self then
    return nil, "tide runs as a Lua module (tide.so): there is no tide executable to start there"
  end
  local conn = worker.open(on_host(h, "exec " .. util.quote(self) .. " --worker"))
  local up, why = worker.ready(conn)
  if not up and conn.code == 127 then -- not there: send it
    local path, err = ship(h)
    if not path then
      return nil, err
    end
    conn = worker.open(on_host(h, "exec " .. util.quote(path) .. " --worker"))
    up, why = worker.ready(conn)
  end
  if up then
    return conn
  end
  return nil, why
end

-- h's worker connection, started by the first job that needs it while
-- the others wait; nil if h cannot run one (its jobs then take a session
-- each).
local function ensure_worker(h)
  local m = masters[h.login]
  sched.once(m.worker, function()
    local why
    m.conn, why = start_worker(h)
    if not m.conn then
      warn(("host '%s' cannot run a tide worker (%s): one ssh session per job"):format(h.login, why))
    end
  end)
  return m.conn
end

-- Wakes hs's waiters: one when slots come back, all when ids do (each
-- may want a different host's, or none).
local function wake(hs, all)
  if all then
    sched.complete_all(hs.waiting)
  elseif hs.waiting[1] then
    sched.complete(table.remove(hs.waiting, 1))
  end
end

-- Takes w slots, and want's resources if any, on the up host with the
-- most free slots among those that have them, waiting while none has.
-- Returns the host and the grant, or nil and why when no host that is up
-- can ever run the job.
local function acquire(hs, w, want)
  if want and not hs.ids_back then
    hs.ids_back = function() -- a host's ids came back
      wake(hs, true)
    end
  end
  while true do
    local best, any, could, why
    for _, h in ipairs(hs) do
      if not h.down then
        any = true
        local ok, no, fits = resources.judge(h, want, h.login, nil, hs.ids_back)
        could, why = could or ok, no or why
        if h.free >= w and (not best or h.free > best.free) and fits then
          best = h
        end
      end
    end
    if not any then
      return nil, "no host is up"
    elseif not could then
      return nil, "no host that is up has the ids asked for: " .. why
    end
    if best then
      -- taken before the master is waited for, when other jobs may look
      best.free = best.free - w
      local grant = resources.take_at(best, want)
      if best.is_local or ensure_master(best) then
        return best, grant
      end
      best.free = best.free + w -- down: its waiters look again
      if grant then
        resources.release(grant)
      end
      wake(hs, true)
    else
      wait_in(hs.waiting)
    end
  end
end

local function release(hs, h, w)
  h.free = h.free + w
  wake(hs, hs.ids_back ~= nil) -- the first waiter may be waiting for ids, not slots
end

-- Reads the status file of a job whose ssh exited 255: code, signal,
-- hangup (see remote.decode); nil if there is none.
local function status_of(h, status)
  local path = status:gsub("^TMP/", "")
  local cmd = ('f="${TMPDIR:-/tmp}"/%s; cat "$f" && rm -f "$f"'):format(path)
  local argv = base_argv(h)
  argv[#argv + 1] = h.name
  argv[#argv + 1] = cmd
  local code, _, out = run_ssh(argv, { stderr = "null" })
  if code == 0 then
    return remote.decode(out)
  end
end

-- The launcher of a job on these hosts (see backend.lua).
function M.launcher(pol, each)
  local ssh = ssh_words(pol.ssh)
  local hs = hostset(pol.hosts, each, ssh)
  local workers = pol.workers ~= false
  local L = {}

  -- The plan of one attempt: its host, its slots and its ids there; or
  -- nil and why if no host that is up can run it.
  function L.place(w, want)
    local h, grant = acquire(hs, w, want)
    if not h then
      return nil, grant
    end
    return { host = h, w = w, grant = grant }
  end

  -- Completes plan: argv and spec to spawn here, or the job on h's worker.
  function L.start(plan, argv, cmdstr, spec, grace)
    local h = plan.host
    if h.is_local then
      plan.argv, plan.spec = argv, spec
      return
    end
    local conn = workers and ensure_worker(h)
    if conn and conn.up then
      plan.job, plan.conn = worker.run(conn, argv, spec), conn
      return
    end
    plan.status, plan.remote = remote.status_name(), true
    local a = base_argv(h)
    for _, o in ipairs({ "-o", "ControlMaster=no", h.name, remote.command(cmdstr, spec, plan.status, grace) }) do
      a[#a + 1] = o
    end
    plan.argv, plan.spec = a, remote.client_spec(spec)
  end

  -- How the attempt ended there (see backend/init.lua); lost = "lost" if
  -- the job must run again elsewhere because its connection was lost.
  -- Only ssh's 255 needs a look at the far end's status file.
  function L.finish(plan, r)
    release(hs, plan.host, plan.w)
    local h = plan.host
    if plan.conn then
      if not plan.job.lost then
        return { host = h.login }
      end
      if not h.down then
        h.down = true
        warn(("host '%s' is down: its worker was lost (%s)"):format(h.login, plan.conn.why))
      end
      return { host = h.login, error = ("connection to '%s' lost"):format(h.login), lost = "lost" }
    end
    if h.is_local or r.code ~= 255 then
      return { host = h.login }
    end
    local m = masters[h.login]
    local code, signal, hangup
    if not exited(m.job) then
      code, signal, hangup = status_of(h, plan.status)
    end
    -- a hangup tide did not ask for: the connection went
    if (r.timed_out or not hangup) and (code or signal or r.timed_out) then
      return { host = h.login, far = true, code = code, signal = signal }
    end
    if exited(m.job) and not h.down then
      m.state, h.down = "down", true
      warn(("host '%s' is down: its connection was lost"):format(h.login))
    end
    return { host = h.login, error = ("connection to '%s' lost"):format(h.login), lost = "lost" }
  end

  function L.abandon(plan)
    release(hs, plan.host, plan.w)
  end

  function L.cancel() end -- the remote wrapper sees its launcher go

  return L
end

local function remove_sockets()
  if sockdir then
    for _, m in pairs(masters) do
      if m.path then
        os.remove(m.path)
      end
    end
    os.remove(sockdir)
    sockdir = nil
  end
end

-- Closes every ControlMaster: at the end of a script.
function M.shutdown()
  for _, m in pairs(masters) do
    if m.conn then
      worker.close(m.conn)
    end
  end
  for _, m in pairs(masters) do
    if m.conn then
      worker.wait(m.conn)
      m.conn = nil
    end
    if m.job then
      if not exited(m.job) then
        local argv = base_argv(m.host)
        for _, o in ipairs({ "-O", "exit", m.host.name }) do
          argv[#argv + 1] = o
        end
        run_ssh(argv, { stdout = "null", stderr = "null" })
      end
      sched.await(m.job)
      m.job:release()
    end
  end
  remove_sockets()
  masters = {}
end

-- After a script error the masters are killed with tide's other orphans
-- (reaper.c); their sockets are removed when Lua closes.
M.guard = setmetatable({}, { __gc = remove_sockets })

return M
