-- frame.lua: the stream between tide and its workers (`tide --worker`, one
-- per host or node, see worker.lua and serve.lua).
--
-- A frame is a kind, a job id and a list of strings:
--     KIND ID N LEN1 ... LENn "\n" STRING1 ... STRINGn
-- The header is text, the strings follow it as they are, so any byte
-- (argv words, environment values, a job's binary output) goes through
-- exactly, with no escaping to pay for on output.  Both ends are tide of
-- the same version (the hello frame says which), so the format needs no
-- negotiation.
local M = {}

-- Protocol version: a worker of another version is refused at hello.
M.VERSION = "1"

local concat = table.concat

-- The bytes of one frame.
function M.encode(kind, id, ...)
  local n = select("#", ...)
  local lens, strs = {}, { ... }
  for i = 1, n do
    local s = strs[i]
    if type(s) ~= "string" then
      s = tostring(s)
      strs[i] = s
    end
    lens[i] = #s
  end
  return kind .. " " .. id .. " " .. n .. (n > 0 and " " .. concat(lens, " ") or "") .. "\n" .. concat(strs)
end

-- A reader of frames out of a byte stream: r:push(bytes), then
-- r:next() -> kind, id, strings (a list), or nil until a whole frame came.
-- A malformed header raises: the far end is not a tide worker.
local Reader = {}
Reader.__index = Reader

function M.reader()
  return setmetatable({ buf = "", pos = 1 }, Reader)
end

function Reader:push(bytes)
  if bytes ~= "" then
    if self.pos > 1 then
      self.buf = self.buf:sub(self.pos) .. bytes
      self.pos = 1
    else
      self.buf = self.buf .. bytes
    end
  end
end

function Reader:next()
  local buf, pos = self.buf, self.pos
  local nl = buf:find("\n", pos, true)
  if not nl then
    if #buf - pos > 4096 then
      error(("not a tide worker: %q"):format(buf:sub(pos, pos + 79)), 0)
    end
    return nil
  end
  local kind, id, n, rest = buf:sub(pos, nl - 1):match("^(%a+) (%d+) (%d+) ?([%d ]*)$")
  if not kind then
    error(("not a tide worker: %q"):format(buf:sub(pos, math.min(nl - 1, pos + 79))), 0)
  end
  n = tonumber(n)
  local lens, total = {}, 0
  for l in rest:gmatch("%d+") do
    lens[#lens + 1] = tonumber(l)
    total = total + lens[#lens]
  end
  if #lens ~= n then
    error(("not a tide worker: bad frame header %q"):format(buf:sub(pos, nl - 1)), 0)
  end
  if #buf - nl < total then
    return nil
  end
  local strs, at = {}, nl + 1
  for i = 1, n do
    strs[i] = buf:sub(at, at + lens[i] - 1)
    at = at + lens[i]
  end
  self.pos = at
  if at > #buf then
    self.buf, self.pos = "", 1
  end
  return kind, tonumber(id), strs
end

return M
