-- logfile.lua: append-only files of lines, the one reader and writer of
-- the job log, item records and results directories' results.jsonl.
--
-- A file is known by its device and inode, not by the name it was given:
-- "jl" and "./jl" (or a symlink) are one file, opened once per run.  It
-- is opened with O_APPEND and no buffering, and each line is written with
-- one write(2), whole, so that a kill cannot tear or interleave lines
-- (short of a full disk, which is an error raised naming the file).  A
-- kill during that write can still leave a last line without its "\n":
-- read() ignores such a torn line, and the next run's open() ends it with
-- TORN, which no line parses with (a tab and a mark), so it is never taken
-- for a complete line later either.
local core = require("tide.core")

local M = {}

M.TORN = "\t#torn"

local files = {} -- ["dev:ino"] = the open file of this run

-- The identity of the file at path, or nil if there is none.
local function identity(path)
  local dev, ino = core.stat(path)
  return dev and (dev .. ":" .. ino) or nil
end
M.identity = identity

-- Reads path: its complete lines (without "\n"), in order, and whether
-- the last one was torn.  A missing file has none.
function M.read(path)
  local f = io.open(path, "rb")
  if not f then
    return {}, false
  end
  local text = f:read("a")
  f:close()
  local out, pos = {}, 1
  while pos <= #text do
    local nl = text:find("\n", pos, true)
    if not nl then
      return out, true -- cut short by a kill
    end
    out[#out + 1] = text:sub(pos, nl - 1)
    pos = nl + 1
  end
  return out, false
end

-- The open file for path, and whether this call opened it (false: this
-- run had it open already, under this name or another).  fresh: start it
-- empty (the first time only); else lines are appended after what it
-- holds.  what names the option in errors ("joblog", "map: record").
function M.open(path, fresh, what)
  local id = identity(path)
  local lf = id and files[id]
  if lf then
    return lf, false
  end
  local f, err
  if fresh then
    f, err = io.open(path, "wb")
    if f then
      f:close()
    end
  end
  if not err then
    f, err = io.open(path, "ab") -- O_APPEND
  end
  if not f then
    error(("%s: %s"):format(what, err), 0)
  end
  f:setvbuf("no") -- each line one write(2)
  lf = { f = f, path = path, what = what }
  files[identity(path) or path] = lf
  if not fresh then
    local r = io.open(path, "rb")
    local size = r and r:seek("end")
    if size and size > 0 then
      r:seek("set", size - 1)
      if r:read(1) ~= "\n" then
        M.write(lf, M.TORN)
      end
    end
    if r then
      r:close()
    end
  end
  return lf, true
end

-- Appends line (without its "\n") in one write(2); a failed write is an
-- error naming the file.
function M.write(lf, line)
  local ok, err = lf.f:write(line .. "\n")
  if not ok then
    error(("%s: cannot write %s: %s"):format(lf.what, lf.path, err), 0)
  end
end

return M
