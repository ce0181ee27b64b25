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
-- ignored when read, and the next run starts on a fresh line.
local json = require("tide.json")

local M = {}

local files = {} -- [path] = the open record of this run

-- The key of an item, or nil if JSON cannot hold it (never resumed).
function M.key(item)
  local ok, k = pcall(json.encode, item)
  return ok and k or nil
end

-- Reads a record file: the decoded records in file order, and whether
-- its last line was torn.  A missing file is empty.
function M.read(path)
  local f = io.open(path, "rb")
  if not f then
    return {}, false
  end
  local text = f:read("a")
  f:close()
  local out, torn = {}, false
  local pos = 1
  while pos <= #text do
    local nl = text:find("\n", pos, true)
    if not nl then
      torn = true -- no newline: cut short by a kill
      break
    end
    local ok, r = pcall(json.decode, text:sub(pos, nl - 1))
    if ok and type(r) == "table" then
      out[#out + 1] = r
    end
    pos = nl + 1
  end
  return out, torn
end

-- The record of this run for path.  Without resume the file is started
-- afresh the first time this run opens it; with resume, what it holds
-- is read (done: key -> the latest record) and new lines are appended.
function M.open(path, resume)
  local rec = files[path]
  if rec then
    return rec
  end
  local done, torn = {}, false
  if resume then
    local lines
    lines, torn = M.read(path)
    for _, r in ipairs(lines) do
      local k = r.item ~= nil and M.key(r.item)
      if k then
        done[k] = r
      end
    end
  end
  local f, err = io.open(path, resume and "ab" or "wb")
  if not f then
    error(("map: record: %s"):format(err), 0)
  end
  f:setvbuf("no") -- each line one write(2)
  if torn then
    f:write("\n")
  end
  rec = { f = f, path = path, done = done }
  files[path] = rec
  return rec
end

-- The recorded value of an item to resume, true, and the reason it
-- stopped its map if it did; nil if it must run.
function M.resumed(rec, item)
  local k = M.key(item)
  local r = k and rec.done[k]
  if r and r.status == "ok" then
    return r.value, true, r.stop
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
  local ok, err = rec.f:write(json.encode(line) .. "\n")
  if not ok then
    error(("map: record: cannot write %s: %s"):format(rec.path, err), 0)
  end
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
