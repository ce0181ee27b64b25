-- record.lua: item records, a sweep's results as data.  With the record
-- option, map appends one JSON line per finished item to a file:
--
--   {"i":3,"item":{"lr":0.1},"value":{"loss":0.25},"status":"ok",
--    "start":1764900000.123,"elapsed":1.5}
--
-- stop, when present, is the reason this item stopped the map (tide.stop
-- or stop_when): a resumed run stops there too.
--
-- status is "ok" (fn returned, and neither its value nor a job it ran
-- says it failed), "failed" (fn returned a result with ok == false, or a
-- job it ran failed), "error" (fn raised: value is the message) or
-- "stopped" (a halt or a stop cancelled it).  value is fn's first return
-- value when JSON can hold it (numbers, strings, booleans, nil and tables
-- of those), else it is left out.
--
-- With resume, an item whose latest record says "ok" is not run again:
-- its recorded value, decoded, takes its place in map's results.  The key
-- is the item's content (its canonical JSON: object keys sorted), not its
-- position, so items may be added, removed or reordered between runs.
--
-- Each line is written by one write(2) under O_APPEND and is complete
-- before the next starts; a torn last line (tide killed mid-write) is
-- ignored when read, and the next run starts on a fresh line
-- (logfile.lua, shared with the job log).
local json = require("tide.json")
local logfile = require("tide.run.logfile")

local M = {}

-- The key of an item, or nil if JSON cannot hold it (never resumed).
function M.key(item)
  local ok, k = pcall(json.encode, item)
  return ok and k or nil
end

-- Reads a record file: the decoded records in file order, and whether
-- its last line was torn.  A missing file is empty.
function M.read(path)
  local lines, torn = logfile.read(path)
  local out = {}
  for _, line in ipairs(lines) do
    local ok, r = pcall(json.decode, line)
    if ok and type(r) == "table" then
      out[#out + 1] = r
    end
  end
  return out, torn
end

-- The record of this run for path (one per file, however it is named).
-- Without resume the file is started afresh the first time this run
-- opens it; with resume, what it holds is read (done: key -> the latest
-- record) and new lines are appended.
function M.open(path, resume)
  local rec, new = logfile.open(path, not resume, "map: record")
  if new then
    rec.done = {}
    if resume then
      for _, r in ipairs(M.read(path)) do
        local k = r.item ~= nil and M.key(r.item)
        if k then
          rec.done[k] = r
        end
        if r.stop ~= nil then
          rec.stopped = true -- the recorded run was stopped on purpose
        end
      end
    end
  end
  return rec
end

-- The recorded value of an item to resume, true, and the reason it
-- stopped its map if it did; nil and "stopped" for an item that a
-- recorded stop killed (it stays killed); nil if it must run.
function M.resumed(rec, item)
  local k = M.key(item)
  local r = k and rec.done[k]
  if r and r.status == "ok" then
    return r.value, true, r.stop
  elseif r and r.status == "stopped" and rec.stopped then
    return nil, "stopped" -- a stop killed it: a rerun stops where the run did
  end
end

-- Appends the record of one finished item.
function M.write(rec, i, item, value, status, start, elapsed, stop)
  local line = { i = i, status = status, start = start, elapsed = elapsed, stop = stop }
  if M.key(item) then
    line.item = item
  else
    line.item = tostring(item)
  end
  if value ~= nil and M.key(value) then
    line.value = value
  end
  logfile.write(rec, json.encode(line))
end

-- tide.records(path): the latest record of each item in a record file, in
-- the order of i, as rows for csv.write (item and value fields become
-- item.name and value.name columns).
function M.rows(path)
  if type(path) ~= "string" then
    error(("bad argument #1 to 'records' (file name expected, got %s)"):format(type(path)), 2)
  end
  local f = io.open(path, "rb")
  if not f then
    error(("records: cannot open %s"):format(path), 2)
  end
  f:close()
  local lines = M.read(path)
  local latest, order = {}, {}
  for _, r in ipairs(lines) do
    local k = M.key(r.item) or tostring(r.i)
    if not latest[k] then
      order[#order + 1] = k
    end
    latest[k] = r
  end
  local rows = {}
  for n, k in ipairs(order) do
    rows[n] = latest[k]
  end
  table.sort(rows, function(a, b)
    return (tonumber(a.i) or 0) < (tonumber(b.i) or 0)
  end)
  return rows
end

return M
