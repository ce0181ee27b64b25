-- seq.lua: lazy sequences, what sweeps are made of, and the combinators
-- over them: map, filter, take, chain, enumerate, collect.
--
-- A sequence describes its items without holding them.  Each pass builds a
-- fresh iterator, so one sequence can be mapped, looped over and sampled
-- any number of times, and nothing is computed before it is pulled.  The
-- protocol p:map understands: getmetatable(s).__iter(s) returns a function
-- giving the items until nil; s() returns the same for a generic for
-- (`for x in s() do`).
--
-- Where it can, a sequence also knows its length (s._len(), shown as #s)
-- and its i-th item without a pass (s._at(i)): sample() draws k items of a
-- 10^9-item product with k look-ups instead of a billion pulls.
local util = require("tide.util")

local M = {}

local methods = {}
local Seq = { __name = "tide.seq", __index = methods }
M.Seq = Seq

function Seq.__iter(s)
  return s._iter()
end

-- `for x in s do` (no parentheses) would call s with the loop's state and
-- get a new iterator forever; the generic for always passes two arguments,
-- an explicit s() none.
function Seq.__call(s, ...)
  if select("#", ...) > 0 then
    error("a sequence is looped over as `for x in seq() do` (with the parentheses)", 2)
  end
  return s._iter()
end

function Seq.__len(s)
  local n = s._len and s._len()
  if n == nil then
    error("the length of this sequence is not known before it is iterated (use #collect(seq))", 2)
  end
  return n
end

-- iter() returns a fresh iterator; len() the number of items or nil when
-- unknown; at(i) the i-th item, given only when len() is never nil;
-- oneshot: built on an iterator function, so only the first pass sees
-- the items.
function M.new(iter, len, at, oneshot)
  return setmetatable({ _iter = iter, _len = len, _at = at, oneshot = oneshot }, Seq)
end

local callable = util.callable


-- Sequence-like: ours, or any object following the __iter protocol.
function M.is_seq(x)
  local mt = getmetatable(x)
  return type(mt) == "table" and mt.__iter ~= nil
end

-- An array table read when iterated, not copied: later changes show.
-- Honours an explicit t.n, as p:map does; a nil item is an error because
-- nil is what ends an iterator.
local function array(t)
  local function len()
    return t.n or #t
  end
  return {
    _iter = function()
      local i, n = 0, len()
      return function()
        if i < n then
          i = i + 1
          local v = t[i]
          if v == nil then
            error(("item %d of an array is nil (a sequence cannot hold nil)"):format(i), 0)
          end
          return v
        end
      end
    end,
    _len = len,
    _at = function(i)
      return t[i]
    end,
  }
end

-- A plain table with no array part but other keys: a named table.
function M.is_named(t)
  return type(t) == "table" and not M.is_seq(t) and not callable(t) and t[1] == nil
    and t.n == nil and next(t) ~= nil
end

-- What any input can be turned into: {_iter, _len, _at, oneshot}, or nil
-- and why not.  An iterator function can only be walked once.
function M.source(x)
  local mt = getmetatable(x)
  if mt == Seq then
    return x
  elseif M.is_seq(x) then
    return { _iter = function()
      return mt.__iter(x)
    end }
  elseif callable(x) then
    local done = false
    return {
      _iter = function()
        -- once it has returned nil it is never called again: io.lines
        -- iterators raise when called after the end
        return function()
          if done then
            return nil
          end
          local v = x()
          done = v == nil
          return v
        end
      end,
      oneshot = true,
    }
  elseif type(x) == "table" then
    if M.is_named(x) then
      return nil, "array, sequence or iterator function expected, got a table with no array part"
    end
    return array(x)
  end
  return nil, ("array, sequence or iterator function expected, got %s"):format(type(x))
end

-- For the public functions: check argument n of fname, blaming the caller
-- of fname (call it from fname itself).
function M.check(x, fname, n)
  local src, why = M.source(x)
  if not src then
    error(("bad argument #%d to '%s' (%s)"):format(n, fname, why), 3)
  end
  return src
end

function M.check_count(n, fname, argn, what)
  if math.type(n) == "float" and n == math.floor(n) and n >= 0 and n < 2 ^ 63 then
    n = math.tointeger(n)
  end
  if math.type(n) ~= "integer" or n < 0 then
    error(("bad argument #%d to '%s' (%s must be a whole number of at least 0, got %s)")
      :format(argn, fname, what, tostring(n)), 3)
  end
  return n
end

-- A one-shot input that must be walked several times (the lists of a
-- product, the cycled lists of zip) keeps its items as they are first
-- pulled: memory for that input's items only, never for the combinations.
function M.replayable(src)
  if not src.oneshot then
    return src
  end
  local cache, n, done = {}, 0, false
  local pull = src._iter()
  return {
    _iter = function()
      local i = 0
      return function()
        i = i + 1
        if i <= n then
          return cache[i]
        elseif done then
          return nil
        end
        local v = pull()
        if v == nil then
          done = true
          return nil
        end
        n = n + 1
        cache[n] = v
        return v
      end
    end,
    _len = function()
      return done and n or nil
    end,
  }
end

-- The length of a source, or nil.
function M.len(src)
  return src._len and src._len()
end

----------------------------------------------------------------------------
-- range(a, b [, step])

local MAXINT, MININT = math.maxinteger, math.mininteger

local function check_number(x, n)
  if type(x) ~= "number" then
    local got = x == nil and "no value" or type(x)
    error(("bad argument #%d to 'range' (number expected, got %s)"):format(n, got), 3)
  end
end

-- Integers, as a numeric for does when a and step are integers: the limit
-- is rounded toward a, and nothing overflows near the integer limits.
local function int_range(a, b, step)
  if b ~= b then -- NaN: a for loop runs zero times
    b = step > 0 and MININT or MAXINT
  elseif math.type(b) == "float" then
    if b >= 2 ^ 63 then
      b = MAXINT
    elseif b < -2 ^ 63 then
      b = MININT
    else
      b = step > 0 and math.floor(b) or math.ceil(b)
      b = math.tointeger(b)
    end
  end
  local empty = (step > 0 and a > b) or (step < 0 and a < b)
  local len
  if empty then
    len = 0
  else
    local span = step > 0 and b - a or a - b -- < 0 when it overflowed
    local per = step > 0 and step or -step
    if span >= 0 and per > 0 and span // per < MAXINT then
      len = span // per + 1
    end
  end
  local function iter()
    local v, state = a, empty and "done" or "first"
    return function()
      if state == "first" then
        state = "next"
        return v
      elseif state == "done" then
        return nil
      end
      -- stop when v + step would pass b, or when b - step wrapped around
      -- (then it certainly would)
      local lim = b - step
      if (step > 0 and (lim > b or v > lim)) or (step < 0 and (lim < b or v < lim)) then
        state = "done"
        return nil
      end
      v = v + step
      return v
    end
  end
  local function at(i)
    return a + (i - 1) * step
  end
  return M.new(iter, function()
    return len
  end, len and at)
end

-- Floats: item k is a + k*step computed afresh, not summed, so errors do
-- not accumulate; the end is kept when rounding alone puts the last step
-- past it (range(0, 0.3, 0.1) has 4 items), and is then b exactly.
local FUZZ = 1e-9

local function float_range(a, b, step)
  a, b, step = a + 0.0, b + 0.0, step + 0.0
  local q = (b - a) / step
  local last -- index of the last item, from 0; nil when endless
  if q ~= q or q < -FUZZ then
    last = -1
  elseif q ~= math.huge then
    last = math.floor(q + FUZZ)
  end
  local function at(i)
    local k = i - 1
    if k == last and math.abs(a + k * step - b) <= FUZZ * math.abs(step) then
      return b
    end
    return a + k * step
  end
  local len = last and math.tointeger(last + 1)
  return M.new(function()
    local k = 0
    return function()
      if last and k > last then
        return nil
      end
      k = k + 1
      return at(k)
    end
  end, function()
    return len
  end, len and at)
end

function M.range(a, b, step)
  check_number(a, 1)
  check_number(b, 2)
  if step == nil then
    step = 1
  end
  check_number(step, 3)
  if step == 0 then
    error("bad argument #3 to 'range' (step is zero)", 2)
  end
  if math.type(a) == "integer" and math.type(step) == "integer" then
    return int_range(a, b, step)
  end
  return float_range(a, b, step)
end

----------------------------------------------------------------------------
-- Combinators.  Each takes arrays, sequences or iterator functions.

function M.map(s, f)
  local src = M.check(s, "map", 1)
  if not callable(f) then
    error(("bad argument #2 to 'map' (function expected, got %s)"):format(type(f)), 2)
  end
  local function apply(v, i)
    local r = f(v, i)
    if r == nil then
      error(("map: the function returned nil for item %d (a sequence cannot hold nil; "
        .. "drop items with filter)"):format(i), 0)
    end
    return r
  end
  return M.new(function()
    local it, i = src._iter(), 0
    return function()
      local v = it()
      if v ~= nil then
        i = i + 1
        return apply(v, i)
      end
    end
  end, src._len, src._at and function(i)
    return apply(src._at(i), i)
  end, src.oneshot)
end

function M.filter(s, pred)
  local src = M.check(s, "filter", 1)
  if not callable(pred) then
    error(("bad argument #2 to 'filter' (function expected, got %s)"):format(type(pred)), 2)
  end
  return M.new(function()
    local it, i = src._iter(), 0
    return function()
      while true do
        local v = it()
        if v == nil then
          return nil
        end
        i = i + 1
        if pred(v, i) then
          return v
        end
      end
    end
  end, nil, nil, src.oneshot)
end

-- Pulls exactly n items, never one more: take(endless, 3) ends.
function M.take(s, n)
  local src = M.check(s, "take", 1)
  n = M.check_count(n, "take", 2, "n")
  local function len()
    local l = M.len(src)
    return l and math.min(l, n)
  end
  return M.new(function()
    local it, i = src._iter(), 0
    return function()
      if i < n then
        local v = it()
        if v ~= nil then
          i = i + 1
          return v
        end
        i = n
      end
    end
  end, len, src._at, src.oneshot)
end

function M.chain(...)
  local srcs = {}
  for k = 1, select("#", ...) do
    srcs[k] = M.check((select(k, ...)), "chain", k)
  end
  local function len()
    local total = 0
    for k = 1, #srcs do
      local l = M.len(srcs[k])
      if l == nil or total > MAXINT - l then
        return nil
      end
      total = total + l
    end
    return total
  end
  local at, oneshot = function(i)
    for j = 1, #srcs do
      local l = M.len(srcs[j])
      if i <= l then
        return srcs[j]._at(i)
      end
      i = i - l
    end
  end, false
  for k = 1, #srcs do
    if not srcs[k]._at then
      at = nil
    end
    oneshot = oneshot or srcs[k].oneshot
  end
  return M.new(function()
    local k, it = 0, nil
    return function()
      while true do
        if it then
          local v = it()
          if v ~= nil then
            return v
          end
        end
        k = k + 1
        if k > #srcs then
          it = nil
          k = #srcs
          return nil
        end
        it = srcs[k]._iter()
      end
    end
  end, len, at, oneshot)
end

-- Items {i, item}, i counting from start (default 1), as Python's.
function M.enumerate(s, start)
  local src = M.check(s, "enumerate", 1)
  if start == nil then
    start = 1
  elseif math.type(start) ~= "integer" then
    error(("bad argument #2 to 'enumerate' (integer expected, got %s)"):format(tostring(start)), 2)
  end
  return M.new(function()
    local it, i = src._iter(), start - 1
    return function()
      local v = it()
      if v ~= nil then
        i = i + 1
        return { i, v }
      end
    end
  end, src._len, src._at and function(i)
    return { start + i - 1, src._at(i) }
  end, src.oneshot)
end

function M.collect(s)
  local src = M.check(s, "collect", 1)
  local out, n = {}, 0
  for v in src._iter() do
    n = n + 1
    out[n] = v
  end
  return out
end

methods.map, methods.filter, methods.take = M.map, M.filter, M.take
methods.chain, methods.enumerate, methods.collect = M.chain, M.enumerate, M.collect

return M
