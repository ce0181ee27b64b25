-- resources.lua: resource slots with identities.  A pool given
-- resources = {gpu = {0, 1, 2, 3}} hands each job that asks for some
-- (gpu = 1, a job option) ids no running job holds, tells the job which in
-- its environment (CUDA_VISIBLE_DEVICES=2 and TIDE_GPU=2), and takes them
-- back when the job's attempt ends, however it ends.  A job whose ids are
-- not free waits in its task, so the loop and every other job go on.
--
-- The ids are labels: nothing here looks at a device.  A fraction (gpu =
-- 0.5) shares one id with other fractional jobs while their fractions add
-- up to at most 1.  Requests are served in the order they came: a job that
-- needs 4 ids is not overtaken forever by jobs that need 1.
--
-- An allocator (M.new) is a plain value: the pool holds one for its local
-- jobs, and a launcher (backend/) holds one per host or node (M.place),
-- with that place's own ids, and chooses the place by what is free there.
local sched = require("tide.run.sched")
local util = require("tide.util")

local M = {}

local describe = util.describe

-- The variables set to a resource's ids besides TIDE_<NAME>, unless the
-- pool names its own (env = {...}).
local DEFAULT_ENV = { gpu = { "CUDA_VISIBLE_DEVICES" } }

-- Fractions are added and taken away again: a sum within this of 1 fits.
local EPS = 1e-9

local VAR = "^[%a_][%w_]*$"

local EXAMPLE = "such as {0, 1} or {ids = {0, 1}, env = {'ROCR_VISIBLE_DEVICES'}}"

-- An id as the environment shows it: 0 and 0.0 are "0".
local function id_string(v)
  if type(v) == "number" then
    local i = math.tointeger(v)
    if i then
      return tostring(i)
    elseif v == v and v > -math.huge and v < math.huge then
      return tostring(v)
    end
  elseif type(v) == "string" and v ~= "" and not v:find("[,%z]") then
    return v
  end
end

-- Checks a whole list (keys 1..n, nothing else); its length or nil.
local function list_length(t)
  if type(t) ~= "table" then
    return nil
  end
  local n = #t
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then
      return nil
    end
  end
  return n
end

-- A list of ids, checked: the strings the environment will show, or nil
-- and why.  what: how the messages name the list.
local function id_list(what, ids)
  local n = list_length(ids)
  if not n then
    return nil, ("%s must be a list of ids %s, got %s"):format(what, EXAMPLE, describe(ids))
  elseif n == 0 then
    return nil, ("%s has no ids (give a list such as {0, 1})"):format(what)
  end
  local list, seen = {}, {}
  for i = 1, n do
    local id = id_string(ids[i])
    if not id then
      return nil, ("%s: id #%d must be a number or a non-empty string without a comma, got %s")
        :format(what, i, describe(ids[i]))
    elseif seen[id] then
      return nil, ("%s: id '%s' is given twice"):format(what, id)
    end
    list[i], seen[id] = id, true
  end
  return list
end

