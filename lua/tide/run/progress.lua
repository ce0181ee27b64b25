-- progress.lua: the status line at the bottom of the terminal while a
-- run goes on: items done of the total, jobs running and failed, elapsed
-- time, rate and ETA.
--
-- On when stderr is a terminal, or when forced (pool{progress = true},
-- --progress, TIDE_PROGRESS=1); off with progress = false, --no-progress
-- or TIDE_PROGRESS=0.  An option wins over the variable, which wins over
-- the terminal test.  Off, nothing of this runs: the driver's idle hook
-- is nil.
--
-- C keeps the line out of the output (core.status): every write of tide's
-- to the terminal erases it first, so output is printed above it, never
-- through it.  The driver calls idle() each time it is about to wait for
-- the loop: it puts the line back if output erased it, and redraws it
-- with new figures at most 10 times a second.  A weak timer (one that does
-- not keep the loop alive, so it can neither keep tide running nor hide a
-- deadlock) wakes the driver when the next redraw is due.
--
-- What is counted, as items: those of the maps called from outside any
-- task (the main chunk's maps: a nested map's items are part of an outer
-- item), and each job run outside any map.  The total is what is known so
-- far: a map adds its length when it starts (a later map adds its own
-- later), and a map over an iterator has none until the iterator ends,
-- meanwhile the line gives the count and no ETA.
local core = require("tide.core")
local sched = require("tide.run.sched")
local state = require("tide.state")

local M = {}

local INTERVAL = 0.1 -- seconds between two redraws: at most 10 a second
local QUIET = 1 -- not forced, the line appears once jobs have run this long

M.on = false -- the line may be drawn: the driver's hook is installed
local forced -- true or false when an option said so
local eager -- forced on: draw from the first job, not after QUIET
local stats = state -- jobs, failed, jobs outside maps, t0
local maps = {} -- the counted maps' count functions, not yet folded into base_*
local base_done, base_total = 0, 0
local since -- when the first job or map was seen
local text -- the line as last drawn, and when
local last = -math.huge
local timer -- the pending wake-up, if any

local function clock(s)
  if s < 10 then
    return ("%.1fs"):format(s)
  end
  s = math.floor(s + 0.5)
  if s < 60 then
    return s .. "s"
  elseif s < 3600 then
    return ("%dm%02ds"):format(s // 60, s % 60)
  end
  return ("%dh%02dm"):format(s // 3600, s % 3600 // 60)
end

-- Items done, and the total (nil while unknown).  A map that ended is
-- folded into base_done and base_total, so the list stays short.
local function count()
  local done, total = base_done + stats.outside_done, base_total + stats.outside
  local known = true
  local i = 1
  while maps[i] do
    local d, n, ended = maps[i]()
    if ended then
      base_done, base_total = base_done + d, base_total + n
      table.remove(maps, i)
    else
      i = i + 1
    end
    done = done + d
    if n then
      total = total + n
    else
      known = false
    end
  end
  return done, known and total or nil
end

-- The status line's text at time now.
function M.line(now)
  local done, total = count()
  local w = {
    total and ("tide: %d/%d done"):format(done, total) or ("tide: %d done"):format(done),
    core.running() .. " running", stats.failed .. " failed", clock(now - stats.t0) .. " elapsed",
  }
  local busy = now - (since or now)
  if done > 0 and busy > 0 then
    local rate = done / busy
    w[#w + 1] = rate >= 1 and ("%.1f/s"):format(rate) or ("%.3g/min"):format(rate * 60)
    if total and total > done then
      w[#w + 1] = "ETA " .. clock((total - done) / rate)
    end
  end
  local s = table.concat(w, ", ")
  local _, cols = core.isatty(2)
  if cols and cols > 1 and #s >= cols then
    s = s:sub(1, cols - 1) -- a line that wraps could not be erased
  end
  return s
end

local function on_tick()
  timer = nil -- the driver calls idle() next, which redraws
end

-- The driver's hook, before it waits for the loop.
local function idle()
  local now = core.now()
  if not since then
    if stats.jobs == 0 and stats.outside == 0 and not maps[1] then
      return -- nothing to report yet
    end
    since = now
  end
  if now - last >= INTERVAL then
    if text or eager or now - since >= QUIET then
      text, last = M.line(now), now
      core.status(text)
    end
  elseif not core.status() then
    core.status(text) -- output erased it: put it back as it was
  end
  if not timer then
    -- just after the next redraw is due (timers count whole milliseconds)
    timer = core.timer(math.max(last + INTERVAL - now, 0) + 0.002, true)
    sched.watch(timer, on_tick)
  end
end

local function stop()
  M.on = false
  sched.on_idle = nil
  if timer then
    timer:cancel()
    sched.unwatch(timer)
    timer = nil
  end
end

-- Decides whether the line is on, from the options given so far, then
-- TIDE_PROGRESS, then whether stderr is a terminal.
function M.setup()
  local want, env = forced, os.getenv("TIDE_PROGRESS")
  if want == nil then
    if env == "0" or env == "1" then
      want = env == "1"
    else
      want = core.isatty(2)
    end
  end
  eager = want and (forced or env == "1")
  if want and not M.on then
    M.on = true
    sched.on_idle = idle
  elseif not want and M.on then
    stop()
    core.status(false)
  end
end

-- progress = true or false (pool{...}, --progress, --no-progress).
function M.force(on)
  forced = on
  M.setup()
end

-- A map was called from outside any task: its items are counted.
-- counts() gives its items done, their total (nil while unknown) and
-- whether the map has ended.
function M.map(counts)
  if M.on then
    maps[#maps + 1] = counts
  end
end

-- At the end of the run: the line, if it was shown, is drawn a last time
-- with the final figures and left on the screen as an ordinary line.
function M.finish()
  if not M.on then
    return
  end
  stop()
  if text then
    core.status(M.line(core.now()), true)
  end
end

return M
