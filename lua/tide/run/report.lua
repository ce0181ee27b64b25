-- report.lua: the run report, one self-contained HTML page (report =
-- "run.html"), and the same timeline as Chrome trace-event JSON (trace =
-- "run.json", for Perfetto or chrome://tracing).
--
-- While jobs run, each finished job and item is appended as one JSON line
-- to a spool file (an unlinked temporary file): the run holds nothing more
-- in memory, and a report of 100,000 jobs costs the run a write each.
-- When the run ends (its end, a script error, a halt, a stop, Ctrl-C: the
-- guard below writes it when Lua closes), the page is written by copying
-- the spool into it: the data as JSON, then the page's own CSS and
-- JavaScript (report_page.lua), which draw the timeline, the running-jobs
-- line, the results table, the scatter plot and the failures in the
-- browser.  No network: nothing in the page refers to anything outside it.
--
-- `tide report FILE... -o run.html` builds the same page afterwards from
-- item records (record = ...), a results directory's results.jsonl or a
-- job log in GNU parallel's format (GNU parallel's own too).
--
-- A job is a JSON array (the page reads them by position):
--   [lane, host, start, duration, wait, status, code, signal, cpu, rss,
--    attempts, item, cmd]
-- start in seconds since the epoch; duration, wait (queued before it ran,
-- where known) and cpu (user + sys) in seconds; rss in KiB; status one of
-- ok, failed, timeout, stopped, resumed; item: "map.i" of the item that
-- ran it, or null.  An item is [id, item, value, status, elapsed, cpu,
-- rss, start] with id "map.i".  A failure is [job index, stderr tail].
local core = require("tide.core")
local json = require("tide.json")
local state = require("tide.state")
local util = require("tide.util")

local M = {}

M.TAIL = 2048 -- bytes of a failed job's stderr the report shows
local TAIL = M.TAIL

local spool -- the open spool file, while a report or trace is wanted
local tspool -- the trace's events, when a trace is wanted
local njobs = 0 -- jobs in the spool: a failure names its job by index
local targets = {} -- the files to write at the end: { html = path, trace = path }
local written = false
-- What the header says, kept as jobs end: counts by status, CPU, peak
-- RSS, hosts, the first start and the last end.
local stats = { counts = {}, cpu = 0, rss = 0, hosts = {}, first = math.huge, last = -math.huge }
local origin -- the trace's time 0, in seconds since the epoch
local pids, tids, npid, ntid = {}, {}, 0, 0 -- the trace's processes (hosts) and threads (lanes)

-- Turns the report on for this run (report and trace: file names, either
-- may be nil).  Several pools may name the same files; the last name wins.
function M.enable(report, trace)
  if report then
    targets.html = report
  end
  if trace then
    targets.trace = trace
  end
  if not spool then
    local err
    spool, err = io.tmpfile()
    if not spool then
      error("report: cannot create a temporary file: " .. tostring(err), 0)
    end
    state.report = true
    origin = state.started
    -- made after the spool, so Lua finalizes it first (finalizers run in
    -- the reverse order): however the run ends, what ran so far is
    -- written when Lua closes, while the spool is still open
    M.guard = setmetatable({}, {
      __gc = function()
        pcall(M.finish)
      end,
    })
  end
  if targets.trace and not tspool then
    tspool = io.tmpfile()
  end
end

local quote = json.quote

-- A JSON value for a field that may be nil.
local function opt(v)
  if v == nil or v == json.null then
    return "null"
  elseif type(v) == "string" then
    return quote(v)
  end
  return json.encode(v)
end

local function num(x)
  return ("%.6g"):format(x)
end

-- The trace event of a job (a complete event, "X"): a process per host, a
-- thread per lane, microseconds from the origin.
local function trace_event(lane, host, start, dur, status, code, signal, cmd, item)
  local pid = pids[host]
  if not pid then
    npid = npid + 1
    pid, pids[host] = npid, npid
    tspool:write(('{"name":"process_name","ph":"M","pid":%d,"args":{"name":%s}}\n'):format(pid, quote("host " .. host)))
  end
  local key = host .. "\0" .. lane
  local tid = tids[key]
  if not tid then
    ntid = ntid + 1
    tid, tids[key] = ntid, ntid
    tspool:write(('{"name":"thread_name","ph":"M","pid":%d,"tid":%d,"args":{"name":%s}}\n')
      :format(pid, tid, quote("slot " .. lane)))
  end
  tspool:write(('{"name":%s,"cat":%s,"ph":"X","pid":%d,"tid":%d,"ts":%.0f,"dur":%.0f,'
    .. '"args":{"status":%s,"code":%s,"signal":%s,"item":%s}}\n')
    :format(quote(cmd), quote(status), pid, tid, (start - origin) * 1e6, dur * 1e6, quote(status), opt(code),
      opt(signal), opt(item)))
