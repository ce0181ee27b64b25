-- files.lua: sequences read from the file system: lines(path), glob(pattern).
-- Both look at the file system when a pass starts, not when created, so a
-- sequence made before its inputs exist sees them.
local core = require("tide.core")
local seq = require("tide.sweep.seq")

local M = {}

-- lines(path): the file's lines without their "\n" (a "\r" before it is
-- data, kept), no empty item after a final newline, a last line without
-- one still counts.  "-" reads tide's stdin, which only one pass can read.
function M.lines(path)
  if type(path) ~= "string" then
    error(("bad argument #1 to 'lines' (file name expected, got %s)"):format(type(path)), 2)
  end
  if path == "-" then
    return seq.new(function()
      return function()
        return io.stdin:read("l")
      end
    end, nil, nil, true)
  end
  -- A missing file is reported where lines() is called: that is the
  -- mistake to point at.
  local f, err = io.open(path, "rb")
  if not f then
    error(("bad argument #1 to 'lines' (%s)"):format(err), 2)
  end
  f:close()
  return seq.new(function()
    local file, started = nil, false
    return function()
      if not started then
        started = true
        local msg
        file, msg = io.open(path, "rb")
        if not file then
          error("lines: " .. msg, 0)
        end
      end
      if not file then
        return nil
      end
      local line = file:read("l")
      if line == nil then
        file:close()
        file = nil
      end
      return line
    end
  end)
end

-- glob(pattern): the paths matching a shell pattern (* ? [...] {a,b} ~),
-- sorted bytewise; none is an empty sequence, not an error.  As in the
-- shell, * does not match a leading dot, and there is no **.
function M.glob(pattern)
  if type(pattern) ~= "string" then
    error(("bad argument #1 to 'glob' (pattern expected, got %s)"):format(type(pattern)), 2)
  elseif pattern:find("\0", 1, true) then
    error("bad argument #1 to 'glob' (pattern contains a NUL byte)", 2)
  end
  return seq.new(function()
    local paths, i = nil, 0
    return function()
      if not paths then
        local msg
        paths, msg = core.glob(pattern)
        if not paths then
          error("glob: " .. msg, 0)
        end
        table.sort(paths)
      end
      i = i + 1
      return paths[i]
    end
  end)
end

return M
