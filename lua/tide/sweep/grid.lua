-- grid.lua: product (every combination, GNU parallel's `::: a ::: b`),
-- grid (the same over named lists) and zip (lists in lockstep, parallel's
-- --link), all lazy: the combinations are made as they are pulled.
local seq = require("tide.sweep.seq")
local util = require("tide.util")

local M = {}

local MAXINT = math.maxinteger

-- A single argument that is a plain array whose first element is itself a
-- list is the lists in one table: product{a, b}, zip{a, b, cycle = true}.
-- (A product or zip of one list of lists would be pointless.)
local function table_form(...)
  if select("#", ...) ~= 1 then
    return false
  end
  local t = ...
  if type(t) ~= "table" or seq.is_seq(t) or util.callable(t) then
    return false
  end
  local first = t[1]
  return type(first) == "table" or type(first) == "function" or t.cycle ~= nil
end

local function sorted_keys(t, fname)
  local keys = {}
  for k in pairs(t) do
    if type(k) ~= "string" then
      error(("bad argument #1 to '%s' (a table of named lists has only string keys, got %s key %s)")
        :format(fname, type(k), tostring(k)), 4)
    end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  return keys
end

-- A grid value: a list (array, sequence, iterator function) or a fixed
-- value (string, number, boolean), which is a list of one.
local function value_source(v, name, fname)
  local tv = type(v)
  if tv == "string" or tv == "number" or tv == "boolean" then
    return seq.source({ v })
  end
  local src, why = seq.source(v)
  if not src then
    local mt = getmetatable(v)
    if type(mt) == "table" and mt.__name == "tide.distribution" then
      why = "a distribution (random_grid and latin_hypercube draw from those)"
    elseif seq.is_named(v) then
      why = "a table with no array part (wrap a fixed table value as {value})"
    end
    error(("bad argument #1 to '%s' (list '%s': %s)"):format(fname, name, why), 4)
  end
  return src
end

-- The length of a product, nil if unknown or past the largest integer.
local function product_len(srcs)
  local total = 1
  for k = 1, #srcs do
    local l = seq.len(srcs[k])
    if l == nil then
      return nil
    elseif l == 0 then
      return 0
    elseif total > MAXINT // l then
      total = nil -- too many, unless a later list is empty
    elseif total then
      total = total * l
    end
  end
  return total
end

-- Every combination of srcs, the last varying fastest, as an odometer.
-- names: item k goes in item[names[k]] instead of item[k].
local function cartesian(srcs, names)
  local m = #srcs
  -- The lists are walked again for every turn of the lists before them;
  -- one-shot iterators keep their items (the inputs', not the product's).
  local all_at = true
  for k = 1, m do
    srcs[k] = seq.replayable(srcs[k])
    all_at = all_at and srcs[k]._at ~= nil
  end
  local function make(cur)
    local item = {}
    for k = 1, m do
      item[names and names[k] or k] = cur[k]
    end
    return item
  end
  local function iter()
    local its, cur, state = {}, {}, "first"
    local function restart(from)
      for k = from, m do
        its[k] = srcs[k]._iter()
        cur[k] = its[k]()
        if cur[k] == nil then
          state = "done"
          return false
        end
      end
      return true
    end
    return function()
      if state == "done" then
        return nil
      elseif state == "first" then
        state = "next"
        if m == 0 then
          state = "done" -- the product of no lists: one empty combination
          return {}
        end
        return restart(1) and make(cur) or nil
      end
      local k = m
      while k >= 1 do
        local v = its[k]()
        if v ~= nil then
          cur[k] = v
          break
        end
        k = k - 1
      end
      if k == 0 then
        state = "done"
        return nil
      end
      return restart(k + 1) and make(cur) or nil
    end
  end
  local function len()
    return product_len(srcs)
  end
  local at
  if all_at then
    -- mixed radix, the last list the least significant digit
    at = function(i)
      local cur, rest = {}, i - 1
      for k = m, 1, -1 do
        local l = seq.len(srcs[k])
        cur[k] = srcs[k]._at(rest % l + 1)
        rest = rest // l
      end
      return make(cur)
    end
  end
  return seq.new(iter, len, at)
end

-- grid{name = list, ...}: items {name = value, ...}; names in sorted
-- order, the first varying slowest.
local function named(t, fname)
  local names = sorted_keys(t, fname)
  local srcs = {}
  for k, name in ipairs(names) do
    srcs[k] = value_source(t[name], name, fname)
  end
  return cartesian(srcs, names)
end

-- grid{{name, list}, ...}: the same, in the order given (a Lua table's
-- keys have none), the first pair varying slowest.  nil if t is not an
-- array of such pairs.
local function pairs_form(t)
  local n = #t
  if n == 0 or seq.is_seq(t) or util.callable(t) then
    return nil
  end
  local names, srcs, seen = {}, {}, {}
  for k = 1, n do
    local p = t[k]
    if type(p) ~= "table" or type(p[1]) ~= "string" or p[3] ~= nil then
      return nil
    end
    if seen[p[1]] then
      error(("bad argument #1 to 'grid' (parameter '%s' is given twice)"):format(p[1]), 3)
    end
    seen[p[1]] = true
    names[k], srcs[k] = p[1], value_source(p[2], p[1], "grid")
  end
  return cartesian(srcs, names)
end

function M.grid(t)
  local g = type(t) == "table" and pairs_form(t)
  if g then
    return g
  end
  if type(t) ~= "table" or seq.is_seq(t) or (next(t) ~= nil and not seq.is_named(t)) then
    error(("bad argument #1 to 'grid' (table of named lists or array of {name, list} pairs expected, got %s)")
      :format(type(t) == "table" and "an array or a sequence" or type(t)), 2)
  end
  g = named(t, "grid") -- not a tail call: errors blame our caller
  return g
end

function M.product(...)
  local n = select("#", ...)
  if n == 1 and seq.is_named((...)) then
    local g = named((...), "product") -- not a tail call: errors blame our caller
    return g
  end
  local srcs = {}
  if table_form(...) then
    local t = ...
    for k = 1, #t do
      srcs[k] = seq.check(t[k], "product", 1)
    end
  else
    for k = 1, n do
      srcs[k] = seq.check((select(k, ...)), "product", k)
    end
  end
  return cartesian(srcs)
end

-- zip(a, b, ...) or zip{a, b, ..., cycle = true}
function M.zip(...)
  local srcs, cycle = {}, false
  if table_form(...) then
    local t = ...
    for k, v in pairs(t) do
      if k == "cycle" then
        if type(v) ~= "boolean" then
          error(("bad argument #1 to 'zip' (option 'cycle' must be a boolean, got %s)"):format(type(v)), 2)
        end
        cycle = v
      elseif math.type(k) ~= "integer" or k < 1 or k > #t then
        error(("bad argument #1 to 'zip' (unknown option '%s')"):format(tostring(k)), 2)
      end
    end
    for k = 1, #t do
      srcs[k] = seq.check(t[k], "zip", 1)
    end
  else
    for k = 1, select("#", ...) do
      srcs[k] = seq.check((select(k, ...)), "zip", k)
    end
  end
  local m = #srcs
  if cycle then
    for k = 1, m do
      srcs[k] = seq.replayable(srcs[k])
    end
  end

  local function iter()
    local its, wrapped, done = {}, {}, m == 0
    for k = 1, m do
      its[k] = srcs[k]._iter()
    end
    local nwrapped = 0
    return function()
      if done then
        return nil
      end
      local item = {}
      for k = 1, m do
        local v = its[k]()
        if v == nil and cycle then
          -- the longest list has ended once every list has
          if not wrapped[k] then
            wrapped[k] = true
            nwrapped = nwrapped + 1
          end
          if nwrapped < m then
            its[k] = srcs[k]._iter()
            v = its[k]()
          end
        end
        if v == nil then
          done = true
          return nil
        end
        item[k] = v
      end
      return item
    end
  end

  local function len()
    local best
    for k = 1, m do
      local l = seq.len(srcs[k])
      if l == 0 then
        return 0
      elseif l == nil then
        best = false
      elseif best ~= false then
        if cycle then
          best = math.max(best or 0, l)
        else
          best = math.min(best or l, l)
        end
      end
    end
    if best == false then
      return nil
    end
    return best or 0
  end
  local at = function(i)
    local item = {}
    for k = 1, m do
      local j = i
      if cycle then
        j = (i - 1) % seq.len(srcs[k]) + 1
      end
      item[k] = srcs[k]._at(j)
    end
    return item
  end
  for k = 1, m do
    if not srcs[k]._at then
      at = nil
    end
  end
  return seq.new(iter, len, at)
end

return M
