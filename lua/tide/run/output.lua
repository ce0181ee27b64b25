-- output.lua: where a job's output goes, the policy half of tide's output
-- options (src/proc.c, lines.c and out.c hold the mechanisms: they keep,
-- split, tag and write the bytes; this file decides which of that each
-- job gets).
--
-- Modes: "group" (the default: each stream as one block when the job
-- ends), "line" (complete lines as they come), "ungroup" (the job writes
-- to tide's own stdout and stderr), "capture" (into the result), "null".
-- A job is "watched" when Lua must see its output while it runs (line
-- mode, on_line): its task then wakes on each loop turn that brought new
-- output (sched.await_news), takes the complete lines and goes back to
-- waiting.  A job with none of these options never comes here at all.
--
-- order = "input" (GNU parallel's -k): each ordered map keeps a book of
-- which item's output may be printed now.  An item's jobs print at once
-- while every earlier item is done (and, in a nested map, while the item
-- that ran the map may print too); otherwise their output waits in one
-- store shared by all maps (a tide_buf: 1 MiB in memory, then a temporary
-- file), and the job itself is released at once.
local core = require("tide.core")
local json = require("tide.json")
local logfile = require("tide.run.logfile")
local result = require("tide.run.result")
local sched = require("tide.run.sched")
local util = require("tide.util")

local M = {}

local STREAMS = { "stdout", "stderr" } -- index = tide's descriptor for it

local checked, warn = util.checked, util.warn

---------------------------------------------------------------------------
-- Order

-- The book of an ordered map: the next item to print, the items done, the
-- blocks held for later ones, and where its own output goes (up: the slot
-- of the task that called map, in an outer ordered map, or nil).
function M.order(up)
  return { next = 1, done = {}, held = {}, up = up }
end

-- The place of item i of an ordered map.
function M.slot(ord, i)
  return { ord = ord, i = i, up = ord.up }
end

-- Whether output from slot s may be printed now: its item and every item
-- above it are first in line.
local function live(s)
  while s do
    if s.i ~= s.ord.next then
      return false
    end
    s = s.up
  end
  return true
end

local store, nheld = nil, 0

local function print_block(b)
  checked(store:write(b.off, b.len, b.fd, b.prefix, b.newline))
  nheld = nheld - 1
  if nheld == 0 then
    store:reset() -- nothing is held: the store starts afresh
  end
end

-- Hands block b, from slot s, to the first level where it must wait, or
-- prints it.
local function deliver(s, b)
  while s do
    local ord = s.ord
    if s.i ~= ord.next then
      local list = ord.held[s.i]
      if not list then
        list = {}
        ord.held[s.i] = list
      end
      list[#list + 1] = b
      return
    end
    s = s.up
  end
  print_block(b)
end

-- The next item is now first in line: what it had to hold goes up, and
-- so on past every item already done.
local function advance(ord)
  while true do
    local i = ord.next
    local list = ord.held[i]
    if list then
      ord.held[i] = nil
      for k = 1, #list do
        deliver(ord.up, list[k])
      end
    end
    if not ord.done[i] then
      return
    end
    ord.done[i] = nil
    ord.next = i + 1
  end
end

-- Item i of an ordered map has ended (returned, raised or was cancelled).
function M.item_done(ord, i)
  ord.done[i] = true
  if i == ord.next then
    advance(ord)
  end
end

-- The map has ended: what is still held (after a halt or an error, items
-- that never ran leave gaps) goes up in input order.
function M.flush_order(ord)
  local idx = {}
  for i in pairs(ord.held) do
    idx[#idx + 1] = i
  end
  table.sort(idx)
  local held = ord.held
  ord.held, ord.next = {}, math.huge
  for _, i in ipairs(idx) do
    for _, b in ipairs(held[i]) do
      deliver(ord.up, b)
    end
  end
end

-- A job's kept output, as one block per stream: printed now if its turn
-- has come, else copied into the store and held.
local function emit(job, o)
  local s = o.sink
  if s == nil or live(s) then
    for k = 1, 2 do
      checked(job:write(STREAMS[k], k, o.bprefix, o.bnewline))
    end
    return
  end
  store = store or core.store()
  for k = 1, 2 do
    local off, len = job:store(store, STREAMS[k])
    if not off then
      -- the store cannot grow (disk full): print now rather than lose it
      warn(("cannot hold output until its turn (%s): printing it now"):format(len))
      checked(job:write(STREAMS[k], k, o.bprefix, o.bnewline))
    elseif len > 0 then
      nheld = nheld + 1
      deliver(s, { fd = k, off = off, len = len, prefix = o.bprefix, newline = o.bnewline })
    end
  end
end

---------------------------------------------------------------------------
-- Tags

-- The words of a tag = true item: a table's array values joined by
-- spaces, then its other fields as name=value sorted by name (a grid
-- item {lr = 0.1, depth = 2} is "depth=2 lr=0.1").
local function words(v, seen)
  if type(v) ~= "table" then
    return tostring(v)
  end
  local mt = getmetatable(v)
  if (mt and mt.__tostring) or seen[v] then
    return tostring(v)
  end
  seen[v] = true
  local parts, n = {}, #v
  for i = 1, n do
    parts[i] = words(v[i], seen)
  end
  local keys = {}
  for k in pairs(v) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then
      keys[#keys + 1] = k
    end
  end
  table.sort(keys, function(a, b)
    return tostring(a) < tostring(b)
  end)
  for _, k in ipairs(keys) do
    parts[#parts + 1] = tostring(k) .. "=" .. words(v[k], seen)
  end
  seen[v] = nil
  return table.concat(parts, " ")
end

---------------------------------------------------------------------------
-- Results directories

local dirs = {} -- [path] and [device:inode] = its state

-- The state of a results directory, made on first use in this run (under
-- whichever name): its index file is started afresh then, and appended to
-- as jobs end (logfile.lua).
local function results_dir(dir)
  local d = dirs[dir]
  if d then
    return d
  end
  local ok, msg = util.mkdir_p(dir)
  if not ok then
    error(("shell: results: cannot create directory %s (%s)"):format(dir, msg), 0)
  end
  local id = logfile.identity(dir) or dir
  d = dirs[id]
  if not d then
    d = { dir = dir, used = {}, loose = 0, index = logfile.open(dir .. "/results.jsonl", true, "shell: results") }
    dirs[id] = d
  end
  dirs[dir] = d
  return d
end

-- A directory of its own for one shell() call: <i> for a job of map item
-- i, a running number for a job outside any map, with .2, .3 ... added
-- when that name is taken (a second job of the same item).
local function results_slot(dir, t)
  local d = results_dir(dir)
  local base
  if t then
    base = tostring(t.index)
  else
    d.loose = d.loose + 1
    base = tostring(d.loose)
  end
  local key, k = base, 1
  while d.used[key] do
    k = k + 1
    key = base .. "." .. k
  end
  d.used[key] = true
  local path = dir .. "/" .. key
  local ok, msg = core.mkdir(path)
  if not ok then
    error(("shell: results: cannot create directory %s (%s)"):format(path, msg), 0)
  end
  return { d = d, path = path, i = t and t.index, item = t and t.item }
end

-- Writes s to the file at path; nil and why if that failed.
local function spit(path, s)
  local f, err = io.open(path, "wb")
  if not f then
    warn("results: " .. err)
    return nil, err
  end
  local ok
  ok, err = f:write(s)
  if ok then
    ok, err = f:close()
  else
    f:close()
  end
  if not ok then
    return nil, ("results: cannot write %s: %s"):format(path, err)
  end
  return true
end

local function or_null(v)
  if v == nil then
    return json.null
  end
  return v
end

-- Writes the exit file and appends the job's line to results.jsonl.
function M.record(o, r, argv)
  local res = o.res
  local path = res.path
  local ok, why = spit(path .. "/exit", result.status(r) .. "\n")
  if not ok then
    result.lost(r, why)
  end
  local item = res.item
  if item ~= nil and not pcall(json.encode, item) then
    item = tostring(item)
  end
  local line = json.encode({
    i = or_null(res.i), item = or_null(item), cmd = r.cmd, argv = argv,
    code = or_null(r.code), signal = or_null(r.signal), ok = r.ok, timed_out = r.timed_out or false,
    elapsed = r.elapsed, start = o.start, attempts = r.attempts, error = r.error,
    user = r.user, sys = r.sys, maxrss = r.maxrss,
    dir = path, stdout = path .. "/stdout", stderr = path .. "/stderr",
  })
  logfile.write(res.d.index, line)
end

---------------------------------------------------------------------------
-- Plans: what one shell() call does with its output

-- Returns the plan for a job run in mode with options pol (layered shell,
-- map and pool job options) by task t (nil outside any map); o.spec is the
-- spawn spec (spec, the cwd/env/stdin one, extended).  nil when the job
-- needs nothing but the default (group with nothing else, or plain
-- capture), which shell.lua handles as it always has.  Raises at the
-- caller of shell() (level 4) for a bad tag function.
function M.plan(pol, mode, t, cmdstr, spec)
  local on_line, results, tag = pol.on_line or nil, pol.results or nil, pol.tag or nil
  local newline = pol.newline or nil
  local sink = t and t.out
  if mode == "ungroup" and on_line then
    mode = "line" -- callbacks see lines before they are printed
  end
  local prints = mode == "group" or mode == "line"
  if not on_line and not results then
    if mode == "group" and not (tag or newline or sink) then
      return nil
    elseif mode == "capture" and not pol.max_output then
      return nil
    end
  end
  local item
  if t then
    item = t.item
  else
    item = cmdstr -- outside a map, a job is known by its command
  end
  local s = {}
  if spec then
    for k, v in pairs(spec) do
      s[k] = v
    end
  end
  local o = { mode = mode, item = item, on_line = on_line, spec = s, mid = { false, false } }
  if prints then
    o.sink = sink
    o.newline = newline
    if tag then
      local word
      if tag == true then
        word = words(item, {})
      else
        word = tag(item, t and t.index)
        if type(word) == "number" then
          word = tostring(word)
        elseif type(word) ~= "string" then
          error(("bad argument #2 to 'shell' (option 'tag' returned %s; a string expected)")
            :format(type(word)), 4)
        end
      end
      o.prefix = word .. "\t"
    end
    -- blocks printed by job.c: lines a callback let through carry their
    -- tags and final newline already
    o.bprefix = not on_line and o.prefix or nil
    o.bnewline = not on_line and newline or nil
  end
  if mode == "capture" then
    s.max_output = pol.max_output or nil
  elseif mode == "group" then
    s.keep = not on_line
  elseif mode == "line" then
    s.keep, s.watch = false, true
  elseif mode == "ungroup" then
    if results then
      s.keep, s.watch, o.raw = false, true, true
    else
      s.stdout, s.stderr = "inherit", "inherit"
    end
  elseif mode == "null" then
    if on_line or results then
      s.keep = false
    else
      s.stdout, s.stderr = "null", "null"
    end
  end
  if on_line then
    s.watch = true
  end
  if s.watch then
    s.max_line = pol.max_line or nil
    o.watch = true
  end
  if results then
    local res = results_slot(results, t)
    o.res = res
    s.tee_stdout, s.tee_stderr = res.path .. "/stdout", res.path .. "/stderr"
  end
  return o
end

-- An attempt starts: fresh printing state, and the command and start time
-- for the results directory.
function M.begin(o, cmdstr)
  o.mid[1], o.mid[2], o.holding = false, false, false
  if o.spec.stdout == "inherit" then
    io.stdout:flush() -- the job writes after what the script printed
    -- The job writes to tide's stdout itself, so the EPIPE is the job's:
    -- tide asks whether the reader (head) has gone, and goes as lua would.
    if core.broken(1) then
      core.die(core.SIGPIPE)
    end
  end
  if o.res then
    o.start = core.time()
    if o.res.cmd ~= cmdstr then
      o.res.cmd = cmdstr
      spit(o.res.path .. "/cmd", cmdstr .. "\n")
    end
  end
end

-- Prints what a line-mode job held while its turn had not come.
local function unhold(job, o)
  o.holding = false
  for k = 1, 2 do
    checked(job:write(STREAMS[k], k, o.bprefix))
    job:clear(STREAMS[k])
  end
end

-- Hands each new line of stream k to on_line and prints (line mode) or
-- keeps (group mode, or a line-mode job whose turn has not come) those it
-- did not refuse, tagged.
local function each_line(job, o, k, final, now)
  local stream = STREAMS[k]
  local lines, partial, noeol = job:lines(stream, final)
  local prints = o.mode == "group" or o.mode == "line"
  local mid = o.mid[k]
  local out, n = {}, 0
  if lines then
    local cb, item, prefix = o.on_line, o.item, o.prefix
    local nl = #lines
    for i = 1, nl do
      local line = lines[i]
      local part = partial ~= nil and partial[i] == true
      local keep = cb(line, stream, item, part) ~= false
      if prints then
        local eol = not part and not (noeol and i == nl)
        if keep then
          if not mid and prefix then
            n = n + 1
            out[n] = prefix
          end
          n = n + 1
          out[n] = line
          if eol then
            n = n + 1
            out[n] = "\n"
          end
          mid = not eol
        elseif eol and mid then
          -- the start of this long line was printed: end it
          n = n + 1
          out[n] = "\n"
          mid = false
        end
      end
    end
  end
  if prints and final and mid and o.newline then
    n = n + 1
    out[n] = "\n"
    mid = false
  end
  o.mid[k] = mid
  if n > 0 then
    local s = table.concat(out, "", 1, n)
    if now then
      checked(core.write(k, s))
    else
      job:keep(stream, s)
    end
  end
end

-- Takes the output a watched job brought since the last call (all of it,
-- with final: the job has ended).
local function pump(job, o, final)
  if o.raw then -- ungroup with a results directory: bytes as they come
    for k = 1, 2 do
      checked(job:flush(STREAMS[k], k, nil, final, false, true))
    end
    return
  end
  local now = o.mode == "line" and live(o.sink)
  if now and o.holding then
    unhold(job, o)
  end
  if o.on_line then
    for k = 1, 2 do
      each_line(job, o, k, final, now)
    end
    if o.mode == "line" and not now then
      o.holding = true
    end
  elseif now then
    for k = 1, 2 do
      checked(job:flush(STREAMS[k], k, o.prefix, final, o.newline))
    end
  else
    o.holding = true
    for k = 1, 2 do
      job:hold(STREAMS[k], final)
    end
  end
end

-- Waits for a watched job to end, taking its output as it comes.  An
-- error in on_line stops the job (on_cancel terminates it), waits until it
-- is reaped, and is raised again from shell().
function M.follow(job, o, on_cancel)
  while true do
    local done = sched.await_news(job, on_cancel)
    local ok, err = pcall(pump, job, o, done)
    if not ok then
      on_cancel()
      while not done do
        done = sched.await_news(job)
      end
      error(err, 0)
    end
    if done then
      return
    end
  end
end

-- The job could not start: its message (r.stderr) goes where its stderr
-- would have gone; r keeps it only in capture mode.
function M.not_started(o, r)
  local line = r.stderr
  if o.mode ~= "capture" then
    result.uncaptured(r)
  end
  if o.res then
    spit(o.res.path .. "/stderr", line)
  end
  local s = o.spec.stderr
  if o.mode == "null" or s == "null" or o.mode == "capture" then
    return
  end
  if o.prefix then
    line = o.prefix .. line
  end
  io.stdout:flush()
  checked(core.write(2, line))
end

-- The job's last attempt has ended: its output goes where its mode says;
-- r gets what capture keeps.
function M.finish(job, o, r)
  local mode = o.mode
  if o.spec.stdout == "inherit" and core.broken(1) then
    core.die(core.SIGPIPE) -- see M.begin
  end
  if mode == "capture" then
    result.captured(r, job:output("stdout"), job:output("stderr"), job:omitted("stdout"), job:omitted("stderr"))
  elseif mode == "group" or (mode == "line" and o.holding) then
    emit(job, o)
  end
  if o.res then
    for k = 1, 2 do
      local why = job:tee_error(STREAMS[k])
      if why then
        result.lost(r, ("results: cannot write %s/%s: %s"):format(o.res.path, STREAMS[k], why))
      end
    end
  end
end

return M
