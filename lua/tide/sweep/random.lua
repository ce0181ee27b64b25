-- random.lua: random search.  sample(seq, k [, seed]) draws items from a
-- sequence; uniform, loguniform and choice are parameter distributions;
-- random_grid and latin_hypercube draw parameter tables from them.
--
-- The generator is private (xoshiro256** over Lua's 64-bit integers, seeded
-- by splitmix64), so the same seed gives the same draws on every machine and
-- Lua 5.4 release, and math.random's state, which the script may rely on,
-- is never touched.
local seq = require("tide.sweep.seq")

local M = {}

----------------------------------------------------------------------------
-- The generator

local Rng = {}
Rng.__index = Rng

local function rotl(x, n)
  return (x << n) | (x >> (64 - n))
end

-- splitmix64: spreads a seed over the state, as xoshiro's authors advise.
local function splitmix(x)
  x = x + 0x9e3779b97f4a7c15
  local z = x
  z = (z ~ (z >> 30)) * 0xbf58476d1ce4e5b9
  z = (z ~ (z >> 27)) * 0x94d049bb133111eb
  return x, z ~ (z >> 31)
end

local function new_rng(seed)
  local s, x = {}, seed
  for i = 1, 4 do
    x, s[i] = splitmix(x)
  end
  return setmetatable(s, Rng)
end

-- A 64-bit integer (any sign).
function Rng:next()
  local s0, s1, s2, s3 = self[1], self[2], self[3], self[4]
  local result = rotl(s1 * 5, 7) * 9
  local t = s1 << 17
  s2 = s2 ~ s0
  s3 = s3 ~ s1
  s1 = s1 ~ s2
  s0 = s0 ~ s3
  s2 = s2 ~ t
  s3 = rotl(s3, 45)
  self[1], self[2], self[3], self[4] = s0, s1, s2, s3
  return result
end

-- A float in [0, 1) with 53 random bits.
function Rng:float()
  return (self:next() >> 11) * 0x1.0p-53
end

-- An integer in [1, n], unbiased: draws under a power-of-two mask until
-- one fits.
function Rng:int(n)
  local lim = n - 1
  local mask = lim
  for shift = 0, 5 do
    mask = mask | (mask >> (1 << shift))
  end
  while true do
    local r = self:next() & mask
    if r <= lim then
      return r + 1
    end
  end
end

-- FNV-1a: a name's own stream, so that adding a parameter to a spec does
-- not change the values drawn for the others.
local function hash(s)
  local h = 0xcbf29ce484222325
  for i = 1, #s do
    h = (h ~ s:byte(i)) * 0x100000001b3
  end
  return h
end

-- A seed for a script that gave none: different on every run.
local function fresh_seed()
  local f = io.open("/dev/urandom", "rb")
  if f then
    local bytes = f:read(8)
    f:close()
    if bytes and #bytes == 8 then
      return (string.unpack("<i8", bytes))
    end
  end
  return math.floor(os.time() * 1000 + os.clock() * 1e6) ~ hash(tostring({}))
end

local function check_seed(seed, fname, argn)
  if seed == nil then
    return fresh_seed()
  end
  if math.type(seed) == "float" and seed == math.floor(seed) and math.abs(seed) < 2 ^ 63 then
    seed = math.tointeger(seed)
  end
  if math.type(seed) ~= "integer" then
    error(("bad argument #%d to '%s' (seed must be an integer, got %s)")
      :format(argn, fname, type(seed) == "number" and tostring(seed) or type(seed)), 3)
  end
  return seed
end

----------------------------------------------------------------------------
-- sample(seq, k [, seed])

