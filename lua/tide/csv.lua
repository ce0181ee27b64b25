-- csv.lua: tide.csv.write(path, rows [, columns]), a table of results as
-- RFC 4180 CSV that spreadsheets, pandas and Python's csv module read.
--
-- rows is an array of tables; a nested table's fields become dotted
-- columns ({item = {lr = 0.1}} is the column item.lr; an array's entries
-- item.1, item.2...).  columns gives their order; by default every column
-- seen in any row, sorted by name.  Numbers are written in the fewest
-- digits that read back as the same number, booleans as true and false,
-- nil as an empty field.  Fields with a comma, a quote or a line break
-- are quoted, quotes doubled; lines end in CRLF, as the RFC says.
local json = require("tide.json")

local M = {}

-- Flattens row into out: column name -> scalar value.
local function flatten(v, prefix, out, seen)
  if type(v) ~= "table" or (getmetatable(v) and getmetatable(v).__tostring) then
    out[prefix] = v
    return
  end
  if seen[v] then
    error(("csv: column '%s' holds a table that contains itself"):format(prefix), 0)
  end
  seen[v] = true
  for k, x in pairs(v) do
    if not (k == "n" and math.type(x) == "integer" and v[1] ~= nil) then
      local name = prefix and (prefix .. "." .. tostring(k)) or tostring(k)
      flatten(x, name, out, seen)
    end
  end
  seen[v] = nil
end

local function field(v)
  local tv = type(v)
  local s
  if v == nil or v == json.null then
    return ""
  elseif tv == "number" then
    s = json.encode(v)
    if s == "null" then
      s = tostring(v) -- nan, inf: as Lua writes them
    end
  elseif tv == "string" then
    s = v
  else
    s = tostring(v)
  end
  if s:find('[,"\r\n]') or s:find("^%s") or s:find("%s$") then
    s = '"' .. s:gsub('"', '""') .. '"'
  end
  return s
end

function M.write(path, rows, columns)
  if type(path) ~= "string" or path == "" then
    error(("bad argument #1 to 'write' (file name expected, got %s)"):format(type(path)), 2)
  end
  if type(rows) ~= "table" then
    error(("bad argument #2 to 'write' (array of tables expected, got %s)"):format(type(rows)), 2)
  end
  if columns ~= nil and type(columns) ~= "table" then
    error(("bad argument #3 to 'write' (array of column names expected, got %s)"):format(type(columns)), 2)
  end
  local n = rows.n or #rows
  local flat, seen = {}, {}
  for i = 1, n do
    local row = rows[i]
    if row ~= nil and type(row) ~= "table" then
      error(("bad argument #2 to 'write' (row %d is a %s, a table expected)"):format(i, type(row)), 2)
    end
    local out = {}
    local ok, err = pcall(flatten, row or {}, nil, out, {})
    if not ok then
      error(("bad argument #2 to 'write' (row %d: %s)"):format(i, err), 2)
    end
    flat[i] = out
    for k in pairs(out) do
      seen[k] = true
    end
  end
  if not columns then
    columns = {}
    for k in pairs(seen) do
      columns[#columns + 1] = k
    end
    table.sort(columns)
  end
  if #columns == 0 then
    columns = nil -- no row has a field: an empty file, not a blank line
  end
  local lines = {}
  local head = {}
  for c, name in ipairs(columns or {}) do
    head[c] = field(tostring(name))
  end
  lines[1] = table.concat(head, ",")
  for i = 1, columns and n or 0 do
    local cells = {}
    for c, name in ipairs(columns) do
      cells[c] = field(flat[i][name])
    end
    lines[i + 1] = table.concat(cells, ",")
  end
  local f, err = io.open(path, "wb")
  if not f then
    error(("csv.write: %s"):format(err), 2)
  end
  local ok, werr = f:write(columns and (table.concat(lines, "\r\n") .. "\r\n") or "")
  local closed, cerr = f:close()
  if not ok or not closed then
    error(("csv.write: cannot write %s: %s"):format(path, werr or cerr), 2)
  end
  return n
end

return M
