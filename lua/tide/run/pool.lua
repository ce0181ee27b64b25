-- pool.lua: pool(n) and p:map(fn, list [, opts]), the scheduling policy.
--
-- A pool is a number of slots.  Each map call feeds items into the pool's
-- slots one at a time, pulling from its list only when a slot is free, so
-- an endless generator costs nothing up front.  Several maps may share a
-- pool; they are served in the order they asked.
--
-- An item's task holds one slot, or its weight (map's slots option); a
-- job that needs more (shell's slots option) asks the pool for them while
-- its task waits.  Those requests go first, and nothing jumps the queue:
-- while the head request or item does not fit, nothing else starts.
--
-- A map may halt (GNU parallel's --halt): it counts the results of the
-- jobs its tasks run, and once the condition holds it starts no new item
-- ("soon"), or also cancels the running ones ("now").  A map may also be
-- stopped on purpose (tide.stop, stop_when): no new item, the running
-- ones cancelled, and none of that counted as a failure.
local core = require("tide.core")
local options = require("tide.run.options")
local progress = require("tide.run.progress")
local result = require("tide.run.result")
local sched = require("tide.run.sched")
local state = require("tide.state")
local util = require("tide.util")

-- Only maps that order, record, report or run on hosts need these.
local lazy = util.lazy
local output = lazy(function()
  return require("tide.run.output")
end)
local records = lazy(function()
  return require("tide.run.record")
end)
local report = lazy(function()
  return require("tide.run.report")
end)
local sshlogin = lazy(function()
  return require("tide.backend.sshlogin")
end)
local resources = lazy(function()
  return require("tide.run.resources")
end)

local M = {}

local Pool = {}
Pool.__index = Pool
Pool.__name = "tide.run.pool"

local describe, callable = util.describe, util.callable

-- What map puts in place of a result fn never gave because of a halt.
local function sentinel(name, fields)
  return setmetatable(fields, {
    __name = name,
    __newindex = function()
      error(name .. " is read-only", 2)
    end,
    __tostring = function()
      return name
    end,
  })
end
M.SKIPPED = sentinel("tide.SKIPPED", { skipped = true })
M.KILLED = sentinel("tide.KILLED", { skipped = true, killed = true })

local npools, nmaps = 0, 0 -- ids for the report's lanes and items

local function check_jobs(n, fname, what, level)
  if math.type(n) == "float" and n == math.floor(n) then
    n = math.tointeger(n)
  end
  if math.type(n) ~= "integer" or n < 1 then
    error(("bad argument #1 to '%s' (%s must be a whole number of at least 1, got %s)")
      :format(fname, what, describe(n)), level)
  end
  return n
end

-- Checks the job options and halt of a pool or map options table; returns
-- the job options (nil if none) and the halt spec.  res: the pool's
-- resources, whose names are job options too (gpu = 1).
local function check_options(opts, fname, argn, extra, res)
  local function fail(msg)
    error(("bad argument #%d to '%s' (%s)"):format(argn, fname, msg), 4)
  end
  local jobopts, halt
  for k, v in pairs(opts) do
    if options.JOB[k] or (res and res.kind[k]) then
      local value, msg
      if options.JOB[k] then
        value, msg = options.check(k, v)
      else
        value, msg = resources.count(res, k, v)
      end
      if value == nil then
        fail(msg)
      end
      jobopts = jobopts or {}
      jobopts[k] = value
    elseif k == "halt" then
      local spec, want = options.halt(v)
      if spec == nil then
        fail(("option 'halt' must be %s, got %s"):format(want, describe(v)))
      end
      halt = spec
    elseif k == "order" then
      local order, msg = options.order(v)
      if not order then
        fail(msg)
      end
    elseif k == "resources" and fname == "map" then
      fail("option 'resources' is a pool's: set it on pool{...}")
    elseif not extra[k] then
      local near = type(k) == "string"
        and (util.closest(k, extra) or util.closest(k, options.JOB) or util.closest(k, { "halt", "order" }))
      if not near and type(k) == "string" and (res or type(v) == "number") then
        fail(resources.unknown(k, res))
      end
      fail(("unknown option %s%s"):format(describe(k), near and (" (did you mean '%s'?)"):format(near) or ""))
    end
  end
  local why = jobopts and options.backend_conflict(jobopts, fname == "pool")
  if why then
    fail(why)
  end
  return jobopts, halt
end

-- Checks the sweep options of a pool or map options table: record,
-- report and trace (file names, or false for none) and stop_when (a
-- function).
local function check_sweep(opts, fname, argn)
  for _, k in ipairs({ "record", "report", "trace" }) do
    local r = opts[k]
    if r ~= nil and r ~= false and (type(r) ~= "string" or r == "" or r:find("\0", 1, true)) then
      error(("bad argument #%d to '%s' (option '%s' must be a file name, got %s)")
        :format(argn, fname, k, describe(r)), 3)
    end
  end
  local w = opts.stop_when
  if w ~= nil and w ~= false and not callable(w) then
    error(("bad argument #%d to '%s' (option 'stop_when' must be a function(value, item), got %s)")
      :format(argn, fname, describe(w)), 3)
  end
end

-- The pool options of arg over those given before the script
-- (state.pool_defaults): the pool's own win.
local function with_defaults(arg, defaults)
  local merged = {}
  for k, v in pairs(defaults) do
    merged[k] = v
  end
  if type(arg) == "table" then
    for k, v in pairs(arg) do
      merged[k] = v
    end
  elseif arg ~= nil then
    merged.jobs = check_jobs(arg, "pool", "size", 4)
  end
  return merged
end

local POOL_OPTIONS = {
  jobs = true, order = true, summary = true, progress = true, record = true, stop_when = true,
  report = true, trace = true, resources = true,
}
local MAP_OPTIONS = { slots = true, order = true, stop_when = true, record = true }

-- Whether name is an option's, so not free for a resource.
local function taken(name)
  return options.JOB[name] or options.SHELL[name] or POOL_OPTIONS[name] or MAP_OPTIONS[name]
    or name == "halt"
end

-- pool(n) or pool{jobs = n, <job options>, halt = ...}
function M.new(arg)
  if state.pool_defaults then
    arg = with_defaults(arg, state.pool_defaults)
  end
  local n, jobopts, halt, res
  if arg == nil then
    n = state.default_jobs()
  elseif type(arg) == "table" then
    if arg.resources ~= nil then
      local why
      res, why = resources.new(arg.resources, taken)
      if not res then
        error(("bad argument #1 to 'pool' (%s)"):format(why), 2)
      end
    end
    jobopts, halt = check_options(arg, "pool", 1, POOL_OPTIONS, res)
    check_sweep(arg, "pool", 1)
    if arg.report or arg.trace then
      report.enable(arg.report or nil, arg.trace or nil)
    end
    if arg.progress ~= nil then
      if type(arg.progress) ~= "boolean" then
        error(("bad argument #1 to 'pool' (option 'progress' must be a boolean, got %s)")
          :format(describe(arg.progress)), 2)
      end
      progress.force(arg.progress)
    end
    if arg.summary ~= nil then
      if type(arg.summary) ~= "boolean" then
        error(("bad argument #1 to 'pool' (option 'summary' must be a boolean, got %s)")
          :format(describe(arg.summary)), 2)
      end
      state.summary = arg.summary
    end
    n = arg.jobs == nil and state.default_jobs() or check_jobs(arg.jobs, "pool", "jobs", 3)
    if jobopts and jobopts.hosts then
      -- GNU parallel's -j is per host: a host without N/ gets n slots
      jobopts.hosts_each = n
      n = sshlogin.capacity(jobopts.hosts, n)
    elseif jobopts and jobopts.backend == "slurm" then
      jobopts.pool_jobs = n -- the tasks of an allocation tide asks for
    end
  else
    n = check_jobs(arg, "pool", "size", 3)
  end
  npools = npools + 1
  return setmetatable({
    size = n, used = 0, queue = {}, grow = {}, jobopts = jobopts, halt = halt or nil, res = res,
    id = npools, free_lanes = {}, nlanes = 0,
    order = type(arg) == "table" and options.order(arg.order) or nil,
    record = type(arg) == "table" and arg.record or nil,
    stop_when = type(arg) == "table" and arg.stop_when or nil,
  }, Pool)
end

-- Returns a function giving (item, true) per item and nothing at the end,
-- and the number of items when the list knows it.  A sequence object (a
-- metatable with __iter, as tide's generators have) gives a fresh iterator
-- each time, so it can be mapped more than once; its __len, when it has
-- one that answers, is its length.
local function puller(list)
  local mt = getmetatable(list)
  local total
  if type(mt) == "table" and mt.__iter then
    if mt.__len then
      local ok, n = pcall(mt.__len, list)
      total = ok and math.type(n) == "integer" and n >= 0 and n or nil
    end
    list = mt.__iter(list)
  elseif type(list) == "table" and not callable(list) then
    local i, n = 0, list.n or #list
    return function()
      if i < n then
        i = i + 1
        return list[i], true
      end
    end, n
  end
  return function()
    local v = list()
    if v ~= nil then
      return v, true
    end
  end, total
end

local remove = util.remove

-- reason: why, for whoever counts the jobs these tasks run (sched.cancel).
local function cancel_tasks(st, reason)
  for t in pairs(st.tasks) do
    sched.cancel(t, reason)
  end
end

-- st fails: a task raised, or the task that called map was cancelled
-- (reason: why, passed on to st's tasks).
local function fail(st, msg, reason)
  if not st.err then
    st.err = msg
    remove(st.pool.queue, st)
    cancel_tasks(st, reason or "error")
  end
end

local function maybe_finish(st)
  if st.active == 0 and (st.exhausted or st.err or st.halted or st.stopped) and not st.done then
    st.done = true
    sched.complete(st)
  end
end

local fill

---------------------------------------------------------------------------
-- Halts

local function halt_now(st, spec, r)
  st.halted = spec.text
  remove(st.pool.queue, st)
  local stats = state
  if stats.halt_status == nil then
    stats.halt_failed = stats.failed
    -- GNU parallel's rule: fail=1 and done=1 give the job's own status
    local status
    if spec.count == 1 and spec.kind ~= "success" then
      status = result.status(r)
    elseif spec.kind == "success" then
      status = 0
    else
      status = st.nfail > 0 and 1 or 0
    end
    stats.halt_status = status
  end
  local why = spec.kind == "fail" and "failed" or spec.kind == "success" and "succeeded" or "finished"
  -- the others than the task that ran this job, as far as st knows
  local others = st.active - 1
  local items = others == 1 and "item" or "items"
  local tail = ""
  if spec.when == "now" then
    cancel_tasks(st, "halt") -- what this stops does not count as failed
    if others > 0 then
      tail = ("; stopping %d running %s"):format(others, items)
    end
  elseif others > 0 then
    tail = ("; starting no more items, waiting for %d running %s"):format(others, items)
  end
  util.warn(("halt %s: this job %s: %s%s"):format(spec.text, why, r.cmd, tail))
  maybe_finish(st)
end

-- A job run by one of st's tasks (or of a nested map) ended with r.
local function record(st, r)
  if st.halted or st.err then
    return
  end
  local spec = st.halt
  st.ndone = st.ndone + 1
  if r.ok then
    st.nok = st.nok + 1
  else
    st.nfail = st.nfail + 1
  end
  local count = spec.kind == "fail" and st.nfail or spec.kind == "success" and st.nok or st.ndone
  local reached
  if spec.count then
    reached = count >= spec.count
  elseif st.total then
    -- percentages are of the map's items, as GNU parallel's are of its jobs
    reached = count >= st.total * spec.pct / 100
  else
    -- an iterator's length is unknown: of the jobs finished so far, once
    -- enough have finished for one to be at most pct percent
    reached = st.ndone >= math.max(10, math.ceil(100 / spec.pct)) and count * 100 >= spec.pct * st.ndone
  end
  if reached and count > 0 then
    halt_now(st, spec, r)
  end
end

-- The function shell() calls with each final result of a task of st: it
-- counts for st if st halts, and for the maps st is nested in.
local function observer(st, caller)
  local up = caller and caller.map.observe
  if not st.halt then
    return up
  end
  return function(r)
    record(st, r)
    if up then
      up(r)
    end
  end
end

---------------------------------------------------------------------------
-- Stops

-- Stops st on purpose: no new item starts, the running ones but except
-- (the task that asked) are cancelled, their jobs stopped as a halt stops
-- them, and map returns what it has with results.stopped = reason.
local function stop_map(st, reason, except)
  if st.stopped or st.halted or st.err then
    return
  end
  st.stopped = reason
  if except then
    except.stopper = reason -- its record says so: a resumed run stops there too
  end
  remove(st.pool.queue, st)
  for t in pairs(st.tasks) do
    if t ~= except then
      sched.cancel(t, "stop")
    end
  end
  maybe_finish(st)
end

-- tide.stop([reason]): called by a task, stops the map it belongs to (the
-- innermost one); the task itself goes on and its value is kept.
function M.stop(reason)
  local t = sched.current()
  if not (t and t.map and coroutine.running() == t.co) then
    error("tide.stop: not called from a task of a map (call it in the function that map runs)", 2)
  end
  if reason == nil then
    reason = true
  end
  stop_map(t.map, reason, t)
end

---------------------------------------------------------------------------
-- Slots

-- Whether a request for w slots may be granted now: it fits, or it is
-- larger than the pool and the pool is idle (it then runs alone).
local function fits(pool, w)
  return pool.used + w <= pool.size or pool.used == 0
end

local function oversize(what, w, size)
  util.warn(("%s needs %d slots but the pool has %d: running it alone"):format(what, w, size))
end

-- How task t's item ended, in record.lua's words, and the value to keep.
local function item_status(t, ok, value)
  if ok then
    return (t.failed or (type(value) == "table" and value.ok == false)) and "failed" or "ok", value
  elseif value == sched.CANCELLED then
    return "stopped"
  end
  return "error", tostring(value)
end

-- Appends the record of task t's item (see record.lua), and its row in
-- the report.
local function write_record(st, t, ok, value)
  local status, v = item_status(t, ok, value)
  if st.rec then
    local fine, err = pcall(records.write, st.rec, t.index, t.item, v, status, t.start, core.now() - t.t0,
      t.stopper)
    if not fine then
      fail(st, tostring(err))
    end
  end
  if state.report then
    report.item(st, t.index, t.item, v, status, t)
  end
end

-- Asks st's stop_when about an item's value; true if it stopped st.
local function ask_stop_when(st, value, item, t)
  local when = st.stop_when
  if when and not st.stopped then
    local fine, yes = pcall(when, value, item)
    if not fine then
      fail(st, "map: the stop_when function raised an error: " .. tostring(yes))
    elseif yes then
      if t then
        t.stopper = yes
      end
      stop_map(st, yes)
      return true
    end
  end
  return false
end

local function on_done(t, ok, value, tb)
  local st = t.map
  if ok then
    ask_stop_when(st, value, t.item, t)
  end
  if st.rec or state.report then
    write_record(st, t, ok, value)
  end
  st.tasks[t] = nil
  st.active = st.active - 1
  local pool = st.pool
  pool.used = pool.used - t.held
  pool.free_lanes[#pool.free_lanes + 1] = t.slot
  if st.ord then
    output.item_done(st.ord, t.index)
  end
  if ok then
    st.results[t.index] = value
  elseif value == sched.CANCELLED then
    if st.halted or st.stopped then
      st.results[t.index] = M.KILLED
    end
  else
    tb = util.user_traceback(tb or tostring(value)):gsub("\nstack traceback:", "\ntraceback of the task:", 1)
    fail(st, ("map: item %d failed: %s"):format(t.index, tb))
  end
  fill(pool)
  maybe_finish(st)
end

-- "TIDE_SLOT=n" of slot n, made once: every job a task runs is given its
-- task's (core.spawn's extra environment), and a job costs no string.
local SLOT_ENV = setmetatable({}, {
  __index = function(cache, slot)
    local s = "TIDE_SLOT=" .. slot
    cache[slot] = s
    return s
  end,
})

-- A one-liner's: GNU parallel's job slot and sequence number too.
local function gnu_env(slot, i)
  return { SLOT_ENV[slot], "PARALLEL_JOBSLOT=" .. slot, "PARALLEL_SEQ=" .. i }
end

-- Starts item, or with resume gives its recorded value at once (no task,
-- no slot).
local function start(st, item, w)
  st.n = st.n + 1
  local i, fn = st.n, st.fn
  if st.resume then
    local value, done, stopped = records.resumed(st.rec, item)
    if done == "stopped" then
      st.results[i] = M.KILLED
      if st.ord then
        output.item_done(st.ord, i)
      end
      return
    elseif done then
      st.results[i] = value
      state.resumed = state.resumed + 1
      if state.report then
        report.item(st, i, item, value, "resumed")
      end
      if st.ord then
        output.item_done(st.ord, i)
      end
      -- the run that recorded it stopped here, or stop_when says so now
      if not ask_stop_when(st, value, item) and stopped ~= nil then
        stop_map(st, stopped)
      end
      return
    end
  end
  st.active = st.active + 1
  local pool = st.pool
  pool.used = pool.used + w
  if w > pool.size then
    oversize("item " .. i, w, pool.size)
  end
  -- the task's fields, sched's and the pool's, sized once
  local t = sched.spawn(fn, on_done, item, i, {
    co = false, on_done = false, a = false, b = false, fresh = false,
    map = st, pool = pool, index = i, held = w, item = item, slot = false, out = false,
  })
  -- its slot: a number from 1 that no other running task of the pool has
  local free = pool.free_lanes
  local slot = free[#free]
  if slot then
    free[#free] = nil
  else
    pool.nlanes = pool.nlanes + 1
    slot = pool.nlanes
  end
  t.slot = slot
  t.env = pool.gnu and gnu_env(slot, i) or SLOT_ENV[slot]
  if state.report then
    t.lane = npools > 1 and (pool.id .. "." .. slot) or slot
    t.t0r = core.now()
  end
  if st.rec then
    t.start, t.t0 = core.time(), core.now()
  end
  -- where its jobs' output goes: its own place in an ordered map, or
  -- wherever the output of the task that called map goes
  t.out = st.ord and output.slot(st.ord, i) or st.outer
  st.tasks[t] = true
end

-- The map whose list can be pulled now: an iterator may itself run jobs,
-- and while it waits other tasks finish and ask for more; a second pull
-- from the same list then must wait, or items would come out of order.
local function next_map(queue)
  for i = 1, #queue do
    if not queue[i].pulling then
      return queue[i]
    end
  end
end

-- The weight of st's next item: 1, the map's slots, or what its slots
-- function says; nil if that fails (which settles st).
local function weigh(st, item)
  local weight = st.weight
  if type(weight) == "number" then
    return weight
  end
  local ok, v = pcall(weight, item)
  local w = ok and options.slots(v)
  if not w then
    fail(st, ok and ("map: the slots function returned %s for item %d (a whole number of at "
      .. "least 1 expected)"):format(describe(v), st.n + 1)
      or ("map: the slots function raised an error: " .. tostring(v)))
    maybe_finish(st)
  end
  return w
end

-- Starts what fits: first the running tasks' requests for more slots,
-- then new items, each in turn.  An item that does not fit yet waits in
-- st.pending (pulled, weighed, not started).
function fill(pool)
  local grow = pool.grow
  while grow[1] do
    local req = grow[1]
    if not fits(pool, req.w) then
      return
    end
    table.remove(grow, 1)
    pool.used = pool.used + req.w
    req.task.held = req.w
    sched.complete(req)
  end
  local queue = pool.queue
  while pool.used < pool.size do
    local st = next_map(queue)
    if not st then
      return
    end
    local item, w
    if st.pending then
      item, w = st.pending_item, st.pending_w
      if not fits(pool, w) then
        return
      end
      st.pending, st.pending_item = false, nil
    else
      st.pulling = true
      local ok, present
      ok, item, present = pcall(st.pull)
      st.pulling = false
      if not ok then
        fail(st, "map: the list iterator raised an error: " .. tostring(item))
        maybe_finish(st)
      elseif not present then
        st.exhausted = true
        remove(queue, st)
        maybe_finish(st)
      elseif st.halted or st.err or st.stopped then
        -- an iterator that waited (it ran a job) while st ended
        st.pending, st.pending_item, st.pending_w = true, item, 1
      else
        w = 1
        if st.weight then
          w = weigh(st, item)
          if w and not fits(pool, w) then
            st.pending, st.pending_item, st.pending_w = true, item, w
            return
          end
        end
      end
    end
    if w then
      start(st, item, w)
    end
  end
end

-- The task t's job needs w slots: waits until the pool can give them.
-- Returns a function that gives them back, or nil if t already held w.
function M.acquire(t, w, cmd)
  local pool, base = t.pool, t.held
  if w <= base then
    return nil
  end
  if w > pool.size then
    oversize("job " .. cmd, w, pool.size)
  end
  -- t lets its own slots go while it waits, or tasks that each hold one
  -- and want more would wait for one another forever.
  pool.used = pool.used - base
  t.held = 0
  sched.wait_turn(pool.grow, { w = w, task = t }, function()
    fill(pool)
  end)
  return function()
    pool.used = pool.used - (t.held - base)
    t.held = base
    fill(pool)
  end
end

-- p:resize(n): the pool has n slots from now on.  Growing starts waiting
-- items at once; shrinking lets running ones finish.
function Pool:resize(n)
  if getmetatable(self) ~= Pool then
    error("bad argument #1 to 'resize' (pool expected; call it as p:resize(n))", 2)
  end
  self.size = check_jobs(n, "resize", "size", 3)
  fill(self)
end

function Pool:map(fn, list, opts)
  if getmetatable(self) ~= Pool then
    error("bad argument #1 to 'map' (pool expected; call it as p:map(fn, list))", 2)
  end
  if not callable(fn) then
    error(("bad argument #1 to 'map' (function expected, got %s)"):format(type(fn)), 2)
  end
  if type(list) ~= "table" and type(list) ~= "function" and not callable(list) then
    error(("bad argument #2 to 'map' (table, sequence or iterator function expected, got %s)")
      :format(type(list)), 2)
  end
  if type(fn) ~= "function" then -- a callable table: a task runs a function
    local obj = fn
    fn = function(item, i)
      return obj(item, i)
    end
  end
  local jobopts, halt, weight, order = self.jobopts, self.halt, nil, self.order
  local record_path, stop_when = self.record, self.stop_when
  if opts ~= nil then
    if type(opts) ~= "table" then
      error(("bad argument #3 to 'map' (options table expected, got %s)"):format(type(opts)), 2)
    end
    local own, own_halt = check_options(opts, "map", 3, MAP_OPTIONS, self.res)
    check_sweep(opts, "map", 3)
    if own then
      jobopts = jobopts and setmetatable(own, { __index = jobopts }) or own
    end
    if opts.halt ~= nil then
      halt = own_halt
    end
    if opts.order ~= nil then
      order = options.order(opts.order)
    end
    if opts.stop_when ~= nil then
      stop_when = opts.stop_when or nil
    end
    if opts.record ~= nil then
      record_path = opts.record or nil
    end
    weight = opts.slots
    if weight ~= nil and not callable(weight) then
      weight = options.slots(weight)
      if not weight then
        error(("bad argument #3 to 'map' (option 'slots' must be a whole number of at least 1 or a "
          .. "function(item) returning one, got %s)"):format(describe(opts.slots)), 2)
      end
    end
  end
  -- resume next to record resumes items; their jobs then do not look for
  -- a job log unless one is given too
  local item_resume = record_path and (jobopts and jobopts.resume or state.resume_records)
  if item_resume and jobopts and jobopts.resume and not jobopts.joblog then
    jobopts = setmetatable({ resume = false }, { __index = jobopts })
  end
  local pullfn, total = puller(list)
  if halt and halt.pct and halt.kind == "done" and not total then
    error(("bad argument #3 to 'map' (halt '%s' needs a list of known length, not an iterator)")
      :format(halt.text), 2)
  end
  local caller = sched.current()
  local st = {
    pool = self, fn = fn, pull = pullfn, results = {}, n = 0, active = 0, tasks = {},
    jobopts = jobopts, weight = weight, total = total, halt = halt or nil,
    ndone = 0, nok = 0, nfail = 0, stop_when = stop_when,
  }
  nmaps = nmaps + 1
  st.id = nmaps
  if record_path then
    st.rec = records.open(record_path, item_resume)
    st.resume = item_resume and true or nil
  end
  st.observe = observer(st, caller)
  if not caller then
    -- the status line counts the main chunk's maps
    progress.map(function()
      return st.n - st.active, st.total or ((st.exhausted or st.done) and st.n), st.done
    end)
  end
  st.outer = caller and caller.out
  if order == "input" then
    st.ord = output.order(st.outer)
  end
  -- A task that maps over its own pool lends it its slots while it waits,
  -- so nesting on one pool cannot deadlock; its items go first.
  local lend = caller ~= nil and caller.pool == self and caller.held
  if lend then
    self.used = self.used - lend
    caller.held = 0
    table.insert(self.queue, 1, st)
  else
    self.queue[#self.queue + 1] = st
  end
  fill(self)
  maybe_finish(st)
  sched.await(st, function(reason)
    fail(st, "map: cancelled", reason)
    maybe_finish(st)
  end)
  if lend then
    self.used = self.used + lend
    caller.held = lend
  end
  if st.ord then
    output.flush_order(st.ord) -- what a halt or an error left held
  end
  if st.err then
    error(st.err, 2)
  end
  local results = st.results
  if st.halted or st.stopped then
    results.halted, results.stopped = st.halted, st.stopped
    local last = total or (st.pending and st.n + 1) or st.n
    for i = st.n + 1, last do
      results[i] = M.SKIPPED
    end
    results.n = last
  else
    results.n = st.n
  end
  return results
end

-- The slot of the calling task, as TIDE_SLOT gives it to its jobs (the
-- one-liner's {%}); nil outside a map.
function M.slot()
  local t = sched.current()
  return t and t.slot
end

-- The jobs of p's tasks also get GNU parallel's PARALLEL_JOBSLOT and
-- PARALLEL_SEQ (the item's number): p runs a one-liner.
function M.gnu_env(p)
  p.gnu = true
end

M.Pool = Pool
return M
