-- cli/pipe.lua: --pipe, chunks of tide's stdin for jobs' stdin.
--
-- The chunks are cut as GNU parallel 20221122 cuts them (spreadstdin), so
-- that the same input gives the same jobs: stdin is read a --block at a
-- time (topping the buffer up to the next multiple of the block size);
-- with -N n, each run of n whole records in the buffer is a chunk; else,
-- unless that read reached the end of input, the buffer up to its last
-- record boundary is one.  A boundary is where --recend is followed by
-- --recstart; the cut falls between the two.  A read after which nothing
-- was cut grows the block.  Whatever is left at the end of input is the
-- last chunk; empty input gives none (no job runs).
--
-- Chunks are read as the pool asks for the next job, so tide holds at
-- most one buffer plus the chunks of the jobs running.
local M = {}

local TWO_GB = 2147483647 -- GNU parallel's largest block

-- The nth boundary in buf at or after from + 1 (GNU's nindex searches
-- from offset 1: a boundary at the very start of the buffer is not
-- counted), or nil.
local function nth(buf, from, sep, n)
  local pos = from
  for _ = 1, n do
    pos = buf:find(sep, pos + 1, true)
    if not pos then
      return nil
    end
  end
  return pos
end

-- The last boundary in buf, or nil: searched for in a window at the end
-- that grows until it holds one (a record is usually far shorter than a
-- block, so this costs about a record, not a block).  One that starts
-- before the window is found once the window holds it, and any found in
-- the window starts after it.
local function last(buf, sep)
  local w = 4096
  while true do
    local pos = math.max(1, #buf - w + 1)
    local start, found = pos, nil
    while true do
      local a = buf:find(sep, pos, true)
      if not a then
        break
      end
      found, pos = a, a + 1
    end
    if found or start == 1 then
      return found
    end
    w = w * 4
  end
end

-- An iterator of chunks read from f (a file handle).  block: bytes per
-- read; per: records per chunk (-N), or nil for --block chunks; recstart
-- and recend: the record separators (strings, either may be "");
-- warn(msg): told when a record longer than the block makes it grow.
function M.chunks(f, block, per, recstart, recend, warn)
  local sep = recend .. recstart
  -- the unread part of the buffer is buf:sub(from): taking a chunk moves
  -- from, so that -N 1 over a large block copies each byte once
  local buf, from, eof, done = "", 1, false, false
  -- a round is one read and the chunks cut after it; -N cuts several
  local cutting, written = false, false

  local function read_block()
    local have = #buf - from + 1
    local want = block - have % block
    local more, err = f:read(want)
    if err then -- never a silent end of input
      error(("--pipe: cannot read stdin: %s"):format(err), 0)
    end
    if from > #buf then
      buf = more or ""
    else
      buf = buf:sub(from) .. (more or "")
    end
    from = 1
    -- Chunks live as long as their jobs, long enough for the generational
    -- collector to make them old, and old garbage waits for a major
    -- collection, when the heap has doubled: with big blocks, collect
    -- now (the heap is then little more than the live chunks; a full
    -- collection costs little next to reading a block that size).
    if block >= 262144 then
      collectgarbage()
    end
    -- fread returns short only at the end of input
    if more == nil or #more < want then
      eof = true
    end
  end

  -- The next n bytes as a chunk; nil for none (GNU writes nothing then).
  local function take(n)
    if n <= 0 then
      return nil
    end
    local chunk = buf:sub(from, from + n - 1)
    from = from + n
    written = true
    return chunk
  end

  -- The end of a round: at the end of input, what is left is the last
  -- chunk; a round that cut nothing grows the block (by GNU's formula),
  -- as a record may be longer than it.
  local function round_end()
    if eof then
      done = true
      return take(#buf - from + 1)
    end
    if not written and block < TWO_GB then
      local old = block
      block = math.min(math.ceil(block * 1.3 + 1), TWO_GB)
      if warn then
        warn(("a record was longer than %d bytes: --block grows to %d"):format(old, block))
      end
    end
  end

  return function()
    while not done do
      if cutting then
        local at = #buf >= from and nth(buf, from, sep, per)
        if at then
          return take(at - from + #recend)
        end
        cutting = false
        local rest = round_end()
        if rest then
          return rest
        end
      else
        written = false
        read_block()
        if per then
          cutting = true
        elseif not eof then
          local at = last(buf, sep)
          local chunk = at and take(at - 1 + #recend)
          round_end()
          if chunk then
            return chunk
          end
        else
          local rest = round_end()
          if rest then
            return rest
          end
        end
      end
    end
  end
end

return M
