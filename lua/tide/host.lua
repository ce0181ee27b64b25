-- host.lua: what the C host asks of the Lua half: set-up before the script,
-- whether a command line is a script or a one-liner, and the exit status
-- after it.  The top of the Lua layers: it may require anything.
local core = require("tide.core")
local progress = require("tide.run.progress")
local state = require("tide.state")
local summary = require("tide.run.summary")
local sweep = require("tide.sweep")
local tide = require("tide")
local util = require("tide.util")

local M = {}

-- The one-liner front end, loaded only when a command line needs it (a
-- script's start-up does not pay for it).
local function cli()
  return require("tide.cli")
end

-- print and io.write to a closed pipe (`tide x.lua | head`) end tide
-- quietly, as SIGPIPE ends lua (util.checked).
local check_pipe = util.checked

-- Also, while the status line is on (progress.lua), what the script and
-- tide's Lua half write to stdout or stderr erases it first, as C's own
-- writes do.
local function install_pipe_checks()
  local stdout, stderr, write = io.stdout, io.stderr, io.write
  local methods = getmetatable(stdout).__index
  local fwrite = methods.write
  methods.write = function(f, ...)
    if f == stdout then
      if progress.on then
        core.status(false, 1)
      end
      return check_pipe(fwrite(f, ...))
    elseif f == stderr and progress.on then
      core.status(false, 2)
    end
    return fwrite(f, ...)
  end
  _G.print = function(...)
    local n = select("#", ...)
    local parts = { ... }
    for i = 1, n do
      parts[i] = tostring(parts[i])
    end
    check_pipe(stdout:write(table.concat(parts, "\t", 1, n), "\n"))
  end
  io.write = function(...) -- luacheck: ignore 122
    if progress.on then
      core.status(false, 1)
    end
    return check_pipe(write(...))
  end
end

-- jobs: the -j value, 0 when not given; progress: --progress (true),
-- --no-progress (false) or neither (nil).
function M.setup(jobs, show)
  if jobs > 0 then
    state.jobs_default = jobs
  end
  install_pipe_checks()
  if show == nil then
    progress.setup()
  else
    progress.force(show)
  end
  _G.tide, _G.pool, _G.shell = tide, tide.pool, tide.shell
  for name in pairs(sweep) do
    _G[name] = tide[name]
  end
end

local SEPARATORS = { [":::"] = true, ["::::"] = true, [":::+"] = true, ["::::+"] = true }
-- Options of both modes, which decide nothing.
local NEUTRAL = { ["--version"] = true, ["-v"] = true, ["-h"] = true, ["--progress"] = true, ["--no-progress"] = true }

-- Whether a command's first word names an executable in PATH: `tide
-- 'gzip -9'` reading stdin is a one-liner too.
local function in_path(cmd)
  local word = cmd:match("^[^ \t]+")
  if not word or word:find("/", 1, true) then
    return false
  end
  for dir in ((os.getenv("PATH") or "") .. ":"):gmatch("([^:]*):") do
    if core.executable((dir == "" and "." or dir) .. "/" .. word) then
      return true
    end
  end
  return false
end

local function plain_number(s)
  return s ~= nil and s:find("^%d+$") ~= nil
end

local function exists(path)
  local f = io.open(path)
  if f then
    f:close()
  end
  return f ~= nil
end

-- Whether word names a script: a .lua name (an existing file or not: a
-- missing x.lua is "cannot open", never a command), or a readable file
-- whose first line is a shebang running tide or lua.
local function is_script(word)
  if word:find("%.lua$") then
    return true
  end
  local f = io.open(word, "rb")
  local line = f and f:read("l")
  if f then
    f:close()
  end
  return line ~= nil and line:find("^#!") ~= nil and (line:find("tide", 1, true) or line:find("lua", 1, true)) ~= nil
end

-- One-liner (GNU parallel's command line, run by tide.cli) or script
-- (lua's)?  args are tide's arguments after its name.  First the leading
-- options: one only lua has (-e -l -E -W) means a script; one only GNU
-- parallel has (-k, --tag, -j 50%, --joblog F...) is noted.  Then, at the
-- first other word W:
--   - W is "-", or a script (is_script): a script.  After GNU parallel's
--     options it returns W's index: those options are its pools'
--     defaults (cli.script_defaults), so `tide --joblog x.log sweep.lua`
--     runs the script rather than reading stdin for a one-liner;
--   - after GNU parallel's options: a one-liner;
--   - a separator (::: :::: :::+ ::::+) anywhere: one-liner;
--   - W is an existing file: script (as lua runs it);
--   - W's first word names an executable in PATH: one-liner reading stdin;
--   - else script ("cannot open W").
-- Run through a link named parallel (name: argv[0]), tide is GNU
-- parallel's command line throughout: always a one-liner, so that `echo
-- CMDS | parallel` runs the lines as commands, and `parallel report x`
-- runs the command report.
-- Returns true for a one-liner, false for a script as lua takes it, or
-- the index of a script that GNU parallel's options come before.
local as_parallel = false
function M.is_oneliner(args, name)
  if name and name:match("[^/]*$") == "parallel" then
    as_parallel = true
    return true
  end
  if args[1] == "--worker" then
    return true -- tide --worker (host.oneliner runs it)
  end
  local i, lua_only, gnu_only = 1, false, false
  while args[i] do
    local a = args[i]
    if a:sub(1, 1) ~= "-" or a == "-" then
      break
    elseif a == "--" then
      return false
    elseif NEUTRAL[a] then -- luacheck: ignore 542
    elseif a == "-E" or a == "-W" then
      lua_only = true
    elseif a:find("^%-[el]") then
      lua_only = true
      if #a == 2 then
        i = i + 1
      end
    elseif a:find("^%-j") then
      local v = #a > 2 and a:sub(3) or args[i + 1]
      if v == nil then
        break
      end
      gnu_only = gnu_only or not plain_number(v)
      if #a == 2 then
        i = i + 1
      end
    else
      gnu_only = true
      if not a:find("=", 1, true) and cli().takes_value(a) then
        i = i + 1 -- its value
      end
    end
    i = i + 1
  end
  if lua_only then
    return false
  end
  local w = args[i]
  if i == 1 and w == "report" and args[2] and not exists("report") then
    return true -- tide report FILE... -o run.html (host.oneliner runs it)
  end
  if w ~= nil and (w == "-" or is_script(w)) then
    return gnu_only and i or false
  elseif gnu_only then
    return true
  elseif w == nil then
    return false
  end
  for k = i, #args do
    if SEPARATORS[args[k]] then
      return true
    end
  end
  if exists(w) then
    return false
  end
  return in_path(w)
end

-- tide [GNU parallel's options] script.lua: the options become the
-- defaults of the script's pools.  Returns true, or false and tide's exit
-- status (an option that means nothing to a script).
function M.script_options(args, first)
  local defaults, resume = cli().script_defaults(args, first)
  if not defaults then
    return false, resume
  end
  state.pool_defaults, state.resume_records = defaults, resume
  if defaults.jobs then
    state.jobs_default = defaults.jobs
  end
  return true
end

-- One-liner mode: runs it and returns tide's exit status (tide.cli).
function M.oneliner(args)
  if args[1] == "--worker" and not as_parallel then
    if args[2] then
      io.stderr:write("tide: --worker takes no arguments\n")
      return 2
    end
    return require("tide.backend.serve").main()
  end
  install_pipe_checks()
  if args[1] == "report" and not as_parallel then
    return require("tide.run.report").command(args)
  end
  progress.setup()
  local words = { as_parallel and "parallel" or "tide" }
  for i, a in ipairs(args) do
    words[i + 1] = util.quote(a)
  end
  state.command = table.concat(words, " ")
  return cli().main(args)
end

-- Returns tide's exit status once the script has run to its end: 1 if a
-- job failed, else 0; but the first map that halted decides (the failing
-- job's own status for fail=1, 0 for success=..., see pool.lua), except
-- that a job failing after a halt that gave 0 makes it 1.
function M.finish()
  -- the backends and the report have nothing to do if no job loaded them
  local backend, report = package.loaded["tide.backend"], package.loaded["tide.run.report"]
  if backend then
    backend.shutdown()
  end
  local stats = state
  local status = stats.halt_status
  if status == nil or (status == 0 and stats.failed > stats.halt_failed) then
    status = stats.failed > 0 and 1 or 0
  end
  -- the status line's final figures, then the summary if a job failed
  -- or one was asked for
  progress.finish()
  summary.report(stats.summary)
  if report and not report.finish() and status == 0 then
    status = 1 -- a report that could not be written is not a silent loss
  end
  return status
end

return M
