-- job.lua: shell(cmd [, opts]), one job, its attempts and its result.
--
-- A failing command is data (r.ok == false); only misuse raises.  Output is
-- grouped by default: a job's stdout and stderr are printed as one block
-- each when it ends, so jobs never interleave; output.lua has the other
-- modes, tags, order, per-line callbacks and results directories;
-- result.lua builds the result table from what happened.
--
-- A job with no job or output options (from its own options, its map's or
-- its pool's) and no ordered map above it takes the short path: spawn,
-- wait, report.  The others go through run_controlled, which applies them.
local core = require("tide.core")
local options = require("tide.run.options")
local pool = require("tide.run.pool")
local result = require("tide.run.result")
local sched = require("tide.run.sched")
local state = require("tide.state")
local summary = require("tide.run.summary")
local util = require("tide.util")

-- Only jobs with options (or a report) need these: loaded on first use.
local lazy = util.lazy
local backend = lazy(function()
  return require("tide.backend")
end)
local control = lazy(function()
  return require("tide.run.control")
end)
local joblog = lazy(function()
  return require("tide.run.joblog")
end)
local output = lazy(function()
  return require("tide.run.output")
end)
local report = lazy(function()
  return require("tide.run.report")
end)
local resources = lazy(function()
  return require("tide.run.resources")
end)

local M = {}

-- How many times a job whose connection was lost moves to another host
-- before a loss counts as a failed attempt (the moves option).
local MAX_MOVES = 5

-- The options of shell() itself; the job options (timeout, retries...) are
-- options.JOB's, also valid for pools and maps, and so is the count of a
-- resource of the job's pool (gpu = 1).
local OPTIONS = options.SHELL

-- Gate and runtimes of the jobs run outside any pool.
M.main = {}

local EMPTY = {}

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

-- The argv of a command string: sh -c cmd, sh being the shell option
-- (default /bin/sh).  A command with nothing a shell would interpret runs
-- directly: sh -c doubles the cost of a short job and changes nothing.
-- In another directory it always goes through the shell, which sets PWD.
local function argv_of(cmd, sh, cwd)
  sh = sh or "/bin/sh"
  if cwd or cmd:find("[^%w_%./,:=+@%%^ \t-]") then
    return { sh, "-c", cmd }
  end
  local argv, n = {}, 0
  for w in cmd:gmatch("[^ \t]+") do
    n = n + 1
    argv[n] = w
  end
  if n == 0 or SHELL_WORDS[argv[1]] or argv[1]:find("=", 1, true) then
    return { sh, "-c", cmd }
  end
  return argv
end

local quote = util.quote

-- level: 3 from run itself, 4 from the checks it calls.
local function argerror(n, msg, level)
  error(("bad argument #%d to 'shell' (%s)"):format(n, msg), level or 4)
end

-- argv, cmd string from an argv table; nil and a message if it is bad.
local function from_argv(cmd)
  local n = cmd.n or #cmd
  if n == 0 then
    return nil, "empty argv table"
  end
  local first = cmd[1]
  if n == 1 and type(first) == "string" and not first:find("\0", 1, true) then
    return { first }, quote(first) -- the common one-word command, without the join
  end
  local argv, words = {}, {}
  for i = 1, n do
    local v = cmd[i]
    if type(v) == "number" then
      v = tostring(v)
    elseif type(v) ~= "string" then
      return nil, ("argv[%d] must be a string, got %s"):format(i, type(v))
    elseif v:find("\0", 1, true) then -- exec would cut it there
      return nil, ("argv[%d] contains a NUL byte"):format(i)
    end
    argv[i], words[i] = v, quote(v)
  end
  return argv, table.concat(words, " ")
end

-- Returns opts (never nil) and a table of the job options it sets, checked
-- and normalized, or nil if it sets none.  res: the resources of the pool
-- the job runs in, if any, whose names are job options too.
local function check_opts(opts, res)
  if opts == nil then
    return EMPTY
  end
  if type(opts) ~= "table" then
    argerror(2, "options table expected, got " .. type(opts))
  end
  local ctl
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if want == "slots" then
      local w = options.slots(v)
      if not w then
        argerror(2, ("option 'slots' must be a whole number of at least 1, got %s"):format(util.describe(v)))
      end
      ctl = ctl or {}
      ctl.slots = w
    elseif want then
      if type(v) ~= want then
        argerror(2, ("option '%s' must be a %s, got %s"):format(k, want, type(v)))
      end
    elseif options.JOB[k] then
      local value, msg = options.check(k, v)
      if value == nil then
        argerror(2, msg)
      end
      ctl = ctl or {}
      ctl[k] = value
    elseif res and res.kind[k] then
      local value, msg = resources.count(res, k, v)
      if value == nil then
        argerror(2, msg)
      end
      ctl = ctl or {}
      ctl[k] = value
    elseif k == "order" or k == "resources" then
      argerror(2, ("option '%s' is a %s: set it on pool{...}%s"):format(k, k == "order" and "map's" or "pool's",
        k == "order" and " or p:map(fn, list, {order = ...})" or ""))
    else
      local near = type(k) == "string" and (util.closest(k, OPTIONS) or util.closest(k, options.JOB))
      if not near and type(k) == "string" and (res or type(v) == "number") then
        argerror(2, resources.unknown(k, res))
      end
      argerror(2, ("unknown option '%s'%s"):format(tostring(k), near and (" (did you mean '%s'?)"):format(near) or ""))
    end
  end
  local why = ctl and options.backend_conflict(ctl)
  if why then
    argerror(2, why)
  end
  if opts.capture and opts.output and opts.output ~= "capture" then
    argerror(2, ("capture = true and output = '%s' contradict each other"):format(opts.output))
  end
  if opts.cwd and opts.cwd:find("\0", 1, true) then
    argerror(2, "option 'cwd' contains a NUL byte")
  end
  if opts.env then
    for k, v in pairs(opts.env) do
      local tv = type(v)
      if type(k) ~= "string" or k == "" or k:find("[=%z]") then
        argerror(2, ("env: bad variable name %s"):format(tostring(k)))
      elseif tv ~= "string" and tv ~= "number" and v ~= false then
        argerror(2, ("env.%s must be a string, a number or false, got %s"):format(k, tv))
      elseif tv == "string" and v:find("\0", 1, true) then
        argerror(2, ("env.%s contains a NUL byte"):format(k))
      end
    end
  end
  return opts, ctl
end

-- Starts the job, waiting out a shortage of descriptors or processes.
-- env, more: "NAME=value" strings or lists of them for its environment
-- (its task's TIDE_SLOT, its resources), under spec.env.
local spawn = sched.start_process

-- Prints a finished job's output as one block per stream.
local function emit(job)
  util.checked(job:write("stdout", 1))
  util.checked(job:write("stderr", 2))
end

-- The end of a failed job's stderr, for the report.
local function failed_tail(job, r)
  if state.report and not r.ok then
    return job:output("stderr", report.TAIL)
  end
end

-- A running job's task is cancelled (a sibling raised, a halt, a stop):
-- its result is never seen.  It did not succeed, so it counts as failed,
-- unless it was stopped on purpose.
local function stop(rec, reason)
  if state.ON_PURPOSE[reason] then
    state.stopped = state.stopped + 1
  else
    state.failed = state.failed + 1
  end
  control.stop_job(rec)
end

-- The short path's on_cancel, one for every job (sched passes the job).
local function cancel_short(reason, job)
  stop({ job = job, grace = state.KILL_GRACE }, reason)
end

-- Closes a controlled job's books when shell() returns, raises, or its
-- task is cancelled: deadlines, watches and borrowed slots.
local Books = {
  __close = function(b)
    if b.rec then
      control.forget(b.rec, b.rt)
      if state.report then
        report.stopped(b.rec, b.task) -- its task was cancelled while it ran
      end
    end
    if b.plan then
      b.via.abandon(b.plan)
      b.plan = nil
    end
    if b.release then
      b.release()
      b.release = nil
    end
    if b.grant then
      resources.release(b.grant)
      b.grant = nil
    end
  end,
}

-- e[NAME] = value, of "NAME=value".
local function put_env(e, kv)
  local eq = kv:find("=", 1, true)
  e[kv:sub(1, eq - 1)] = kv:sub(eq + 1)
end

-- The spawn options of a job run elsewhere: the environment strings tide
-- gives it (env, more) go to the far end, under the job's own env.
local function far_spec(spec, env, more)
  if not (env or more) then
    return spec
  end
  local s, e = {}, {}
  for k, v in pairs(spec or EMPTY) do
    s[k] = v
  end
  if type(env) == "string" then
    put_env(e, env)
  else
    for _, kv in ipairs(env or EMPTY) do
      put_env(e, kv)
    end
  end
  for _, kv in ipairs(more or EMPTY) do
    put_env(e, kv)
  end
  for k, v in pairs(s.env or EMPTY) do
    e[k] = v
  end
  s.env = e
  return s
end

-- One attempt: returns its result, the job (nil if it could not start),
-- and whether it must run again: stopped for memory, or its connection to
-- another machine was lost.  o: the output plan, if the job needs one;
-- via: the launcher of a job that runs elsewhere (backend.lua); want: the
-- resources it asks for, {set = the pool's, need = {name = count},
-- holder = books}.
local function attempt(argv, cmdstr, spec, pol, ctx, books, o, via, want)
  if o then
    output.begin(o, cmdstr)
  end
  local grace = pol.kill_grace or state.KILL_GRACE
  local env = books.task and books.task.env
  local plan, more, why
  -- resources are held while this attempt runs, not between attempts; a
  -- job sent elsewhere gets them from the host its launcher picks
  if via then
    plan, why = via.place(pol.slots or 1, want)
    if not plan then
      return result.not_started(cmdstr, why)
    end
    books.via, books.plan, books.grant = via, plan, plan.grant
  elseif want then
    local grant
    grant, why = resources.acquire(want.set, want.need, books)
    if not grant then
      return result.not_started(cmdstr, why)
    end
  end
  if books.grant then
    more = resources.env(books.grant)
  end
  if plan then
    via.start(plan, argv, cmdstr, far_spec(spec, env, more), grace)
    argv, spec, env, more = plan.argv, plan.spec, nil, nil
  end
  local job, msg, name
  if plan and plan.job then -- on a worker (backend/worker.lua)
    job = plan.job
  else
    job, msg, name = spawn(argv, spec, env, more)
  end
  if not job then
    if plan then
      books.plan = nil
      via.abandon(plan)
    end
    return result.not_started(cmdstr, msg, name)
  end
  local rec = { job = job, grace = grace, t0 = core.now(), cmd = cmdstr, remote = plan and plan.remote }
  local rt
  books.rec = rec
  local timeout = pol.timeout
  if type(timeout) == "number" then
    control.arm(rec, timeout)
  elseif timeout then
    rt = ctx.runtimes or control.runtimes()
    ctx.runtimes = rt
    rec.pct = timeout.pct
    control.start_relative(rt, rec)
  end
  books.rt = rt
  if pol.min_free then
    rec.min_free = pol.min_free
    control.watch_memory(rec)
  end
  local function on_cancel(reason)
    stop(rec, reason)
    if plan then
      via.cancel(plan, grace)
    end
  end
  if o and o.watch then
    output.follow(job, o, on_cancel) -- an error in on_line: books are closed
  else
    sched.await(job, on_cancel)
  end
  control.forget(rec, rt)
  books.rec, books.rt = nil, nil
  if job.failed then -- a worker could not start it
    books.plan = nil
    via.abandon(plan)
    job:release()
    return result.not_started(cmdstr, job.failed, job.failed_name)
  end
  local r = result.of_job(job, cmdstr, rec.timed_out, pol.ok_codes)
  local lost
  if plan then
    books.plan = nil
    local facts = via.finish(plan, r)
    result.from_far_end(r, facts, pol.ok_codes)
    lost = facts.lost
  end
  if rt and r.ok then
    control.add_runtime(rt, r.elapsed)
  end
  return r, job, rec.mem_killed or lost
end

-- What a retry function's answer means: the argv and cmd string to run
-- next, or nil to stop.
local function next_command(again, argv, cmdstr, opts, sh)
  if again == true then
    return argv, cmdstr
  elseif again == false or again == nil then
    return nil
  elseif type(again) == "string" then
    return argv_of(again, sh, opts.cwd), again
  elseif type(again) == "table" then
    local a, s = from_argv(again)
    if a then
      return a, s
    end
    error(("bad argument #2 to 'shell' (option 'retry' returned a bad argv table: %s)"):format(s), 4)
  end
  error(("bad argument #2 to 'shell' (option 'retry' returned a %s; false, true, a command string or "
    .. "an argv table expected)"):format(type(again)), 4)
end

local function run_controlled(argv, cmdstr, opts, spec, pol, t)
  local p = t and t.pool
  local ctx = p or M.main
  local stats = state
  if pol.joblog or pol.dry_run or pol.resume then
    local done = joblog.before(pol, cmdstr, opts)
    if done then
      return done
    end
  end
  -- capture = true or false in shell() itself wins over an inherited mode
  local mode = pol.output or "group"
  if opts.capture then
    mode = "capture"
  elseif opts.capture == false and mode == "capture" then
    mode = "group"
  end
  local capture = mode == "capture"
  local o = output.plan(pol, mode, t, cmdstr, spec)
  if o then
    spec = o.spec
  end
  stats.jobs = stats.jobs + 1
  local books <close> = setmetatable({ task = t }, Books)
  if pol.slots and p then
    books.release = pool.acquire(t, pol.slots, cmdstr)
  end
  local res = p and p.res
  local need = res and resources.need(res, pol)
  local want = need and { set = res, need = need, holder = books }
  local retries = pol.retries or (pol.retry and math.huge) or 0
  local tries = retries > 0 and {} or nil
  local gated = pol.delay or pol.max_load or pol.min_free
  local via, why
  if pol.hosts or pol.backend or pol.slurm then
    via, why = backend.launcher(pol)
    if why then
      error(("bad argument #2 to 'shell' (%s)"):format(why), 3)
    end
  end
  local n, requeued, moved = 0, 0, 0
  local r, job, tail
  while true do
    if gated then
      ctx.gate = ctx.gate or control.gate()
      control.pass(ctx.gate, pol)
    end
    local again
    r, job, again = attempt(argv, cmdstr, spec, pol, ctx, books, o, via, want)
    if books.grant then
      result.resources(r, resources.given(books.grant))
      resources.release(books.grant)
      books.grant = nil
    end
    if again == "lost" and moved < (pol.moves or MAX_MOVES) then
      -- its connection was lost: runs again on another host
      moved = moved + 1
      job:release()
    elseif again == true then
      -- stopped for memory: not an attempt; runs again once memory is back
      requeued = requeued + 1
      job:release()
    else
      n = n + 1
      if tries then
        tries[n] = result.outline(r)
      end
      if r.ok or n > retries then
        break
      end
      if pol.retry then
        if job then
          result.captured(r, job:output("stdout"), job:output("stderr"))
        end
        result.attempts(r, n, tries)
        local nargv, ncmd = next_command(pol.retry(r, n), argv, cmdstr, opts, pol.shell)
        if not nargv then
          break
        end
        argv, cmdstr = nargv, ncmd
      end
      if job then
        job:release() -- a failed attempt's output is dropped, as GNU parallel does
      end
      local wait = (pol.retry_delay or 0) * (pol.backoff or 1) ^ (n - 1)
      if wait > 0 then
        sched.sleep(wait)
      end
    end
  end
  if job then
    if o then
      if o.mode ~= "capture" then
        result.uncaptured(r)
      end
      output.finish(job, o, r)
    elseif capture then
      result.captured(r, job:output("stdout"), job:output("stderr"))
    else
      result.uncaptured(r)
      emit(job)
    end
    tail = failed_tail(job, r)
    job:release()
  elseif o then
    output.not_started(o, r)
  elseif not capture then
    util.checked(core.write(2, r.stderr))
    result.uncaptured(r)
  end
  result.attempts(r, n, tries, requeued)
  if o and o.res then
    output.record(o, r, argv)
  end
  if pol.joblog then
    joblog.after(pol, r, cmdstr, opts, t)
  end
  return r, tail
end

function M.run(cmd, opts)
  local t = sched.current()
  local ctl
  opts, ctl = check_opts(opts, t and t.pool and t.pool.res)
  local argv, cmdstr
  local tc = type(cmd)
  if tc == "string" then
    if cmd:find("\0", 1, true) then
      argerror(1, "command contains a NUL byte", 3)
    end
    cmdstr = cmd -- its argv once the shell option is known
  elseif tc == "table" then
    argv, cmdstr = from_argv(cmd)
    if not argv then
      argerror(1, cmdstr, 3)
    end
  else
    argerror(1, "string or argv table expected, got " .. tc, 3)
  end
  local spec
  if opts.cwd or opts.env or opts.stdin then
    spec = { cwd = opts.cwd, env = opts.env, stdin = opts.stdin }
  end

  local st = t and t.map -- the map whose task this is: its options apply
  local pol = ctl
  if st then
    if t.cancelled then
      sched.checkpoint() -- halted: no new job
    end
    local defaults = st.jobopts
    if defaults then
      pol = ctl and setmetatable(ctl, { __index = defaults }) or defaults
    end
  end
  if not argv then
    argv = argv_of(cmd, pol and pol.shell, opts.cwd)
  end
  local stats = state
  if not st then
    stats.outside = stats.outside + 1
  end
  local r, tail
  local called = state.report and core.now()
  if pol or (t and t.out) then
    r, tail = run_controlled(argv, cmdstr, opts, spec, pol or EMPTY, t)
  else
    stats.jobs = stats.jobs + 1
    local job, msg, name = spawn(argv, spec, t and t.env)
    if not job then
      r = result.not_started(cmdstr, msg, name)
      if not opts.capture then
        util.checked(core.write(2, r.stderr))
        result.uncaptured(r)
      end
    else
      local on_cancel = cancel_short
      if state.report then -- the hot path pays only for a report
        local t0 = core.now()
        on_cancel = function(reason)
          local rec = { job = job, grace = state.KILL_GRACE, t0 = t0, cmd = cmdstr }
          stop(rec, reason)
          report.stopped(rec, t)
        end
      end
      sched.await(job, on_cancel)
      r = result.of_job(job, cmdstr)
      result.attempts(r, 1)
      if opts.capture then
        result.captured(r, job:output("stdout"), job:output("stderr"))
      else
        emit(job)
      end
      tail = failed_tail(job, r)
      job:release()
    end
  end
  if state.report then
    report.job(r, t, called, tail)
  end
  if r.lost then
    util.warn(("%s: %s"):format(r.cmd, r.error)) -- never a silent loss
  end
  if not r.ok then
    if not r.resumed then
      stats.failed = stats.failed + 1
      summary.note(r)
    end
    if t then
      t.failed = true -- its item's record says "failed"
    end
  elseif r.elapsed > stats.slow_floor and not (r.resumed or r.dry_run) then
    summary.note(r)
  end
  if not st then
    stats.outside_done = stats.outside_done + 1
  end
  local observe = st and st.observe
  if observe and not r.resumed then
    observe(r) -- a halting map counts it
  end
  if not r.ok and opts.check then
    error(("shell: command failed (%s): %s"):format(result.why(r), r.cmd), 2)
  end
  return r
end

return M
