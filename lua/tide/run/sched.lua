-- sched.lua: tasks and the driver that resumes them.
--
-- A task is a coroutine.  When it must wait (for a job, a timer, a nested
-- map) it yields to the driver; the driver runs the libuv loop through
-- core.step() and resumes each task whose object completed.  Lua therefore
-- runs only here, never inside a libuv callback.  Code that is not a task
-- (the main chunk, or a coroutine of the user's own) waits by driving the
-- loop itself until its object completes, so pools nest and shell() works
-- anywhere.
local core = require("tide.core")
local util = require("tide.util")

local M = {}

-- What a task yields to the driver, to tell it apart from a user's yield.
local SUSPEND = setmetatable({}, { __name = "tide.suspend" })
-- The value on_done gets for a task that was cancelled.
M.CANCELLED = setmetatable({}, { __name = "tide.cancelled" })

local waiters = {} -- [object] = the task waiting for it
local watchers = {} -- [object] = the function to call when it completes
local finished = setmetatable({}, { __mode = "k" }) -- completed, unclaimed
local noted = setmetatable({}, { __mode = "k" }) -- has news nobody took yet
local runq, head, tail = {}, 1, 0
local fired, nfired = {}, 0 -- watchers whose object completed
local current -- the task the driver is resuming, if any

-- Called before each wait for the loop, when set: progress.lua's redraw in
-- a script, the writing of a turn's frames in `tide --worker` (serve.lua).
M.on_idle = nil

local function ready(t)
  tail = tail + 1
  runq[tail] = t
end

-- The task whose code is running now, or nil in the main chunk.
function M.current()
  return current
end

-- Creates a task running fn(a, b); on_done(task, ok, value, traceback) is
-- called from the driver when it returns, raises or is cancelled.  (The
-- arguments spare a caller the closure it would make per task.)  t: the
-- task table to use, made by the caller with its own fields and these
-- (co, on_done, a, b, fresh) already in place, so that it is sized once.
function M.spawn(fn, on_done, a, b, t)
  if t then
    t.co, t.on_done, t.a, t.b, t.fresh = coroutine.create(fn), on_done, a, b, true
  else
    t = { co = coroutine.create(fn), on_done = on_done, a = a, b = b, fresh = true }
  end
  ready(t)
  return t
end

-- Marks obj completed: its waiter becomes ready, or its watcher is queued.
function M.complete(obj)
  local t = waiters[obj]
  if t then
    waiters[obj] = nil
    t.waiting, t.on_cancel = nil, nil
    ready(t)
  else
    local fn = watchers[obj]
    if fn then
      watchers[obj] = nil
      nfired = nfired + 1
      fired[nfired] = fn
    else
      finished[obj] = true
    end
  end
end

-- obj, still running, has news (a watched job has new output): the task
-- waiting for it wakes up, from M.await_news, to take it.  A cancelled task
-- waits for its job's end, not its news.
function M.notify(obj)
  local t = waiters[obj]
  if t then
    if not t.cancelled then
      waiters[obj] = nil
      t.waiting, t.on_cancel = nil, nil
      t.noted = true
      ready(t)
    end
  else
    noted[obj] = true
  end
end

-- Calls fn() from the driver once obj completes (a timer, for a deadline
-- or a gate): policy that must run when nobody waits for the object.
-- fn must not wait; it runs between tasks, never inside a libuv callback.
function M.watch(obj, fn)
  if finished[obj] then
    finished[obj] = nil
    nfired = nfired + 1
    fired[nfired] = fn
  else
    watchers[obj] = fn
  end
end

-- Forgets a watcher whose object will not complete (a cancelled timer).
function M.unwatch(obj)
  watchers[obj] = nil
end

-- Stops a task: it is never resumed again.  on_cancel, given by whatever it
-- waits for, makes that thing end soon (kill the job, cancel the submap),
-- after which the task is closed and reported as cancelled.  reason says
-- why ("halt", "stop", "error"), and on_cancel gets it, and the object
-- waited for: whoever counts jobs decides from it whether a stopped job
-- failed, and one on_cancel may serve every job.
function M.cancel(t, reason)
  if t.cancelled then
    return
  end
  t.cancelled = reason or "error"
  local on_cancel = t.on_cancel
  if on_cancel then
    t.on_cancel = nil
    on_cancel(t.cancelled, t.waiting)
  end
end

local function close(t, ok, value, tb)
  coroutine.close(t.co) -- runs the task's pending <close> variables
  t.on_done(t, ok, value, tb)
end

local function resume(t)
  local prev = current
  current = t
  local ok, res
  if t.fresh then
    t.fresh = false
    ok, res = core.resume(t.co, t.a, t.b)
  else
    ok, res = core.resume(t.co)
  end
  current = prev
  if not ok then
    close(t, false, res, debug.traceback(t.co, tostring(res)))
  elseif coroutine.status(t.co) == "dead" then
    t.on_done(t, true, res)
  elseif res ~= SUSPEND then
    close(t, false, "coroutine.yield() was called directly inside a pool task "
      .. "(wrap your own generator in coroutine.wrap instead)")
  end
end

-- Runs tasks and the loop until done() is true.
function M.drive(done)
  while not done() do
    if head <= tail then
      local t = runq[head]
      runq[head] = nil
      head = head + 1
      if t.cancelled then
        close(t, false, M.CANCELLED)
      else
        resume(t)
      end
    elseif nfired > 0 then
      local fns, n = fired, nfired
      fired, nfired = {}, 0
      for i = 1, n do
        fns[i]()
      end
    else
      local idle = M.on_idle
      if idle then
        idle()
      end
      local objs, news = core.step()
      if not objs then
        error("deadlock: tasks are waiting but no job, timer or task is left "
          .. "that could wake them", 0)
      end
      if news then
        for i = 1, #news do
          M.notify(news[i])
        end
      end
      for i = 1, #objs do
        M.complete(objs[i])
      end
    end
  end
end

-- A task that was cancelled while it ran (a halt, from the task itself or
-- a sibling) stops here: it is closed by the driver and never resumed, so
-- a pcall around the call cannot keep it going.
function M.checkpoint()
  local t = current
  if t and t.cancelled and coroutine.running() == t.co then
    ready(t)
    coroutine.yield(SUSPEND)
  end
end

-- Waits until obj completes.  In a task this yields; elsewhere it drives.
-- on_cancel is called if the task is cancelled meanwhile.
function M.await(obj, on_cancel)
  local t = current
  if finished[obj] then
    finished[obj] = nil
    return
  end
  if t and coroutine.running() == t.co then
    if t.cancelled then
      M.checkpoint()
    end
    waiters[obj] = t
    t.waiting, t.on_cancel = obj, on_cancel
    coroutine.yield(SUSPEND)
    return
  end
  M.drive(function()
    return finished[obj]
  end)
  finished[obj] = nil
end

-- Waits until obj completes or has news; returns true once it completed.
-- A task cancelled meanwhile calls on_cancel (which makes obj end soon)
-- and still waits for the end, so a job is reaped before its task closes.
function M.await_news(obj, on_cancel)
  if finished[obj] then
    finished[obj], noted[obj] = nil, nil
    return true
  elseif noted[obj] then
    noted[obj] = nil
    return false
  end
  local t = current
  if t and coroutine.running() == t.co then
    if t.cancelled and on_cancel then
      on_cancel(t.cancelled)
      on_cancel = nil
    end
    waiters[obj] = t
    t.waiting, t.on_cancel = obj, on_cancel
    coroutine.yield(SUSPEND)
    if t.noted then
      t.noted = nil
      return false
    end
    return true
  end
  M.drive(function()
    return finished[obj] or noted[obj]
  end)
  if finished[obj] then
    finished[obj], noted[obj] = nil, nil
    return true
  end
  noted[obj] = nil
  return false
end

-- Waits for a turn in queue (an array of tokens): whoever serves the
-- queue completes a token (M.complete) when its turn comes.  serve(), if
-- given, is called at once (the turn may come now) and again when a
-- cancelled task leaves the queue, so the next one may go.
function M.wait_turn(queue, token, serve)
  queue[#queue + 1] = token
  if serve then
    serve()
  end
  M.await(token, function()
    util.remove(queue, token)
    M.complete(token)
    if serve then
      serve()
    end
  end)
end

-- Completes every token in queue (see wait_turn) and empties it: each
-- task waiting there looks again at what it waits for.
function M.complete_all(queue)
  local n = #queue
  for i = 1, n do
    local token = queue[i]
    queue[i] = nil
    M.complete(token)
  end
end

-- Starts a process (core.spawn's arguments); when descriptors or
-- processes run out, waits for running jobs to finish and tries again
-- rather than failing (pool(200) under `ulimit -n 64`).  With nothing
-- running to wait for, gives up: nil, message, errname.
function M.start_process(argv, spec, env, more)
  local delay = 0.005
  while true do
    local job, msg, name = core.spawn(argv, spec, env, more)
    if job then
      return job
    end
    local transient = name == "EMFILE" or name == "ENFILE" or name == "EAGAIN"
    if not transient or core.running() == 0 then
      return nil, msg, name
    end
    M.sleep(delay)
    delay = math.min(delay * 2, 0.2)
  end
end

-- Runs start() once for box (a table of the caller's): the first caller
-- runs it, and it may wait; callers that come meanwhile wait until it has
-- returned.  What start found is the caller's to keep in box.
function M.once(box, start)
  if box.once_done then
    return
  elseif box.once_waiting then
    M.wait_turn(box.once_waiting, {})
    return
  end
  box.once_waiting = {}
  start()
  box.once_done = true
  for _, token in ipairs(box.once_waiting) do
    M.complete(token)
  end
  box.once_waiting = nil
end

-- Sleeps the calling task (or the whole script, from the main chunk).
function M.sleep(seconds)
  local timer = core.timer(seconds)
  M.await(timer, function()
    timer:cancel()
    M.complete(timer)
  end)
end

return M
