-- options.lua: the options a job may be given, in shell(cmd, {...}),
-- p:map(fn, list, {...}) or pool{...}, and how each is checked and
-- normalized: durations, sizes, percentages, halt specifications, order,
-- and which backend options go together.  Pure rules: no state, nothing
-- run; run.job, run.pool and the one-liner front end ask here.
local sshlogin = require("tide.backend.sshlogin")
local util = require("tide.util")

local M = {}

local describe, callable = util.describe, util.callable

local function finite(v)
  return type(v) == "number" and v == v and v > -math.huge and v < math.huge
end

---------------------------------------------------------------------------
-- Values: durations, sizes, percentages

local UNITS = { [""] = 1, s = 1, m = 60, h = 3600, d = 86400 }

-- A number of seconds, or a string as GNU parallel takes them: "90",
-- "1.5s", "2m", "1h30m", "1d".  nil if v is neither.
function M.duration(v)
  if type(v) == "number" then
    return finite(v) and v or nil
  elseif type(v) ~= "string" or v == "" then
    return nil
  end
  local total, pos = 0, 1
  while pos <= #v do
    local num, unit, after = v:match("^(%d*%.?%d+)([smhd]?)()", pos)
    if not num then
      return nil
    end
    total = total + tonumber(num) * UNITS[unit]
    pos = after
  end
  return total
end

-- "200%" -> 200
local function percent(v)
  if type(v) == "string" then
    local p = tonumber(v:match("^%s*(%d*%.?%d+)%s*%%%s*$"))
    if p and p > 0 then
      return p
    end
  end
end

local SIZE = { [""] = 1, k = 1e3, m = 1e6, g = 1e9, t = 1e12, p = 1e15 }
local BINARY = { K = 2 ^ 10, M = 2 ^ 20, G = 2 ^ 30, T = 2 ^ 40, P = 2 ^ 50 }

-- Bytes, from a number or a string such as "2G", "512M", "1.5Gi", "800k"
-- (GNU parallel's prefixes: K M G T P and Ki... are powers of 1024, k m g
-- t p powers of 1000; a trailing B is allowed).
function M.size(v)
  if type(v) == "number" then
    return finite(v) and v or nil
  elseif type(v) ~= "string" then
    return nil
  end
  local num, prefix, i = v:match("^%s*(%d*%.?%d+)%s*([KMGTPkmgtp]?)(i?)[Bb]?%s*$")
  if not num then
    return nil
  end
  local mult = (i == "i" and BINARY[prefix:upper()]) or BINARY[prefix] or SIZE[prefix]
  return tonumber(num) * mult
end

---------------------------------------------------------------------------
-- Job options: valid in pool{...}, p:map(fn, list, {...}) and shell(cmd, {...})

local SECONDS = "a number of seconds or a duration such as '1m30s'"

-- Validator of a non-negative duration (kill_grace, retry_delay, delay).
local function seconds(v)
  local d = M.duration(v)
  if d and d >= 0 then
    return d
  end
  return nil, SECONDS
end

-- Validator of a size in bytes (max_output, max_line); example for errors.
local function bytes(example)
  return function(v)
    local s = M.size(v)
    if s and s >= 1 and s < 2 ^ 53 then
      return math.floor(s)
    end
    return nil, "a size in bytes of at least 1, such as " .. example
  end
end

-- Each checker returns the normalized value, or nil and what was expected.
-- false turns an option off for one call (or one map) when the pool has it.
local OUTPUT_MODES = { group = true, line = true, ungroup = true, capture = true, null = true }

-- v as an integer if it is a whole number (1.0 is 1) of at least least.
local function whole_number(v, least)
  if math.type(v) == "float" and v == math.floor(v) and finite(v) then
    v = math.tointeger(v)
  end
  if math.type(v) == "integer" and v >= least then
    return v
  end
end

-- A whole number of at least 0.
local function count(v)
  local n = whole_number(v, 0)
  if n then
    return n
  end
  return nil, "a whole number of at least 0"
end