end

-- Appends one job to the spool (see the top of this file for the fields).
local function add_job(lane, host, start, dur, wait, status, code, signal, cpu, rss, attempts, item, cmd)
  lane = tostring(lane)
  spool:write(("j[%s,%s,%.3f,%s,%s,%s,%s,%s,%s,%d,%d,%s,%s]\n"):format(quote(lane), quote(host), start, num(dur),
    num(wait), quote(status), opt(code), opt(signal), num(cpu), math.floor(rss), attempts, opt(item), quote(cmd)))
  njobs = njobs + 1
  local c = stats.counts
  c[status] = (c[status] or 0) + 1
  stats.cpu = stats.cpu + cpu
  if rss > stats.rss then
    stats.rss = rss
  end
  stats.hosts[host] = true
  if start < stats.first then
    stats.first = start
  end
  if start + dur > stats.last then
    stats.last = start + dur
  end
  if tspool then
    trace_event(lane, host, start, dur, status, code, signal, cmd, item)
  end
end

local function add(kind, t)
  spool:write(kind, json.encode(t), "\n")
end

local function wall(mono)
  return state.started + (mono - state.t0)
end

-- The "map.i" name of the item a task runs, or nil outside a map.
local function item_of(t)
  return t and (t.map.id .. "." .. t.index) or nil
end

-- A job that ended with r: called by run.job with the task that ran it
-- (nil outside a map), when shell() was called (core.now()) and, for a
-- failed job, the tail of its stderr.
function M.job(r, t, called, tail)
  local lane = t and t.lane or "main"
  local now = core.now()
  if r.resumed or r.dry_run then
    add_job(lane, r.host or ":", wall(now), 0, 0, "resumed", r.code, r.signal, 0, 0, 0, item_of(t), r.cmd)
    return
  end
  local elapsed = r.elapsed or 0
  local status = r.timed_out and "timeout" or (r.ok and "ok" or "failed")
  local cpu = (r.user or 0) + (r.sys or 0)
  local start = r.start or wall(now - elapsed)
  local wait = math.max(start - wall(called or now), 0)
  add_job(lane, r.host or ":", start, elapsed, wait, status, r.code, r.signal, cpu, r.maxrss or 0,
    r.attempts or 1, item_of(t), r.cmd)
  if not r.ok then
    tail = tail or r.stderr
    if tail and #tail > TAIL then
      tail = tail:sub(-TAIL)
    end
    add("f", { njobs - 1, tail or (r.error and r.error .. "\n") or "" })
  end
  if t then
    t.cpu = (t.cpu or 0) + cpu
    t.rss = math.max(t.rss or 0, r.maxrss or 0)
  end
end

-- A job stopped by a halt, a stop or an error in its map: rec from
-- run.job (t0, cmd).
function M.stopped(rec, t)
  local now = core.now()
  local t0 = rec.t0 or now
  add_job(t and t.lane or "main", ":", wall(t0), now - t0, 0, "stopped", nil, nil, 0, 0, 1, item_of(t), rec.cmd)
end