-- One resource from the pool option's value for name; nil and why.
local function kind(name, v)
  local ids, env = v, DEFAULT_ENV[name] or {}
  local hosts
  if type(v) == "table" and v.ids ~= nil then
    for k in pairs(v) do
      if k ~= "ids" and k ~= "env" and k ~= "hosts" then
        return nil, ("%s has an unknown field %s (ids, env and hosts expected)"):format(name, describe(k))
      end
    end
    if v.hosts ~= nil then
      if type(v.hosts) ~= "table" or next(v.hosts) == nil then
        return nil, ("%s.hosts must be a table of a host's or node's own ids such as {node2 = {0, 1}}, got %s")
          :format(name, describe(v.hosts))
      end
      hosts = {}
      for host, list in pairs(v.hosts) do
        if type(host) ~= "string" or host == "" then
          return nil, ("%s.hosts: %s is not a host name"):format(name, describe(host))
        end
        local why
        hosts[host], why = id_list(("%s.hosts['%s']"):format(name, host), list)
        if not hosts[host] then
          return nil, why
        end
      end
    end
    ids = v.ids
    if v.env ~= nil then
      env = v.env
      local n = list_length(env)
      if not n then
        return nil, ("%s.env must be a list of variable names such as {'ROCR_VISIBLE_DEVICES'}, got %s")
          :format(name, describe(env))
      end
      for i = 1, n do
        if type(env[i]) ~= "string" or not env[i]:find(VAR) then
          return nil, ("%s.env[%d] must be a variable name, got %s"):format(name, i, describe(env[i]))
        end
      end
    end
  end
  local list, why = id_list(name, ids)
  if not list then
    return nil, why
  end
  local r = { name = name, hosts = hosts, vars = { "TIDE_" .. name:upper() } }
  for i = 1, #env do
    r.vars[#r.vars + 1] = env[i]
  end
  -- the most ids any one place has: the largest count a job may ask for
  r.most = #list
  for _, l in pairs(hosts or {}) do
    r.most = math.max(r.most, #l)
  end
  return r, list
end

-- r's free ids: list, each whole and held by no one.
local function fill(r, list)
  r.ids, r.cap, r.holders = list, {}, {}
  for _, id in ipairs(list) do
    r.cap[id], r.holders[id] = 1, 0
  end
  return r
end

-- An allocator from the value of a pool's resources option: {name = ids or
-- {ids = ids, env = {variable names}}}.  taken(name) says whether name is
-- already an option's (a count is given as name = n, like any option).
-- Returns it, or nil and what is wrong.
function M.new(spec, taken)
  if type(spec) ~= "table" or next(spec) == nil then
    return nil, ("option 'resources' must be a table of resources such as {gpu = {0, 1}}, got %s")
      :format(describe(spec))
  end
  local set = { names = {}, kind = {}, queue = {} }
  local vars = {}
  for name, v in pairs(spec) do
    if type(name) ~= "string" or not name:find(VAR) then
      return nil, ("option 'resources': %s is not a resource name (a name such as gpu expected)")
        :format(describe(name))
    elseif taken(name) then
      return nil, ("option 'resources': '%s' is the name of an option, not a resource name"):format(name)
    end
    local r, list = kind(name, v)
    if not r then
      return nil, "option 'resources': " .. list
    end
    fill(r, list)
    local var = r.vars[1]
    if vars[var] then
      return nil, ("option 'resources': %s and %s would both set %s"):format(vars[var], name, var)
    end
    vars[var] = name
    set.kind[name] = r
    set.names[#set.names + 1] = name
  end
  table.sort(set.names)
  return set
end

-- The normalized count of a job option naming one of set's resources:
-- a whole number up to the number of ids, or a fraction below 1 (0: none);
-- false turns a pool's or map's count off.  nil and a message otherwise.
function M.count(set, name, v)
  if v == false then
    return false
  end
  local r = set.kind[name]
  local n = r.most
  if type(v) == "number" and v >= 0 and (v < 1 or (v == math.floor(v) and v <= n)) then
    return math.tointeger(v) or v
  elseif type(v) == "number" and v == math.floor(v) and v > n and v < 2 ^ 53 then
    if r.hosts then
      return nil, ("option '%s' asks for %s ids but no host has more than %d"):format(name, describe(v), n)
    end
    return nil, ("option '%s' asks for %s ids but the pool has %d (%s)")
      :format(name, describe(v), n, table.concat(r.ids, ", "))
  end
  return nil, ("option '%s' must be a number of ids: a whole number up to %d, or a fraction below 1 to "
    .. "share one, got %s"):format(name, n, describe(v))
end

-- What a job with options pol asks of set: {name = count}, or nil.
function M.need(set, pol)
  local need
  for _, name in ipairs(set.names) do
    local c = pol[name]
    if c and c > 0 then
      need = need or {}
      need[name] = c
    end
  end
  return need
end

-- The ids r would give for count c, in list order (a fraction: the id
-- with the least room that still fits, so fractions pack together); nil
-- if they are not free.
local function pick(r, c)
  local cap = r.cap
  if c < 1 then
    local best
    for _, id in ipairs(r.ids) do
      if cap[id] >= c - EPS and (not best or cap[id] < cap[best]) then
        best = id
      end
    end
    return best and { best }
  end
  local got = {}
  for _, id in ipairs(r.ids) do
    if cap[id] == 1 then
      got[#got + 1] = id
      if #got == c then
        return got
      end
    end
  end
end

-- Takes what need asks for, if all of it is free: a grant, or nil.
local function take(set, need)
  local picks = {}
  for name, c in pairs(need) do
    picks[name] = pick(set.kind[name], c)
    if not picks[name] then
      return nil
    end
  end
  for name, ids in pairs(picks) do
    local r, c = set.kind[name], need[name]
    local part = c < 1 and c or 1
    for _, id in ipairs(ids) do
      r.cap[id] = r.cap[id] - part
      r.holders[id] = r.holders[id] + 1
    end
  end
  return { set = set, need = need, ids = picks }
end

-- Grants what fits, from the head of the queue.
local function serve(set)
  local q = set.queue
  while q[1] do
    local req = q[1]
    local g = take(set, req.need)
    if not g then
      return
    end
    table.remove(q, 1)
    req.holder.grant = g
    sched.complete(req)
  end
end

-- Whether set could ever give need (it has enough ids): true, or false
-- and why.
function M.could(set, need)
  for name, c in pairs(need) do
    local n = #set.kind[name].ids
    if n < c then
      return false, ("%d '%s' ids asked for, %s has %d (%s)")
        :format(c, name, set.place or "the pool", n, table.concat(set.kind[name].ids, ", "))
    end
  end
  return true
end

-- Waits in the calling task until set can give need, then gives it:
-- holder.grant is the grant from the moment it is made, so whoever closes
-- holder gives it back even when the task is cancelled before it resumes.
-- nil and why if set can never give it.
function M.acquire(set, need, holder)
  local ok, why = M.could(set, need)
  if not ok then
    return nil, why
  end
  sched.wait_turn(set.queue, { need = need, holder = holder }, function()
    serve(set)
  end)
  return holder.grant
end

-- The allocator of one place (an ssh host, a Slurm node) for a pool's
-- set: the same resources with that place's own ids.  A resource's ids
-- there are, first, what the place's environment env says, as Slurm sets
-- CUDA_VISIBLE_DEVICES for a step given GRES (env: {NAME = value}, from
-- the worker); else the ids the pool gives that place by name (gpu =
-- {ids = ..., hosts = {node2 = {0, 1}}}); else the pool's list.
-- on_release is called whenever ids come back, for the place's waiters.
function M.place(set, place, env, on_release)
  local p = { names = set.names, kind = {}, queue = {}, place = ("'%s'"):format(place), on_release = on_release }
  for name, r in pairs(set.kind) do
    local list = r.hosts and r.hosts[place] or r.ids
    for i = 2, #r.vars do
      local v = env and env[r.vars[i]]
      if v and v ~= "" then
        list = {}
        for id in v:gmatch("[^,]+") do
          list[#list + 1] = id
        end
        break
      end
    end
    p.kind[name] = fill({ name = name, vars = r.vars, most = r.most }, list)
  end
  return p
end

-- Whether need is free in set now.
function M.fits(set, need)
  for name, c in pairs(need) do
    if not pick(set.kind[name], c) then
      return false
    end
  end
  return true
end

-- For a launcher choosing among places (ssh hosts, Slurm nodes):
-- whether place could ever give want.need, why not, and whether it can
-- now.  The place's allocator is made once, by M.place with name, env and
-- on_release, and kept in place.res[want.set].  No want: any place can.
function M.judge(place, want, name, env, on_release)
  if not want then
    return true, nil, true
  end
  local r = place.res[want.set]
  if not r then
    r = M.place(want.set, name, env, on_release)
    place.res[want.set] = r
  end
  local ok, why = M.could(r, want.need)
  return ok, why, ok and M.fits(r, want.need)
end

-- Takes want.need at a place judged before, at once if it is free (the
-- launcher orders its own waiters): a grant, or nil (also for no want).
function M.take_at(place, want)
  return want and take(place.res[want.set], want.need)
end

-- Gives a grant's ids back and serves whoever waits for them.
function M.release(g)
  local set = g.set
  for name, ids in pairs(g.ids) do
    local r, c = set.kind[name], g.need[name]
    local part = c < 1 and c or 1
    for _, id in ipairs(ids) do
      local left = r.holders[id] - 1
      r.holders[id] = left
      -- the last holder gone, the id is whole again, whatever the sum says
      r.cap[id] = left == 0 and 1 or r.cap[id] + part
    end
  end
  serve(set)
  if set.on_release then
    set.on_release()
  end
end

-- The job's environment from a grant: "TIDE_GPU=0,1" and the others.
function M.env(g)
  local env = {}
  for name, ids in pairs(g.ids) do
    local list = table.concat(ids, ",")
    for _, var in ipairs(g.set.kind[name].vars) do
      env[#env + 1] = var .. "=" .. list
    end
  end
  return env
end

-- What a job was given, for its result: {gpu = {"0", "1"}}.
function M.given(g)
  local given = {}
  for name, ids in pairs(g.ids) do
    given[name] = table.move(ids, 1, #ids, 1, {})
  end
  return given
end

-- The message of an unknown option k in a job's options, when it may have
-- meant a resource: set is the pool's, if any.
function M.unknown(k, set)
  if set then
    return ("unknown option '%s' (not an option, nor one of this pool's resources: %s)")
      :format(k, table.concat(set.names, ", "))
  end
  return ("unknown option '%s' (not an option; a count of a resource needs a pool with "
    .. "resources = {%s = {ids...}})"):format(k, k)
end

return M