local JOB = {
  timeout = function(v)
    local p = percent(v)
    if p then
      return { pct = p }
    end
    local d = M.duration(v)
    if d and d > 0 then
      return d
    end
    return nil, "a positive number of seconds, a duration such as '1m30s', or a percentage of "
      .. "the median runtime such as '200%'"
  end,
  kill_grace = seconds,
  retries = count,
  retry_delay = seconds,
  -- the shell that runs command strings: "bash", "/bin/zsh"...
  shell = function(v)
    if type(v) == "string" and v:find("^[^%s%z]+$") then
      return v
    end
    return nil, "a shell such as 'bash' or '/bin/zsh'"
  end,
  -- the exit codes that count as success, all of them: {0, 1} for grep
  ok_codes = function(v)
    if type(v) == "table" and #v > 0 then
      local set = {}
      for i = 1, #v do
        local c = math.tointeger(v[i])
        if not c or c < 0 or c > 255 then
          return nil, "a list of exit codes from 0 to 255 such as {0, 1}"
        end
        set[c] = true
      end
      for k in pairs(v) do
        if math.type(k) ~= "integer" or k < 1 or k > #v then
          return nil, "a list of exit codes from 0 to 255 such as {0, 1}"
        end
      end
      return set
    end
    return nil, "a list of exit codes from 0 to 255 such as {0, 1}"
  end,
  backoff = function(v)
    if finite(v) and v >= 1 then
      return v
    end
    return nil, "a number of at least 1"
  end,
  retry = function(v)
    if callable(v) then
      return v
    end
    return nil, "a function (r, attempt) returning false, true or a new command"
  end,
  delay = seconds,
  max_load = function(v)
    if finite(v) and v > 0 then
      return v
    end
    return nil, "a positive number (a load average)"
  end,
  min_free = function(v)
    local s = M.size(v)
    if s and s > 0 then
      return s
    end
    return nil, "a size such as '2G' or '512M', or a number of bytes"
  end,

  -- Output (output.lua)
  output = function(v)
    if OUTPUT_MODES[v] then
      return v
    end
    return nil, "'group', 'line', 'ungroup', 'capture' or 'null'"
  end,
  tag = function(v)
    if v == true or callable(v) then
      return v
    end
    return nil, "true or a function(item, i) returning a string"
  end,
  on_line = function(v)
    if callable(v) then
      return v
    end
    return nil, "a function(line, stream, item, partial)"
  end,
  newline = function(v)
    if type(v) == "boolean" then
      return v
    end
    return nil, "a boolean"
  end,
  results = function(v)
    if type(v) == "string" and v ~= "" and not v:find("\0", 1, true) then
      return v
    end
    return nil, "a directory name"
  end,
  max_output = bytes("65536 or '10M'"),
  max_line = bytes("4096 or '1M'"),
}
-- Run bookkeeping (joblog.lua): the job log, resuming from it, dry runs.
JOB.joblog = function(v)
  if type(v) == "string" and v ~= "" then
    return v
  end
  return nil, "a file name"
end
JOB.resume = function(v)
  if v == true or v == "failed" then
    return v
  end
  return nil, "true, false or 'failed'"
end
JOB.dry_run = function(v)
  if v == true then
    return v
  end
  return nil, "a boolean"
end
-- Where jobs run: backend, hosts, ssh, slurm (backend/).
JOB.backend = function(v)
  if v == "local" or v == "ssh" or v == "slurm" then
    return v
  end
  return nil, "'local', 'ssh' or 'slurm'"
