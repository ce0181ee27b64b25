-- pool.lua: pool(n) and p:map(fn, list), the scheduling policy.
--
-- A pool is a number of slots.  Each map call feeds items into the pool's
-- slots one at a time, pulling from its list only when a slot is free, so
-- an endless generator costs nothing up front.  Several maps may share a
-- pool; they are served in the order they asked.
local core = require("tide.core")
local sched = require("tide.sched")

local M = {}

local Pool = {}
Pool.__index = Pool
Pool.__name = "tide.pool"

local OPTIONS = { jobs = true }

local function describe(v)
  if type(v) == "string" then
    return ("'%s'"):format(v)
  end
  return tostring(v)
end

local function check_jobs(n, what)
  if math.type(n) == "float" and n == math.floor(n) then
    n = math.tointeger(n)
  end
  if math.type(n) ~= "integer" or n < 1 then
    error(("bad argument #1 to 'pool' (%s must be a whole number of at least 1, got %s)")
      :format(what, describe(n)), 3)
  end
  return n
end

function M.default_jobs()
  return core.jobs or core.cpus()
end

-- pool(n) or pool{jobs = n}
function M.new(arg)
  local n
  if arg == nil then
    n = M.default_jobs()
  elseif type(arg) == "table" then
    for k in pairs(arg) do
      if not OPTIONS[k] then
        error(("bad argument #1 to 'pool' (unknown option %s)"):format(describe(k)), 2)
      end
    end
    n = arg.jobs == nil and M.default_jobs() or check_jobs(arg.jobs, "jobs")
  else
    n = check_jobs(arg, "size")
  end
  return setmetatable({ size = n, active = 0, queue = {} }, Pool)
end

local function callable(f)
  if type(f) == "function" then
    return true
  end
  local mt = getmetatable(f)
  return type(mt) == "table" and mt.__call ~= nil
end

-- Returns a function giving (item, true) per item and nothing at the end.
-- A sequence object (a metatable with __iter, as tide's generators have)
-- gives a fresh iterator each time, so it can be mapped more than once.
local function puller(list)
  local mt = getmetatable(list)
  if type(mt) == "table" and mt.__iter then
    list = mt.__iter(list)
  elseif type(list) == "table" and not callable(list) then
    local i, n = 0, list.n or #list
    return function()
      if i < n then
        i = i + 1
        return list[i], true
      end
    end
  end
  return function()
    local v = list()
    if v ~= nil then
      return v, true
    end
  end
end

local function remove(queue, st)
  for i = 1, #queue do
    if queue[i] == st then
      table.remove(queue, i)
      return
    end
  end
end

local function cancel_tasks(st)
  for t in pairs(st.tasks) do
    sched.cancel(t)
  end
end

local function fail(st, msg)
  if not st.err then
    st.err = msg
    remove(st.pool.queue, st)
    cancel_tasks(st)
  end
end

local function maybe_finish(st)
  if st.active == 0 and (st.exhausted or st.err) and not st.done then
    st.done = true
    sched.complete(st)
  end
end

local fill

local function on_done(t, ok, value, tb)
  local st = t.map
  st.tasks[t] = nil
  st.active = st.active - 1
  st.pool.active = st.pool.active - 1
  if ok then
    st.results[t.index] = value
  elseif value ~= sched.CANCELLED then
    tb = (tb or tostring(value)):gsub("\nstack traceback:", "\ntraceback of the task:", 1)
    fail(st, ("map: item %d failed: %s"):format(t.index, tb))
  end
  fill(st.pool)
  maybe_finish(st)
end

local function start(st, item)
  st.n = st.n + 1
  local i, fn = st.n, st.fn
  st.active = st.active + 1
  st.pool.active = st.pool.active + 1
  local t = sched.spawn(function()
    return fn(item, i)
  end, on_done)
  t.map, t.pool, t.index = st, st.pool, i
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

-- Starts items while the pool has free slots.
function fill(pool)
  local queue = pool.queue
  while pool.active < pool.size do
    local st = next_map(queue)
    if not st then
      return
    end
    st.pulling = true
    local ok, item, present = pcall(st.pull)
    st.pulling = false
    if not ok then
      fail(st, "map: the list iterator raised an error: " .. tostring(item))
      maybe_finish(st)
    elseif not present then
      st.exhausted = true
      remove(queue, st)
      maybe_finish(st)
    else
      start(st, item)
    end
  end
end

function Pool:map(fn, list)
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
  local st = {
    pool = self, fn = fn, pull = puller(list), results = {}, n = 0,
    active = 0, tasks = {},
  }
  -- A task that maps over its own pool lends it its slot while it waits,
  -- so nesting on one pool cannot deadlock; its items go first.
  local caller = sched.current()
  local lend = caller ~= nil and caller.pool == self
  if lend then
    self.active = self.active - 1
    table.insert(self.queue, 1, st)
  else
    self.queue[#self.queue + 1] = st
  end
  fill(self)
  maybe_finish(st)
  sched.await(st, function()
    fail(st, "map: cancelled")
    maybe_finish(st)
  end)
  if lend then
    self.active = self.active + 1
  end
  if st.err then
    error(st.err, 2)
  end
  st.results.n = st.n
  return st.results
end

M.Pool = Pool
return M
