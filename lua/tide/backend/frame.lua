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

local core = require("tide.core")

local concat = table.concat
local unframe = core.unframe

-- The bytes of one frame carrying the strings list[1..n] (n defaults to
-- #list; numbers go as tostring writes them): core.frame.
M.encode = core.frame

-- The frame at buf[pos..]: kind, id, strings (a list), the position after
-- it; or nil and how many bytes from pos the frame needs (nil while its
-- header is not whole).  A malformed header raises: the far end is not a
-- tide worker.
local function parse(buf, pos)
  local kind, id, strs, at = unframe(buf, pos)
  if kind == false then
    local nl = buf:find("\n", pos, true)
    if id == "count" then
      error(("not a tide worker: bad frame header %q"):format(buf:sub(pos, nl - 1)), 0)
    end
    error(("not a tide worker: %q"):format(buf:sub(pos, math.min((nl or #buf + 1) - 1, pos + 79))), 0)
  end
  return kind, id, strs, at
end

-- A reader of frames out of a byte stream: r:push(bytes), then
-- r:next() -> kind, id, strings (a list), or nil until a whole frame came.
--
-- What came and was not read yet is buf[pos..] and then the chunks pushed
-- since: they are joined only when a frame's header is wanted or its
-- whole body is there, so a big frame arriving in many reads is copied
-- once, not once a read.
local Reader = {}
Reader.__index = Reader

function M.reader()
  return setmetatable({ buf = "", pos = 1, chunks = {}, nchunks = 0, avail = 0, need = nil }, Reader)
end

function Reader:push(bytes)
  if bytes ~= "" then
    local n = self.nchunks + 1
    self.chunks[n], self.nchunks, self.avail = bytes, n, self.avail + #bytes
  end
end

-- (`..` of two strings copies once; table.concat copies twice, into its
-- buffer and out of it.)
local function join(self)
  local chunks, n = self.chunks, self.nchunks
  local rest = self.pos <= #self.buf and self.buf:sub(self.pos)
  if not rest and n == 1 then
    self.buf = chunks[1] -- the usual case: nothing left over, one read
  elseif rest and n == 1 then
    self.buf = rest .. chunks[1]
  else
    if rest then
      table.insert(chunks, 1, rest)
      n = n + 1
    end
    self.buf = concat(chunks, "", 1, n)
  end
  self.pos, self.nchunks = 1, 0
  for i = n, 1, -1 do
    chunks[i] = nil
  end
end

function Reader:next()
  local need = self.need
  if need and self.avail < need then
    return nil -- the frame whose header was read is not whole yet
  end
  if self.nchunks > 0 and (need or not self.buf:find("\n", self.pos, true)) then
    join(self)
  end
  local kind, id, strs, at = parse(self.buf, self.pos)
  if not kind and id and self.avail >= id then -- whole, its end among the chunks
    join(self)
    kind, id, strs, at = parse(self.buf, self.pos)
  end
  if not kind then
    self.need = id
    return nil
  end
  self.need, self.avail = nil, self.avail - (at - self.pos)
  if at > #self.buf then
    self.buf, self.pos = "", 1
  else
    self.pos = at
  end
  return kind, id, strs
end

return M