-- k distinct indices of 1..n in increasing order (Floyd's algorithm: k
-- draws and O(k) memory, whatever n).
local function pick_indices(rng, n, k)
  local chosen, list = {}, {}
  for j = n - k + 1, n do
    local t = rng:int(j)
    if chosen[t] then
      t = j
    end
    chosen[t] = true
    list[#list + 1] = t
  end
  table.sort(list)
  return list
end

-- k items in input order: by index when the sequence knows its length and
-- items (a product of lists: no pass over its items), else by reservoir
-- sampling over one pass, holding k items.  Fewer than k items: all.
function M.sample(s, k, seed)
  local src = seq.check(s, "sample", 1)
  k = seq.check_count(k, "sample", 2, "k")
  seed = check_seed(seed, "sample", 3)
  return seq.new(function()
    local rng = new_rng(seed)
    local n = src._at and seq.len(src)
    if n then
      local idx, i = pick_indices(rng, n, math.min(k, n)), 0
      return function()
        i = i + 1
        if idx[i] then
          return src._at(idx[i])
        end
      end
    end
    local keep, seen, i = {}, 0, 0
    for v in src._iter() do
      seen = seen + 1
      if seen <= k then
        keep[seen] = { seen, v }
      else
        local j = rng:int(seen)
        if j <= k then
          keep[j] = { seen, v }
        end
      end
    end
    table.sort(keep, function(a, b)
      return a[1] < b[1]
    end)
    return function()
      i = i + 1
      return keep[i] and keep[i][2]
    end
  end, function()
    local l = seq.len(src)
    return l and math.min(l, k)
  end, nil, src.oneshot)
end

----------------------------------------------------------------------------
-- Distributions.  Each maps u, uniform in [0, 1), to a value: random_grid
-- gives it random u, latin_hypercube stratified u.

local Dist = { __name = "tide.distribution" }
Dist.__index = Dist

local function is_dist(x)
  return getmetatable(x) == Dist
end

local function check_bounds(a, b, fname)
  for n, x in ipairs({ a, b }) do
    if type(x) ~= "number" or x ~= x or math.abs(x) == math.huge then
      error(("bad argument #%d to '%s' (finite number expected, got %s)")
        :format(n, fname, type(x) == "number" and tostring(x) or type(x)), 3)
    end
  end
  if a > b then
    error(("bad argument #2 to '%s' (upper bound %s is below lower bound %s)")
      :format(fname, tostring(b), tostring(a)), 3)
  end
end

-- A float in [a, b).
function M.uniform(a, b)
  check_bounds(a, b, "uniform")
  return setmetatable({ at = function(u)
    return a + (b - a) * u
  end }, Dist)
end

-- A float in [a, b) whose logarithm is uniform: learning rates, weight
-- decays, anything spanning orders of magnitude.
function M.loguniform(a, b)
  check_bounds(a, b, "loguniform")
  if a <= 0 then
    error(("bad argument #1 to 'loguniform' (bounds must be above 0, got %s)"):format(tostring(a)), 2)
  end
  local la, lb = math.log(a), math.log(b)
  return setmetatable({ at = function(u)
    return math.exp(la + (lb - la) * u)
  end }, Dist)
end

-- One of the values, each as likely (a value listed twice is twice as
-- likely).  Takes an array or a sequence.
function M.choice(values)
  local src = seq.check(values, "choice", 1)
  local list = {}
  for v in src._iter() do
    list[#list + 1] = v
  end
  if #list == 0 then
    error("bad argument #1 to 'choice' (no values to choose from)", 2)
  end
  local n = #list
  return setmetatable({ at = function(u)
    return list[math.min(n, math.floor(u * n) + 1)]
  end }, Dist)
end

----------------------------------------------------------------------------
-- random_grid(spec, n [, seed]) and latin_hypercube(spec, n [, seed])

-- spec: name -> distribution, or a fixed value copied into every item.
local function check_spec(spec, fname)
  if type(spec) ~= "table" or seq.is_seq(spec) or (next(spec) ~= nil and spec[1] ~= nil) then
    error(("bad argument #1 to '%s' (table of name = distribution or value expected, got %s)")
      :format(fname, type(spec) == "table" and "an array or a sequence" or type(spec)), 3)
  end
  local names = {}
  for k in pairs(spec) do
    if type(k) ~= "string" then
      error(("bad argument #1 to '%s' (names must be strings, got %s)"):format(fname, type(k)), 3)
    end
    if seq.is_seq(spec[k]) then
      error(("bad argument #1 to '%s' (%s is a sequence: wrap it in choice() to draw from it)")
        :format(fname, k), 3)
    end
    names[#names + 1] = k
  end
  table.sort(names)
  return names
end

-- n parameter tables, made by draw(rngs, i) where rngs[name] is that
-- parameter's own generator; prepare(rngs) runs once per pass.
local function param_seq(spec, names, n, seed, draw, prepare)
  return seq.new(function()
    local rngs = {}
    for _, name in ipairs(names) do
      if is_dist(spec[name]) then
        rngs[name] = new_rng(seed ~ hash(name))
      end
    end
    local state = prepare and prepare(rngs)
    local i = 0
    return function()
      if i >= n then
        return nil
      end
      i = i + 1
      local item = {}
      for _, name in ipairs(names) do
        local d = spec[name]
        if is_dist(d) then
          item[name] = d.at(draw(rngs[name], name, i, state))
        else
          item[name] = d
        end
      end
      return item
    end
  end, function()
    return n
  end)
end

-- Each parameter drawn independently.
function M.random_grid(spec, n, seed)
  local names = check_spec(spec, "random_grid")
  n = seq.check_count(n, "random_grid", 2, "n")
  seed = check_seed(seed, "random_grid", 3)
  return param_seq(spec, names, n, seed, function(rng)
    return rng:float()
  end)
end

-- Latin hypercube: each parameter's range is cut into n equal strata (in
-- u) and every stratum is used exactly once, in a random order per
-- parameter, at a random point within it.  Holds n numbers per parameter.
function M.latin_hypercube(spec, n, seed)
  local names = check_spec(spec, "latin_hypercube")
  n = seq.check_count(n, "latin_hypercube", 2, "n")
  seed = check_seed(seed, "latin_hypercube", 3)
  return param_seq(spec, names, n, seed, function(rng, name, i, perms)
    return (perms[name][i] - 1 + rng:float()) / n
  end, function(rngs)
    local perms = {}
    for name, rng in pairs(rngs) do
      local p = {}
      for i = 1, n do
        p[i] = i
      end
      for i = n, 2, -1 do -- Fisher-Yates
        local j = rng:int(i)
        p[i], p[j] = p[j], p[i]
      end
      perms[name] = p
    end
    return perms
  end)
end

M.new_rng = new_rng -- for the specs, which pin its output
return M