-- An item of map st has ended (status: record.lua's words) or was resumed.
function M.item(st, i, item, value, status, t)
  if type(value) == "table" and type(value.cmd) == "string" and value.attempts and value.ok ~= nil then
    -- a shell() result: its times, CPU and RSS are the item's columns
    -- already; as metrics, how it ended
    value = { ok = value.ok, code = value.code, signal = value.signal }
  end
  local ok, itext = pcall(json.encode, item)
  if not ok then
    itext = quote(tostring(item))
  end
  local vtext
  ok, vtext = pcall(json.encode, value)
  if not ok then
    vtext = "null"
  end
  local now = core.now()
  spool:write(('i[%s,%s,%s,%s,%s,%s,%d,%.3f]\n'):format(quote(st.id .. "." .. i), itext, vtext, quote(status),
    num(t and t.t0r and (now - t.t0r) or 0), num(t and t.cpu or 0), math.floor(t and t.rss or 0),
    wall(t and t.t0r or now)))
end

---------------------------------------------------------------------------
-- Writing

-- Copies the spool's lines of one kind into f as the elements of a JSON
-- array; "</" is written "<\/" so no string can end the <script> the data
-- sits in.
local function copy(f, kind)
  spool:seek("set", 0)
  local first = true
  for line in spool:lines() do
    if line:sub(1, 1) == kind then
      if not first then
        f:write(",\n")
      end
      first = false
      f:write((line:sub(2):gsub("</", "<\\/")))
    end
  end
end

-- The header's figures (see stats).
local function summarize(meta)
  local names = {}
  for h in pairs(stats.hosts) do
    names[#names + 1] = h
  end
  table.sort(names)
  meta.counts, meta.cpu, meta.rss, meta.hosts, meta.jobs = stats.counts, stats.cpu, stats.rss, names, njobs
  meta.start = meta.start or (stats.first < math.huge and stats.first or 0)
  meta["end"] = math.max(meta["end"] or 0, stats.last > -math.huge and stats.last or 0)
  return meta
end

-- Writes path with fill(f); true, or nil and why.
local function write_file(path, fill)
  local f, err = io.open(path, "wb")
  if not f then
    return nil, err
  end
  fill(f)
  local ok, werr = f:close()
  if not ok then
    return nil, werr
  end
  return true
end

local function html(f, meta)
  -- the page's HTML, CSS and script: loaded only by a run that writes one
  local page = require("tide.run.report_page")
  f:write(page.head(meta.title))
  f:write('<script id="tide-data" type="application/json">{"jobs":[\n')
  copy(f, "j")
  f:write('],\n"items":[\n')
  copy(f, "i")
  f:write('],\n"failures":[\n')
  copy(f, "f")
  f:write('],\n"meta":', (json.encode(meta):gsub("</", "<\\/")), "}</script>\n")
  f:write(page.tail())
end

-- The timeline as Chrome trace-event JSON, from the events written as
-- jobs ended.
local function trace_json(f)
  f:write('{"displayTimeUnit":"ms","traceEvents":[\n')
  tspool:seek("set", 0)
  local first = true
  for line in tspool:lines() do
    f:write(first and "" or ",\n", line)
    first = false
  end
  f:write("\n]}\n")
end

-- The command line the run was started with.
local function command_line()
  if state.command then
    return state.command
  end
  local a = rawget(_G, "arg")
  if type(a) ~= "table" then
    return "tide"
  end
  local words = { "tide" }
  for i = 0, #a do
    words[#words + 1] = util.quote(tostring(a[i]))
  end
  return table.concat(words, " ")
end

-- Writes what was asked for (at most once per run).  Returns true, or
-- nil and why.
function M.finish()
  if not spool or written then
    return true
  end
  written = true
  local live = state.started ~= nil
  local meta = summarize({
    title = command_line(), command = command_line(), version = core.version,
    start = live and state.started or nil, ["end"] = live and core.time() or nil,
  })
  local failed
  if targets.html then
    local ok, err = write_file(targets.html, function(f)
      html(f, meta)
    end)
    if not ok then
      failed = ("report: cannot write %s: %s"):format(targets.html, err)
    end
  end
  if targets.trace then
    local ok, err = write_file(targets.trace, trace_json)
    if not ok then
      failed = ("trace: cannot write %s: %s"):format(targets.trace, err)
    end
  end
  if failed then
    util.warn(failed)
    return nil, failed
  end
  return true
end

---------------------------------------------------------------------------
-- tide report FILE... -o run.html [--trace run.json]

-- Lanes for jobs that came with none (a job log): each job takes the
-- lowest lane free at its start, as a pool's slots would.
local function assign_lanes(jobs)
  local order = {}
  for k = 1, #jobs do
    order[k] = k
  end
  table.sort(order, function(a, b)
    return jobs[a][3] < jobs[b][3]
  end)
  local busy = {} -- lane -> when it frees up
  for _, k in ipairs(order) do
    local j = jobs[k]
    if j[1] == nil then
      local lane = 1
      while busy[lane] and busy[lane] > j[3] + 1e-9 do
        lane = lane + 1
      end
      busy[lane] = j[3] + j[4]
      j[1] = tostring(lane)
    end
  end
end

local SIGNAMES = setmetatable({}, {
  __index = function(t, n)
    local name = n ~= 0 and (core.signame(n) or ("SIG" .. n)) or json.null
    t[n] = name
    return name
  end,
})

-- Reads one input file into jobs and items; the format is told by its
-- first line.
local function read_input(path, jobs, items, failures, nfile)
  local f, err = io.open(path, "rb")
  if not f then
    error(("cannot open %s"):format(err), 0)
  end
  local first = f:read("l")
  if not first then
    f:close()
    return
  end
  if first:find("^Seq\tHost\tStarttime") then
    for line in f:lines() do
      local sq, host, start, runtime, _, _, code, sig, cmd =
        line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      if sq then
        code, sig = tonumber(code) or -1, tonumber(sig) or 0
        local status = (code == 0 and sig == 0) and "ok" or "failed"
        jobs[#jobs + 1] = { nil, host, tonumber(start) or 0, tonumber(runtime) or 0, 0, status,
          sig == 0 and code or json.null, SIGNAMES[sig], 0, 0, 1, nfile .. "." .. sq, cmd }
        if status ~= "ok" then
          failures[#failures + 1] = { #jobs - 1, "" }
        end
      end
    end
    f:close()
    return
  end
  f:seek("set", 0)
  for line in f:lines() do
    local ok, r = pcall(json.decode, line)
    if ok and type(r) == "table" then
      if r.status then -- an item record
        items[#items + 1] = { nfile .. "." .. tostring(r.i), r.item, r.value, r.status, r.elapsed or 0, 0, 0,
          r.start or 0 }
      elseif r.cmd then -- a results directory's results.jsonl line
        local status = r.ok and "ok" or (r.timed_out and "timeout" or "failed")
        jobs[#jobs + 1] = { nil, ":", r.start or 0, r.elapsed or 0, 0, status, r.code, r.signal,
          (r.user or 0) + (r.sys or 0), r.maxrss or 0, r.attempts or 1,
          r.i ~= nil and (nfile .. "." .. tostring(r.i)) or json.null, r.cmd }
        if r.item ~= nil then
          items[#items + 1] = { nfile .. "." .. tostring(r.i), r.item, json.null, status, r.elapsed or 0,
            (r.user or 0) + (r.sys or 0), r.maxrss or 0, r.start or 0 }
        end
        if status ~= "ok" then
          local tail = r.stderr and util.slurp(r.stderr)
          failures[#failures + 1] = { #jobs - 1, tail and tail:sub(-TAIL) or "" }
        end
      end
    end
  end
  f:close()
end

local REPORT_USAGE = "usage: tide report RECORD_OR_JOBLOG... -o run.html [--trace run.json]"

-- The report subcommand: returns tide's exit status.
function M.command(args)
  local inputs, out, trace = {}, nil, nil
  local i = 2
  while args[i] do
    local a = args[i]
    if a == "-o" or a == "--output" then
      out, i = args[i + 1], i + 1
    elseif a == "--trace" then
      trace, i = args[i + 1], i + 1
    elseif a == "-h" or a == "--help" then
      io.stdout:write(REPORT_USAGE, "\n")
      return 0
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      io.stderr:write(("tide: report: unknown option '%s'\n%s\n"):format(a, REPORT_USAGE))
      return 255
    else
      inputs[#inputs + 1] = a
    end
    i = i + 1
  end
  if #inputs == 0 or (not out and not trace) then
    io.stderr:write(("tide: report: %s\n%s\n"):format(#inputs == 0 and "no input file given"
      or "no output given (-o run.html or --trace run.json)", REPORT_USAGE))
    return 255
  end
  local jobs, items, failures = {}, {}, {}
  for n, path in ipairs(inputs) do
    local ok, err = pcall(read_input, path, jobs, items, failures, n)
    if not ok then
      io.stderr:write("tide: report: ", tostring(err), "\n")
      return 255
    end
  end
  assign_lanes(jobs)
  state.started = nil
  M.enable(out, trace)
  origin = math.huge
  for _, j in ipairs(jobs) do
    origin = math.min(origin, j[3])
  end
  for _, j in ipairs(jobs) do
    add_job(table.unpack(j, 1, 13))
  end
  for _, it in ipairs(items) do
    add("i", it)
  end
  for _, fl in ipairs(failures) do
    add("f", fl)
  end
  state.command = "tide report " .. table.concat(inputs, " ")
  local ok = M.finish()
  return ok and 0 or 1
end

return M