end
JOB.hosts = sshlogin.check
-- A string of words or an argv table (ssh, slurm).
local function words(what)
  return function(v)
    if type(v) == "string" and v:find("%S") then
      local list = {}
      for w in v:gmatch("%S+") do
        list[#list + 1] = w
      end
      return list
    elseif type(v) == "table" then
      for i = 1, #v do
        if type(v[i]) ~= "string" then
          return nil, what
        end
      end
      if #v > 0 or what:find("srun") then
        return v
      end
    end
    return nil, what
  end
end
JOB.ssh = words("an ssh command such as 'ssh -F my_config' or an argv table")
-- false: one ssh session or srun per job instead of a worker per host
-- or node (backend/worker.lua).
JOB.workers = function(v)
  if type(v) == "boolean" then
    return v
  end
  return nil, "a boolean"
end
-- How many times a job whose host or node is lost runs again elsewhere
-- without using up an attempt (job.lua); 0: a loss is a failed attempt.
JOB.moves = count
-- srun options, and for the allocation tide asks for outside one:
-- nodes, time, partition, account.
local SLURM_WHAT = "a list of srun options such as {'--mem=4G'}, with optional fields "
  .. "nodes, time, partition, account"
local srun_words = words(SLURM_WHAT)
JOB.slurm = function(v)
  local list, why = srun_words(v)
  if not list or type(v) ~= "table" then
    return list, why
  end
  for k, x in pairs(v) do
    if math.type(k) == "integer" then -- luacheck: ignore 542
    elseif k == "nodes" then
      if math.type(x) ~= "integer" or x < 1 then
        return nil, "a table whose field 'nodes' is a whole number of at least 1"
      end
    elseif k == "time" or k == "partition" or k == "account" then
      if type(x) ~= "string" and not (k == "time" and type(x) == "number") then
        return nil, ("a table whose field '%s' is a string"):format(k)
      end
    else
      return nil, ("%s; not '%s'"):format(SLURM_WHAT, tostring(k))
    end
  end
  return v
end

M.JOB = JOB

-- The options of shell() itself, besides the job options.
M.SHELL = {
  capture = "boolean", check = "boolean", cwd = "string", stdin = "string",
  env = "table", slots = "slots",
}


-- The order option of pools and maps: "input" or "finish"; nil and what
-- was expected otherwise.
function M.order(v)
  if v == "input" or v == "finish" then
    return v
  elseif v == false then
    return "finish"
  end
  return nil, ("option 'order' must be 'input' or 'finish', got %s"):format(describe(v))
end

-- Checks one job option: its value, or nil and "option 'k' must be ...".
function M.check(k, v)
  if v == false then
    return false
  end
  local value, want = JOB[k](v)
  if value == nil then
    return nil, ("option '%s' must be %s, got %s"):format(k, want, describe(v))
  end
  return value
end

-- The slots option: a whole number of at least 1.
function M.slots(v)
  return whole_number(v, 1)
end

---------------------------------------------------------------------------
-- Halt specifications, as GNU parallel's --halt

local WHEN = { now = true, soon = true }
local KINDS = { fail = true, success = true, done = true }

local function halt_value(kind, x)
  local p = percent(x)
  if p then
    if p > 100 then
      return nil
    end
    return { kind = kind, pct = p, text = ("%s=%g%%"):format(kind, p) }
  end
  if type(x) == "string" then
    x = tonumber(x)
  end
  if math.type(x) == "float" and x == math.floor(x) and finite(x) then
    x = math.tointeger(x)
  end
  if math.type(x) == "integer" and x >= 1 then
    return { kind = kind, count = x, text = ("%s=%d"):format(kind, x) }
  end
end

local HALT_WANT = "'now' or 'soon' and one of fail, success or done, as in 'now,fail=1', "
  .. "'soon,fail=10%' or {when = 'now', fail = 1}"

-- Returns a halt spec {when, kind, count | pct, text}, false for "never"
-- or false, or nil and what was expected.
function M.halt(v)
  if v == false or v == "never" then
    return false
  end
  local when, kind, x
  if type(v) == "string" then
    when, kind, x = v:match("^%s*(%a+)%s*,%s*(%a+)%s*=%s*([^%s]+)%s*$")
  elseif type(v) == "table" then
    when = v.when
    for k, val in pairs(v) do
      if KINDS[k] then
        if kind then
          return nil, HALT_WANT .. " (only one of fail, success, done)"
        end
        kind, x = k, val
      elseif k ~= "when" then
        return nil, HALT_WANT .. (" (unknown field %s)"):format(describe(k))
      end
    end
  end
  if not WHEN[when] or not KINDS[kind] then
    return nil, HALT_WANT
  end
  local spec = halt_value(kind, x)
  if not spec then
    return nil, ("%s, where %s is a whole number of at least 1 or a percentage up to 100%%")
      :format(HALT_WANT, kind)
  end
  spec.when = when
  spec.text = when .. "," .. spec.text
  return spec
end

---------------------------------------------------------------------------
-- Backends: which options go together

M.NO_HOSTS = "option 'backend' is 'ssh' but no 'hosts' are given (e.g. hosts = {'node1', '4/node2'})"

-- Checks that an options table's backend, hosts and slurm agree; returns
-- nil or a message for "bad argument".  whole: the table has every option
-- that applies (a pool's); a map's or a job's may inherit the rest.
function M.backend_conflict(opts, whole)
  local b = opts.backend
  if opts.hosts and (b == "local" or b == "slurm") then
    return ("option 'hosts' runs jobs through ssh, but option 'backend' is '%s'"):format(b)
  elseif opts.slurm and (b == "local" or b == "ssh" or opts.hosts or (whole and b ~= "slurm")) then
    return "option 'slurm' needs backend = 'slurm'"
  elseif whole and b == "ssh" and not opts.hosts then
    return M.NO_HOSTS
  end
end

return M
