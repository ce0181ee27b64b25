-- cli/init.lua: one-liners, GNU parallel's command line on tide's pool.
--
--   tide [options] [command [args]] ::: a b ::: x y :::: file :::+ 1 2
--
-- host.lua decides that a command line is a one-liner (is_oneliner) and
-- hands the arguments here.  Everything is built from
-- the Lua half: inputs become a list of jobs, each job a command made
-- with template.fmt (or template.argv with -q), run by pool():map with
-- shell().  Options whose machinery is not built say so and exit 255.
local core = require("tide.core")
local expand = require("tide.cli.expand")
local gnuout = require("tide.cli.gnuout")
local options = require("tide.run.options")
local pipe = require("tide.cli.pipe")
local pool = require("tide.run.pool")
local progress = require("tide.run.progress")
local report = require("tide.run.report")
local shell = require("tide.run.job")
local state = require("tide.state")
local summary = require("tide.run.summary")
local template = require("tide.sweep.template")
local util = require("tide.util")

local M = {}

local USAGE = [==[
usage: tide [options] [script [args]]                 run a Lua script
       tide [options] [command [args]] ::: a b ::: c  one-liner, as GNU parallel
       tide report RECORD_OR_JOBLOG... -o run.html     a report of a past run
Script mode (lua's options):
  -e stat   execute string 'stat'       -l mod    require library 'mod'
  -j N      default pool size           -v        show version information
  -E        ignore LUA_* variables      -W        turn warnings on
  -h        short help                  --  / -   stop handling options / stdin
A script is a .lua name, or a file whose first line is a tide or lua #!,
wherever it stands after the options: the one-liner options below that mean
something to a script (-j, --joblog, --resume, -k, --timeout, --halt,
--results, --report, -S...) then apply to its pools; --resume without
--joblog resumes item records; any other is refused.  Otherwise one-liner
mode, when a ::: :::: :::+ or ::::+ separator is present, or an option below
is given, or the first word is not a file here but a program in PATH
(`ls | tide -j4 gzip`).
Input:  ::: args   :::: file (- = stdin)   :::+ / ::::+ (linked to the previous
        source)   -a file   --link   no source: stdin's lines
        -0 / --null   -d delim   --colsep sep   --header :   --trim lr|l|r|n
        --arg-sep SEP / --arg-file-sep SEP (for ::: / ::::)   --shuf
        --pipe: chunks of stdin to the jobs' stdin   --block SIZE (1M)
        -N n records a chunk   --recend STR (\n)   --recstart STR
Replacement strings: {} {.} {/} {//} {/.} {#} {%} {1} {2.} {3/} ... {name}
        -I STR: STR stands for {}.  Commands run with $PARALLEL_SHELL, else
        the shell tide was started from, else /bin/sh.
        none in the command: the arguments are appended.
        --plus: GNU's {+/} {+.} {..} {/..} {##} {0#} {0%} {:-x} {#re} ...
  -j N | N% | +N | -N   jobs at a time (default: CPUs; 0: as many as jobs)
  -n N / -N N   arguments per job       -X / -m   as many as fit per job
  -q            run the command with no shell (each word one argument)
  --shellquote  print the arguments quoted, run nothing
  --dry-run     print each command, run nothing
  --timeout S|P%   --retries N   --halt now|soon,fail|success|done=N|P%
  --delay S   --load L   --memfree SIZE   --workdir DIR   --env VAR
  -k  --tag  --tagstring S  --line-buffer  -u  --group  --nice N
  --results DIR|NAME.csv|NAME.tsv|NAME.json   --files  --tmpdir DIR
  -v   each command before its output    -t/--verbose   each on stderr
  --joblog FILE   --resume   --resume-failed   --summary   --no-summary
  --report FILE   an HTML report of the run   --trace FILE   Chrome trace JSON
  --progress (or --bar, --eta)   the status line on stderr, even if not a tty
  --no-progress   no status line (default: only when stderr is a terminal)
  -S/--sshlogin [N/]login[,...]   run on ssh hosts (':' is this machine)
  --slf FILE   sshlogins from a file, one a line   --ssh CMD  the ssh command
An option of GNU parallel's that tide lacks, like a typo, stops with exit
255 rather than being ignored.  Run through a link named parallel, tide
takes GNU parallel's command line throughout (`echo CMDS | parallel`).
Exit status of a one-liner: the number of failed jobs (at most 101); with
--halt ...,fail=1 the failing job's status, with --halt ...,fail=P% the
percentage failed; 255 for other errors.  A script: 0, 1 if a job failed,
2 for a script error, 128+N for signal N.
]==]

-- An error in the command line: message, exit 255.
local Usage = {}
local function die(fmt, ...)
  error(setmetatable({ msg = fmt:format(...) }, Usage), 0)
end
expand.die = die

local NOT_YET = {}

-- Options: canonical name and whether it takes a value.
local OPTIONS = {
  ["-j"] = "jobs", ["--jobs"] = "jobs", ["-P"] = "jobs", ["--max-procs"] = "jobs",
  ["-k"] = false, ["--keep-order"] = "-k", ["--tag"] = false, ["--tagstring"] = "tagstring",
  ["--line-buffer"] = false, ["--lb"] = "--line-buffer", ["-u"] = false, ["--ungroup"] = "-u",
  ["--group"] = false, ["--results"] = "results", ["--res"] = "results",
  ["--joblog"] = "joblog", ["--resume"] = false, ["--resume-failed"] = false,
  ["--retries"] = "retries", ["--timeout"] = "timeout", ["--halt"] = "halt", ["--halt-on-error"] = "halt",
  ["--delay"] = "delay", ["--load"] = "load", ["--memfree"] = "memfree",
  ["--dry-run"] = false, ["--dryrun"] = "--dry-run", ["--summary"] = false, ["--no-summary"] = false,
  ["--progress"] = false, ["--bar"] = "--progress", ["--eta"] = "--progress", ["--no-progress"] = false,
  ["-0"] = false, ["--null"] = "-0", ["-d"] = "delim", ["--delimiter"] = "delim",
  ["--colsep"] = "colsep", ["-C"] = "colsep", ["--header"] = "header",
  ["-n"] = "n", ["--max-args"] = "n", ["-N"] = "N",
  ["-X"] = false, ["--xargs"] = "-m", ["-m"] = false,
  ["--workdir"] = "workdir", ["--wd"] = "workdir", ["--env"] = "env",
  ["-S"] = "sshlogin", ["--sshlogin"] = "sshlogin", ["--slf"] = "slf", ["--sshloginfile"] = "slf",
  ["--ssh"] = "ssh", ["-q"] = false, ["--quote"] = "-q",
  ["--shellquote"] = false, ["-a"] = "argfile", ["--arg-file"] = "argfile",
  ["--link"] = false, ["--xapply"] = "--link", ["-v"] = false, ["-t"] = false, ["--verbose"] = "-t",
  ["-I"] = "replace", ["--trim"] = "trim", ["--shuf"] = false,
  ["--arg-sep"] = "argsep", ["--argsep"] = "--arg-sep", ["--arg-file-sep"] = "argfilesep",
  ["--argfilesep"] = "--arg-file-sep",
  ["--pipe"] = false, ["--spreadstdin"] = "--pipe", ["--block"] = "block", ["--block-size"] = "--block",
  ["--blocksize"] = "--block", ["--recstart"] = "recstart", ["--recend"] = "recend", ["--plus"] = false,
  ["--nice"] = "nice", ["--files"] = false, ["--output-as-files"] = "--files", ["--outputasfiles"] = "--files",
  ["--tmpdir"] = "tmpdir", ["--tempdir"] = "--tmpdir",
  ["--version"] = false, ["--will-cite"] = false, ["--help"] = false, ["--report"] = "report", ["--trace"] = "trace",
}
-- The options that take a value, by canonical name.
local VALUED = {
  jobs = "-j", tagstring = "--tagstring", results = "--results", joblog = "--joblog",
  retries = "--retries", timeout = "--timeout", halt = "--halt", delay = "--delay",
  load = "--load", memfree = "--memfree", delim = "-d", colsep = "--colsep", header = "--header",
  n = "-n", N = "-N", workdir = "--workdir", env = "--env", sshlogin = "-S", argfile = "-a",
  slf = "--slf", ssh = "--ssh", report = "--report", trace = "--trace", replace = "-I", trim = "--trim",
  argsep = "--arg-sep", argfilesep = "--arg-file-sep", block = "--block", recstart = "--recstart",
  recend = "--recend", nice = "--nice", tmpdir = "--tmpdir",
}

-- The separators and what each stands for (--arg-sep renames them).
local SEPARATORS = { [":::"] = ":::", ["::::"] = "::::", [":::+"] = ":::+", ["::::+"] = "::::+" }
M.SEPARATORS = SEPARATORS

-- Every option of GNU parallel 20221122 (Debian 12's), aliases included,
-- from its options_completion_hash: one tide does not have is named as
-- GNU parallel's, never taken for a typo.
local GNU = {}
for w in ([[
  0 B C D E H I J L M N P S T U V W X Y _parset _pipe-means-argfiles _test a arg-file
  arg-file-sep arg-sep argfile argfilesep argsep bar basefile basenameextensionreplace
  basenamereplace bf bg bin block block-size block-timeout blocksize blocktimeout bner bnr bt
  bug cat cf cleanup col-sep color color-fail color-failed colorfail colorfailed colour
  colour-fail colour-failed colourfail colourfailed colsep compress compress-program
  compressprogram controlmaster csv ctag ctag-string ctagstring ctrl-c ctrlc d debug
  decompress-program decompressprogram delay delimiter dirnamereplace dnr dr dry-run dryrun e
  embed env eof er eta exit extensionreplace fg fifo files filter filter-host filter-hosts
  filterhosts g gnu group group-by groupby h halt halt-on-error haltonerror hashbang header
  help hgrp hostgroup hostgroups hostgrp i id interactive j jl joblog jobs k keep-order
  keeporder l latest-line latestline lb limit line-buffer line-buffered linebuffer
  linebuffered link linkinputsource ll load m max-args max-chars max-line-length-allowed
  max-lines max-procs max-replace-args maxargs maxchars maxlinelengthallowed maxlines maxprocs
  maxreplaceargs memfree memsuspend min-version minversion n nice nn no-ctrl-c no-ctrlc no-k
  no-keep-order no-notice no-run-if-empty noctrlc nok nokeeporder nonall nonotice norunifempty
  noswap null number-of-cores number-of-cpus number-of-sockets number-of-threads numberofcores
  numberofcpus numberofsockets numberofthreads o onall open-tty output-as-files outputasfiles
  p parens pipe pipe-part pipepart plain plus process-slot-var processslotvar profile progress
  q quote r recend record-env recordenv recstart regex regexp remove-rec-sep removerecsep
  replace res result results resume resume-failed resumefailed retries retry-failed
  retryfailed return round round-robin roundrobin rpl rrs rsync-opts rsyncopts s semaphore
  semaphore-name semaphore-timeout semaphorename semaphoretimeout seqreplace session shard
  shebang shell-completion shell-quote shell_quote shellcompletion shellquote show-limits
  showlimits shuf silent skip-first-line skipfirstline slf slotreplace spreadstdin sql
  sql-and-worker sql-master sql-worker sqlandworker sqlmaster sqlworker ssh ssh-delay sshdelay
  sshlogin sshloginfile st t tag tag-string tagstring tee tempdir template term-seq termseq tf
  timeout tmpdir tmpl tmux tmux-pane tmuxpane tollef total total-jobs totaljobs transfer
  transfer-file transfer-files transferfile transferfiles trc trim tty u ungroup
  use-compress-program use-cores-instead-of-threads use-cpus-instead-of-cores
  use-decompress-program use-sockets-instead-of-threads usecompressprogram
  usecoresinsteadofthreads usecpusinsteadofcores usedecompressprogram
  usesocketsinsteadofthreads v verbose version wait wd will-cite willcite work-dir workdir x
  xapply xapplyinputsource xargs
]]):gmatch("%S+") do
  GNU[#w == 1 and "-" .. w or "--" .. w] = true
end

-- An option tide does not know: GNU parallel's, or a typo of one of ours.
local function unknown(a, name)
  if GNU[name] then
    die("tide does not implement GNU parallel's %s (tide --help lists what it has)", name)
  end
  local near = name:find("^%-%-") and util.closest(name, OPTIONS)
  die("unknown option '%s'%s (tide --help lists them)", a, near and (" (did you mean %s?)"):format(near) or "")
end

-- Splits args into options, command words and input sources.
local function parse(args)
  local o = { sources = {} }
  local i, n = 1, #args
  -- --arg-sep and --arg-file-sep rename ::: and :::: (their + forms too)
  local SEPARATORS = M.SEPARATORS -- luacheck: ignore 431
  for k = 1, n do
    local a = args[k]
    if SEPARATORS[a] or a == "--" or a:sub(1, 1) ~= "-" then
      break
    end
    local name, value = a:match("^(%-%-[%w-]+)=(.*)$")
    name = name or a
    if name == "--arg-sep" or name == "--argsep" or name == "--arg-file-sep" or name == "--argfilesep" then
      value = value or args[k + 1]
      if value then
        if SEPARATORS == M.SEPARATORS then
          SEPARATORS = {}
          for s, canon in pairs(M.SEPARATORS) do
            SEPARATORS[s] = canon
          end
        end
        local canon = name:find("file") and "::::" or ":::"
        SEPARATORS[canon], SEPARATORS[canon .. "+"] = nil, nil
        SEPARATORS[value], SEPARATORS[value .. "+"] = canon, canon .. "+"
      end
    end
  end
  while i <= n do
    local a = args[i]
    if SEPARATORS[a] or a:sub(1, 1) ~= "-" or a == "-" then
      break
    end
    if a == "--" then
      i = i + 1
      break
    end
    local name, value = a:match("^(%-%-[^=]+)=(.*)$")
    name = name or a
    local spec = OPTIONS[name]
    if spec == nil and not name:find("^%-%-") and #name > 2 then
      -- -j4, -n2, -d, : a short option with its value attached
      local short = name:sub(1, 2)
      if type(OPTIONS[short]) == "string" and VALUED[OPTIONS[short]] then
        name, value, spec = short, a:sub(3), OPTIONS[short]
      end
    end
    if spec == nil then
      unknown(a, name)
    end
    local given = name
    if type(spec) == "string" and spec:sub(1, 1) == "-" then
      name, spec = spec, OPTIONS[spec] -- an alias
    end
    if NOT_YET[name] then
      die("option '%s' is not available yet (%s is not built)", given, NOT_YET[name])
    end
    if spec then
      if value == nil then
        i = i + 1
        value = args[i]
        if value == nil then
          die("option '%s' needs a value", name)
        end
      end
      if spec == "argfile" then
        o.sources[#o.sources + 1] = { file = value }
      elseif spec == "sshlogin" and o.sshlogin then -- repeatable, as in GNU parallel
        o.sshlogin = o.sshlogin .. "," .. value
      else
        o[spec] = value
      end
    else
      o[name] = true
    end
    i = i + 1
  end
  o.command = {}
  while i <= n and not SEPARATORS[args[i]] do
    o.command[#o.command + 1] = args[i]
    i = i + 1
  end
  while i <= n do
    local sep = SEPARATORS[args[i]]
    local src = { linked = sep:sub(-1) == "+" }
    i = i + 1
    if sep:sub(1, 4) == "::::" then
      while i <= n and not SEPARATORS[args[i]] do
        o.sources[#o.sources + 1] = { file = args[i], linked = src.linked }
        src.linked = false
        i = i + 1
      end
    else
      src.values = {}
      while i <= n and not SEPARATORS[args[i]] do
        src.values[#src.values + 1] = args[i]
        i = i + 1
      end
      o.sources[#o.sources + 1] = src
    end
  end
  return o
end

---------------------------------------------------------------------------
-- Inputs

local ESCAPES = { n = "\n", t = "\t", r = "\r", ["0"] = "\0", ["\\"] = "\\", a = "\a", f = "\f", v = "\v" }

-- -d and --colsep take \n, \t, \0 ... as GNU parallel does.
local function unescape(s)
  return (s:gsub("\\(.)", function(c)
    return ESCAPES[c] or "\\" .. c
  end))
end

local function split(s, sep, keep_last_empty)
  local out, pos = {}, 1
  while true do
    local a, b = s:find(sep, pos, true)
    if not a then
      break
    end
    out[#out + 1] = s:sub(pos, a - 1)
    pos = b + 1
  end
  if pos <= #s or keep_last_empty then
    out[#out + 1] = s:sub(pos)
  end
  return out
end

local stdin_used = false

-- A file's records (stdin's for "-") one at a time, read as jobs need
-- them: `tail -f log | tide ...` starts jobs as lines come.
local function record_reader(path, delim)
  local f
  if path == "-" then
    if stdin_used then
      die("stdin can be read only once")
    end
    stdin_used = true
    f = io.stdin
    if core.isatty(0) then
      -- as GNU parallel warns: a forgotten ::: would otherwise wait in silence
      io.stderr:write("tide: input is read from the terminal: one argument a line, Ctrl-D to end "
        .. "(or give ::: args, :::: file or a pipe)\n")
    end
  else
    local msg
    f, msg = io.open(path, "rb")
    if not f then
      die("cannot open input file: %s", msg)
    end
  end
  local buf, eof = "", false
  return function()
    while true do
      local a, b = buf:find(delim, 1, true)
      if a then
        local r = buf:sub(1, a - 1)
        buf = buf:sub(b + 1)
        return r
      elseif eof then
        if buf ~= "" then
          local r = buf
          buf = ""
          return r
        end
        return nil
      end
      local chunk = f:read("L")
      if chunk then
        buf = buf .. chunk
      else
        eof = true
        if f ~= io.stdin then
          f:close()
        end
      end
    end
  end
end

local function read_records(path, delim)
  local out = {}
  for r in record_reader(path, delim) do
    out[#out + 1] = r
  end
  return out
end

-- The values of each source, columns split and headers taken off: a list
-- of groups (linked sources zipped), each a list of rows (arrays of
-- columns); and the column names.
local function inputs(o)
  local delim = o["-0"] and "\0" or o.delim and unescape(o.delim) or "\n"
  local sources = o.sources
  if #sources == 0 then
    sources = { { file = "-" } }
  end
  local colsep = o.colsep and unescape(o.colsep)
  local names = {}
  local groups = {}
  for k, src in ipairs(sources) do
    local values = src.values or read_records(src.file, delim)
    local rows = {}
    for j, v in ipairs(values) do
      rows[j] = colsep and split(v, colsep, true) or { v }
    end
    if o.header then
      local head = table.remove(rows, 1)
      if head then
        for _, name in ipairs(head) do
          names[#names + 1] = name
        end
      end
    end
    if (src.linked or o["--link"]) and k > 1 then
      local g = groups[#groups]
      g[#g + 1] = rows
    else
      groups[#groups + 1] = { rows }
    end
  end
  -- An empty source among others gives one empty argument (GNU does so);
  -- when every source is empty there is nothing to run.
  local any = false
  for _, g in ipairs(groups) do
    for _, rows in ipairs(g) do
      any = any or #rows > 0
    end
  end
  for _, g in ipairs(groups) do
    for _, rows in ipairs(g) do
      if any and #rows == 0 and #sources > 1 then
        rows[1] = { "" }
      end
    end
  end
  return groups, names
end

-- Linked sources pair up, stopping at the shortest (as GNU's :::+ does;
-- --link wraps the shorter ones around, as GNU's --link does).
local function zip(g, wrap)
  if #g == 1 then
    return g[1]
  end
  local len
  for _, rows in ipairs(g) do
    if wrap then
      len = math.max(len or 0, #rows)
    else
      len = math.min(len or math.huge, #rows)
    end
  end
  for _, rows in ipairs(g) do
    if #rows == 0 then
      return {}
    end
  end
  local out = {}
  for r = 1, len do
    local row = {}
    for _, rows in ipairs(g) do
      for _, v in ipairs(rows[(r - 1) % #rows + 1]) do
        row[#row + 1] = v
      end
    end
    out[r] = row
  end
  return out
end

-- Every combination of the groups, the last varying fastest.
local function product(groups, wrap)
  local rows = { {} }
  for _, g in ipairs(groups) do
    local next_rows = {}
    for _, prefix in ipairs(rows) do
      for _, row in ipairs(zip(g, wrap)) do
        local r = table.move(prefix, 1, #prefix, 1, {})
        table.move(row, 1, #row, #r + 1, r)
        next_rows[#next_rows + 1] = r
      end
    end
    rows = next_rows
  end
  return rows
end

---------------------------------------------------------------------------
-- Jobs and commands

local function number(s, name, min)
  local v = tonumber(s)
  if not v or v ~= math.floor(v) or v < (min or 0) then
    die("bad value for %s: '%s' (whole number expected)", name, s)
  end
  return math.tointeger(v)
end

-- -j as GNU parallel reads it: N, N% of the CPUs, +N, -N, 0 = no limit.
local function jobs_value(s, njobs)
  local cpus = core.cpus()
  local n
  if s == nil then
    return cpus
  end
  local pct = s:match("^(%d+%.?%d*)%%$")
  if pct then
    n = math.floor(cpus * tonumber(pct) / 100)
  elseif s:match("^%+%d+$") then
    n = cpus + tonumber(s:sub(2))
  elseif s:match("^%-%d+$") then
    n = cpus - tonumber(s:sub(2))
  elseif s:match("^%d+$") then
    n = tonumber(s)
    if n == 0 then
      n = math.min(math.max(njobs, 1), 1000)
    end
  else
    die("bad value for -j: '%s' (N, N%%, +N or -N expected)", s)
  end
  return math.max(1, math.tointeger(n) or 1)
end

-- Whether the template has a replacement string: filled with a marker
-- item, the marker shows, or {#} makes two numbers differ.
local function has_placeholder(tpl, names)
  local probe = {}
  for k = 1, 9 do
    probe[k] = "\1"
  end
  for _, name in ipairs(names) do
    probe[name] = "\1"
  end
  if tpl:find("{%}", 1, true) then
    return true
  end
  local ok, a = pcall(template.fmt, tpl, probe, 1)
  if not ok then
    return true
  end
  return a:find("\1", 1, true) ~= nil or a ~= template.fmt(tpl, probe, 2)
end

-- {k...} past the job's arguments become empty, as in GNU parallel.
local MODS = { [""] = true, ["."] = true, ["/"] = true, ["//"] = true, ["/."] = true }
local function drop_missing(tpl, nargs)
  return (tpl:gsub("{(%d+)([%./]*)}", function(k, mod)
    if MODS[mod] and tonumber(k) > nargs then
      return ""
    end
  end))
end

-- {name} is a replacement string only for a --header column; any other
-- stays as it is (template.lua's {{name}} writes a literal {name}).
local function literal_names(tpl, names, plus)
  local known = plus and setmetatable({}, { __index = expand.NAMES }) or {}
  for _, name in ipairs(names) do
    known[name] = true
  end
  return (tpl:gsub("{([%a_][%w_]*)([%./]*)}", function(name, mod)
    if not known[name] then
      return "{{" .. name .. mod .. "}}"
    end
  end))
end

local MAX_LINE = 131000 -- GNU parallel's default on Linux is 131071

-- Groups an iterator's rows into jobs of per rows (-n, -N) as they come.
local function batch_iter(next_row, per)
  local done = false
  return function()
    if done then
      return nil
    end
    local cur = {}
    while #cur < per do
      local row = next_row()
      if not row then
        done = true
        break
      end
      cur[#cur + 1] = row
    end
    if #cur > 0 then
      return cur
    end
  end
end

-- Groups rows into jobs: one row each, or -n/-N per job, or -X/-m as
-- many as fit (shared out evenly between the job slots).
local function batches(rows, o, nslots, cmdlen)
  local per = o.n and number(o.n, "-n", 1) or o.N and number(o.N, "-N", 1)
  local fit = o["-X"] or o["-m"]
  if not per and not fit then
    return rows, 1
  end
  local out = {}
  if fit then
    per = math.max(1, math.ceil(#rows / nslots))
  end
  local cur, len = {}, cmdlen
  for _, row in ipairs(rows) do
    local w = 0
    for _, v in ipairs(row) do
      w = w + #template.quote(v) + 1
    end
    if #cur > 0 and (#cur >= per or (fit and len + w > MAX_LINE)) then
      out[#out + 1] = cur
      cur, len = {}, cmdlen
    end
    cur[#cur + 1] = row
    len = len + w
  end
  if #cur > 0 then
    out[#out + 1] = cur
  end
  return out, per
end

-- The fields of a job: its values in order ({1}, {2}... and {} for all)
-- and, with --header, each column by name.
local function item_of(job, batched, names)
  local item = {}
  local rows = batched and job or { job }
  for _, row in ipairs(rows) do
    for _, v in ipairs(row) do
      item[#item + 1] = v
    end
  end
  if not batched then
    for k, name in ipairs(names) do
      item[name] = job[k]
    end
  end
  return item
end

-- Fills the words that hold a replacement string once per argument, for
-- -X (GNU parallel's context replace).
local function context_replace(tpl, item, i)
  local words = {}
  for w in tpl:gmatch("%S+") do
    local ok, once = pcall(template.fmt, w, { "\1" }, i)
    if ok and once:find("\1", 1, true) then
      local each = {}
      for k, v in ipairs(item) do
        each[k] = template.fmt(w, { v }, i)
      end
      words[#words + 1] = table.concat(each, " ")
    else
      words[#words + 1] = template.fmt(w, item, i)
    end
  end
  return table.concat(words, " ")
end

---------------------------------------------------------------------------
-- Output options, as pool options

local function output_options(o, expand_raw)
  local opts = {}
  if o["-k"] then
    opts.order = "input"
  end
  if o.tagstring then
    opts.tag = function(item, i)
      return expand_raw(o.tagstring, item, i)
    end
  elseif o["--tag"] then
    opts.tag = function(item, i)
      return expand_raw("{}", item, i)
    end
  end
  if o["--line-buffer"] then
    opts.output = "line"
  elseif o["-u"] then
    opts.output = "ungroup"
  elseif o["--group"] then
    opts.output = "group"
  end
  opts.results = o.results
  return opts
end

---------------------------------------------------------------------------

-- The GNU parallel option behind each pool option, for error messages.
local FLAG_OF = {
  timeout = "--timeout", retries = "--retries", halt = "--halt", delay = "--delay",
  max_load = "--load", min_free = "--memfree", tag = "--tag/--tagstring", output = "--line-buffer/-u/--group",
  order = "-k", results = "--results", hosts = "-S/--slf", ssh = "--ssh", report = "--report", trace = "--trace",
}

-- The shell one-liners run their commands with, by GNU parallel's rule:
-- $PARALLEL_SHELL, else the shell tide was started from (the nearest
-- ancestor process that is a shell), else /bin/sh.
local SHELLS = {}
for w in ("ash bash csh dash fish ksh ksh93 mksh pdksh posh rbash rc sash sh tcsh yash zsh"):gmatch("%S+") do
  SHELLS[w] = true
end

local function gnu_shell()
  local sh = os.getenv("PARALLEL_SHELL")
  if sh and sh ~= "" then
    return sh
  end
  local pid = "self"
  for _ = 1, 16 do
    local stat = util.slurp("/proc/" .. pid .. "/stat")
    -- the command name is in parentheses and may itself hold spaces
    local ppid = stat and tonumber(stat:match("%) %S+ (%d+)"))
    if not ppid or ppid <= 1 then
      break
    end
    local comm = util.slurp("/proc/" .. ppid .. "/comm")
    local name = comm and comm:gsub("%s+$", ""):gsub("^%-", "")
    if name and SHELLS[name] then
      return name
    end
    pid = tostring(ppid)
  end
  return "/bin/sh"
end

-- A pool with popts; a bad value is the command line's error, named by
-- its GNU parallel option.
local function new_pool(popts)
  local ok, p = pcall(pool.new, popts)
  if not ok then
    local msg = tostring(p):gsub("^bad argument #1 to 'pool' %((.*)%)$", "%1")
    local key, rest = msg:match("^option '([%w_]+)' (.*)$")
    die("%s", FLAG_OF[key] and ("bad value for %s: %s"):format(FLAG_OF[key], rest) or msg)
  end
  return p
end

local function job_options(o)
  local opts = {}
  if o.timeout then
    opts.timeout = o.timeout:find("%%$") and o.timeout or tonumber(o.timeout) or o.timeout
  end
  if o.retries then
    local r = number(o.retries, "--retries", 0)
    if r > 1 then
      opts.retries = r - 1
    end
  end
  if o.delay then
    opts.delay = tonumber(o.delay) or o.delay
  end
  if o.load then
    opts.max_load = tonumber(o.load) or die("bad value for --load: '%s' (a number expected)", o.load)
  end
  if o.memfree then
    opts.min_free = tonumber(o.memfree) or o.memfree
  end
  if o.halt then
    local h = o.halt
    local numeric = { ["0"] = false, ["1"] = "soon,fail=1", ["2"] = "now,fail=1" }
    if numeric[h] ~= nil then
      h = numeric[h]
    end
    opts.halt = h
  end
  local hosts = o.sshlogin and { o.sshlogin } or {}
  if o.slf then
    local f, err = io.open(o.slf)
    if not f then
      die("--slf: cannot open %s", err)
    end
    for line in f:lines() do
      if line:find("%S") and not line:find("^%s*#") then
        hosts[#hosts + 1] = line
      end
    end
    f:close()
  end
  if #hosts > 0 then
    opts.hosts = table.concat(hosts, ",")
    opts.ssh = o.ssh
  elseif o.ssh then
    die("option '--ssh' needs -S/--sshlogin or --slf")
  end
  if o.joblog then
    opts.joblog = o.joblog
    opts.resume = o["--resume-failed"] and "failed" or o["--resume"] or nil
  elseif o["--resume"] or o["--resume-failed"] then
    die("option '%s' needs --joblog FILE", o["--resume-failed"] and "--resume-failed" or "--resume")
  end
  return opts
end

-- --trim l, r, lr or n: the arguments' white space to cut.
local function trimmer(how)
  if how == nil or how == "n" then
    return function(row)
      return row
    end
  end
  local pattern = ({ l = "^%s*(.-)$", r = "^(.-)%s*$", lr = "^%s*(.-)%s*$", rl = "^%s*(.-)%s*$" })[how]
  if not pattern then
    die("bad value for --trim: '%s' (l, r, lr or n expected)", how)
  end
  return function(row)
    for k, v in ipairs(row) do
      row[k] = v:match(pattern)
    end
    return row
  end
end

-- --pipe: the chunk iterator of tide's stdin, by --block, -N/-n,
-- --recstart and --recend (cli/pipe.lua).  Takes -N/-n off o: the jobs
-- are chunks, one each.
local function pipe_chunks(o)
  if #o.sources > 0 then
    die("option '--pipe' reads tide's stdin: it takes no ::: or :::: input")
  end
  if o["--resume"] or o["--resume-failed"] then
    -- tide resumes a job by its command, and every chunk's is the same
    die("option '%s' cannot resume --pipe jobs (they differ by their stdin only)",
      o["--resume"] and "--resume" or "--resume-failed")
  end
  local block = options.size(o.block or "1M")
  if not block or block < 1 then
    die("bad value for --block: '%s' (a size such as 1M, 512k or 4096)", o.block)
  end
  -- GNU parallel's limit, which it also applies with a warning
  block = math.min(math.floor(block), 2147483647)
  local per
  if o.N or o.n then
    per = number(o.N or o.n, o.N and "-N" or "-n", 1)
  end
  o.N, o.n = nil, nil
  local recstart = o.recstart and unescape(o.recstart) or ""
  local recend = o.recend and unescape(o.recend) or (o.recstart and "" or "\n")
  if recstart == "" and recend == "" then
    die("options '--recstart' and '--recend' cannot both be empty")
  end
  if core.isatty(0) then
    io.stderr:write("tide: --pipe reads the terminal: Ctrl-D to end (or give input on a pipe)\n")
  end
  return pipe.chunks(io.stdin, math.tointeger(block), per, recstart, recend, function(msg)
    io.stderr:write("tide: ", msg, "\n")
  end)
end

-- The command run for a one-liner's job, with --nice and -v: GNU
-- parallel runs `nice -n N` too; -v prints the command in the job's own
-- output, so that it is grouped and ordered with it.
local function wrapped(cmd, o, sh)
  if o["-v"] then
    if type(cmd) == "table" then
      local shown = {}
      for k, w in ipairs(cmd) do
        shown[k] = template.quote(w)
      end
      cmd = { "/bin/sh", "-c", 'printf "%s\\n" "$0"; exec "$@"', table.concat(shown, " "), table.unpack(cmd) }
    else
      cmd = "printf '%s\\n' " .. template.quote(cmd) .. "; " .. cmd
    end
  end
  if o.nice then
    local argv = { "nice", "-n", o.nice }
    if type(cmd) == "table" then
      table.move(cmd, 1, #cmd, 4, argv)
    else
      argv[4], argv[5], argv[6] = sh, "-c", cmd
    end
    cmd = argv
  end
  return cmd
end

-- Writes each job's text in input order (-k) or as it comes: done(i, s);
-- write: io.write unless given.
local function printer(ordered, write)
  write = write or io.write
  local held, next_i = {}, 1
  local function done(i, s)
    if not ordered then
      write(s)
      return
    end
    held[i] = s
    while held[next_i] do
      write(held[next_i])
      held[next_i] = nil
      next_i = next_i + 1
    end
  end
  local function finish()
    local idx = {}
    for i in pairs(held) do
      idx[#idx + 1] = i
    end
    table.sort(idx)
    for _, i in ipairs(idx) do
      write(held[i])
    end
    held = {}
  end
  return done, finish
end

local function run(o)
  if not o["--pipe"] then
    for _, k in ipairs({ "block", "recstart", "recend" }) do
      if o[k] then
        die("option '%s' applies only with --pipe", VALUED[k])
      end
    end
  end
  if o.nice and not tostring(o.nice):find("^%-?%d+$") then
    die("bad value for --nice: '%s' (a whole number, the niceness)", o.nice)
  end
  if o["--help"] then
    io.write(USAGE)
    return 0
  elseif o["--version"] then
    -- not GNU parallel's version: a script asking which parallel it has
    -- must not be misled
    io.write(("tide %s: GNU parallel's command line, run by tide (not GNU parallel)\n"):format(core.version))
    return 0
  end
  if o.header and o.header ~= ":" then
    die("--header: only ':' (the first line names the columns) is supported, got '%s'", o.header)
  end
  local command = o.command
  if o.replace then
    -- -I R: R stands for {} in the command
    local pat = o.replace:gsub("%p", "%%%0")
    for k, w in ipairs(command) do
      command[k] = w:gsub(pat, "{}")
    end
  end
  if command[1] and command[1]:find("%.lua$") then
    local f = io.open(command[1], "rb")
    if f then
      f:close()
    end
    -- A mistyped script is never run as a command.
    if not f then
      die("cannot open %s", command[1])
    end
  end
  -- One source (or stdin) is read as jobs start; several are combined
  -- first, and -X/-m and percentage halts need the count.
  local src = o.sources[1]
  local piped = o["--pipe"]
  local cmdline = table.concat(command, " ")
  local counted = o["--plus"] and (cmdline:find("{##}", 1, true) or cmdline:find("{0#}", 1, true))
  if piped and counted then
    die("--plus {##} and {0#} need the number of jobs, which --pipe does not know before the end")
  end
  local streaming = piped or #o.sources <= 1 and not (src and src.values) and not (o["-X"] or o["-m"])
    and not (o.halt and o.halt:find("%", 1, true)) and not o["--shuf"] and not counted
  local trim = trimmer(o.trim)
  local rows, names
  if piped then
    local read = pipe_chunks(o)
    rows = function()
      local chunk = read()
      if chunk then
        return { "", chunk = chunk }
      end
    end
    names = {}
  elseif streaming then
    local delim = o["-0"] and "\0" or o.delim and unescape(o.delim) or "\n"
    local colsep = o.colsep and unescape(o.colsep)
    local read = record_reader(src and src.file or "-", delim)
    rows = function()
      local v = read()
      if v ~= nil then
        return trim(colsep and split(v, colsep, true) or { v })
      end
    end
    names = o.header and rows() or {}
  else
    local groups
    groups, names = inputs(o)
    rows = product(groups, o["--link"])
    for k, row in ipairs(rows) do
      rows[k] = trim(row)
    end
    if o["--shuf"] then
      for k = #rows, 2, -1 do -- Fisher-Yates
        local r = math.random(k)
        rows[k], rows[r] = rows[r], rows[k]
      end
    end
  end

  local quoted = o["-q"]
  local tpl, words
  -- with -q, each word's {= =} and --plus strings (expand.lua)
  local wparts = {}
  if quoted then
    words = {}
    for k, w in ipairs(command) do
      words[k] = literal_names(w, names, o["--plus"])
      wparts[k] = expand.compile(words[k], o["--plus"])
    end
  else
    tpl = literal_names(table.concat(command, " "), names, o["--plus"])
  end
  if o.tagstring then
    o.tagstring = literal_names(o.tagstring, names)
  end
  -- -N0 (GNU parallel): one input per job, inserted nowhere.
  local none = o.N == "0"
  if none then
    o.N = nil
  end
  local parts = not quoted and expand.compile(tpl, o["--plus"])
  local appended = #command > 0 and not none and not parts and not next(wparts) and not piped
    and not has_placeholder(tpl or table.concat(words, " "), names)
  if appended then
    if quoted then
      words[#words + 1] = "{}"
    else
      tpl = tpl .. " {}"
    end
  end

  local slots = jobs_value(o.jobs, streaming and 250 or #rows)
  local jobs, per
  if streaming then
    per = o.n and number(o.n, "-n", 1) or o.N and number(o.N, "-N", 1) or 1
    jobs = (o.n or o.N) and batch_iter(rows, per) or rows
  else
    jobs, per = batches(rows, o, slots, #(tpl or "") + 1)
    if o.jobs == "0" then
      slots = math.min(math.max(#jobs, 1), 1000)
    end
  end
  local batched = jobs ~= rows

  -- Calls fn(job, i) for each job, in order.
  local function each(fn)
    if type(jobs) == "table" then
      for i, job in ipairs(jobs) do
        fn(job, i)
      end
    else
      local i = 0
      for job in jobs do
        i = i + 1
        fn(job, i)
      end
    end
  end

  local total = type(jobs) == "table" and #jobs or nil
  -- The command of job i, its job slot given; nil for a job --plus's
  -- {choose_k} or {uniq} skips.
  local function build(job, i, slot)
    local item = item_of(job, batched, names)
    if #command == 0 then
      return table.concat(item, " ")
    end
    if quoted then
      if not next(wparts) then
        local ws = words
        if slot then
          ws = {}
          for k, w in ipairs(words) do
            ws[k] = w:gsub("{%%}", tostring(slot))
          end
        end
        return template.argv(ws, item, i)
      end
      -- word by word: a word with expand.lua's strings is one argument,
      -- its values put in as they are (no shell to quote for)
      local ctx = { item = item, i = i, slot = slot or 1, slots = slots, total = total, raw = true }
      local argv = {}
      for k, w in ipairs(words) do
        if slot then
          w = w:gsub("{%%}", tostring(slot))
        end
        local wp = wparts[k]
        if wp and wp.filter and not expand.keep(wp.filter, item) then
          return nil
        elseif wp then
          local out = {}
          for j, part in ipairs(wp) do
            out[j] = type(part) == "string" and table.concat(template.argv({ part }, item, i), " ") or part(ctx)
          end
          argv[#argv + 1] = table.concat(out)
        else
          local ws = template.argv({ w }, item, i)
          table.move(ws, 1, #ws, #argv + 1, argv)
        end
      end
      return argv
    end
    local function text(t)
      if slot then
        t = t:gsub("{%%}", tostring(slot))
      end
      if per > 1 or o.N then
        t = drop_missing(t, #item)
      end
      return t
    end
    if parts then
      if parts.filter and not expand.keep(parts.filter, item) then
        return nil
      end
      local ctx = { item = item, i = i, slot = slot or 1, slots = slots, total = total }
      local out = {}
      for k, part in ipairs(parts) do
        out[k] = type(part) == "string" and template.fmt(text(part), item, i) or part(ctx)
      end
      return table.concat(out)
    end
    local t = text(tpl)
    if o["-X"] then
      return context_replace(t, item, i)
    end
    return template.fmt(t, item, i)
  end

  local function show(cmd)
    if type(cmd) == "table" then
      local q = {}
      for k, w in ipairs(cmd) do
        q[k] = template.quote(w)
      end
      return table.concat(q, " ")
    end
    return cmd
  end

  if o["--shellquote"] then
    each(function(job)
      local item = item_of(job, batched, names)
      for k, v in ipairs(item) do
        item[k] = template.quote(v)
      end
      print(table.concat(item, " "))
    end)
    return 0
  end
  if o["--dry-run"] then
    each(function(job, i)
      local cmd = build(job, i, 1)
      if cmd then
        print(show(cmd))
      end
    end)
    return 0
  end

  local function raw(s, item, i)
    local out = template.argv({ s }, item, i)
    return table.concat(out, " ")
  end
  local popts = output_options(o, function(s, item, i)
    return raw(s, item_of(item, batched, names), i)
  end)
  popts.jobs = slots
  popts.report, popts.trace = o.report, o.trace
  popts.shell = gnu_shell()
  local resfmt = gnuout.format(o.results)
  if resfmt or o["--files"] then
    popts.results = nil -- the job's output goes to the file instead
  end
  for k, v in pairs(job_options(o)) do
    popts[k] = v
  end
  if o["--no-progress"] or o["--progress"] then
    progress.force(not o["--no-progress"])
  end
  local p = new_pool(popts)
  local capture = (resfmt or o["--files"]) and true or nil
  local row_of, put_row, rows_rest
  if resfmt then
    local write
    row_of, write = gnuout.results(o.results, resfmt, names)
    put_row, rows_rest = printer(o["-k"], write)
  end
  local file_of = o["--files"] and gnuout.files(o.tmpdir)
  local print_name, print_rest = printer(o["-k"])
  local skipped = 0
  pool.gnu_env(p) -- $PARALLEL_JOBSLOT, $PARALLEL_SEQ

  p:map(function(job, i)
    -- {%} is the task's slot, the $PARALLEL_JOBSLOT its job gets
    local cmd = build(job, i, pool.slot())
    if cmd == nil then -- skipped by {choose_k} or {uniq}
      skipped = skipped + 1
      if file_of then
        print_name(i, "")
      end
      if put_row then
        put_row(i, "")
      end
      return
    end
    if o["-t"] then
      io.stderr:write(show(cmd), "\n")
    end
    local r = shell.run(wrapped(cmd, o, popts.shell), { cwd = o.workdir, capture = capture, stdin = job.chunk })
    if put_row then
      put_row(i, row_of(r, i, show(cmd), item_of(job, batched, names)))
    end
    if file_of then
      -- GNU parallel prints the names of the files, tagged, and drops stderr
      local tag = popts.tag and popts.tag(job, i) .. "\t" or ""
      print_name(i, tag .. file_of(i, r.stdout or "") .. "\n")
    end
  end, jobs)
  print_rest()
  if rows_rest then
    rows_rest()
  end

  local stats = state
  progress.finish()
  local want = stats.summary
  if o["--summary"] or o["--no-summary"] then
    want = not o["--no-summary"]
  end
  summary.report(want)
  local reported = report.finish()
  -- GNU parallel counts the jobs {choose_k} or {uniq} skip as failed
  local status = math.min(stats.failed + skipped, 101)
  if stats.halt_status ~= nil and popts.halt then
    local spec = options.halt(popts.halt)
    if spec and spec.count == 1 and spec.kind ~= "success" then
      status = stats.halt_status
    elseif spec and spec.pct and spec.kind == "fail" and type(jobs) == "table" then
      -- the percentage of the jobs that failed, as GNU parallel gives it
      status = math.min(math.floor(stats.failed * 100 / math.max(#jobs, 1)), 101)
    elseif spec and spec.kind == "success" then
      status = 0
    end
  end
  if not reported and status == 0 then
    status = 1
  end
  return status
end

---------------------------------------------------------------------------
-- tide [options] script.lua: options for a script

-- The one-liner options that mean something to a script's pools.
local FOR_SCRIPTS = {
  jobs = true, joblog = true, ["--resume"] = true, ["--resume-failed"] = true, timeout = true,
  retries = true, halt = true, delay = true, load = true, memfree = true, ["-k"] = true,
  ["--tag"] = true, ["--line-buffer"] = true, ["-u"] = true, ["--group"] = true, results = true,
  ["--dry-run"] = true, ["--summary"] = true, ["--no-summary"] = true, ["--progress"] = true,
  ["--no-progress"] = true, sshlogin = true, slf = true, ssh = true, ["--will-cite"] = true,
  report = true, trace = true,
}

-- The options before a script (args[1 .. first - 1]) as the defaults of
-- its pools: each pool{...} or pool(n) the script makes starts from them
-- (its own options win).  An option that means nothing to a script is an
-- error naming it (exit 255), never ignored.  --resume without --joblog
-- resumes the script's item records (the record option).  Returns the
-- pool options and that resume, or nil and tide's exit status.
function M.script_defaults(args, first)
  local ok, res = pcall(function()
    local before = table.move(args, 1, first - 1, 1, {})
    local o = parse(before)
    if #o.sources > 0 then
      die("option '-a' does not apply to a script (only to a one-liner's command line)")
    end
    for k in pairs(o) do
      if k ~= "sources" and k ~= "command" and not FOR_SCRIPTS[k] then
        local flag = VALUED[k] or k
        die("option '%s' does not apply to a script (only to a one-liner's command line)", flag)
      end
    end
    if gnuout.format(o.results) then
      -- not silently a directory named x.csv
      die("option '--results %s' (a %s file) applies only to a one-liner; a script's --results is a directory",
        o.results, gnuout.format(o.results))
    end
    local popts = output_options(o, function() end)
    popts.report, popts.trace = o.report, o.trace
    if o["--tag"] then
      popts.tag = true
    end
    local resume = o["--resume-failed"] and "failed" or o["--resume"] or nil
    if resume and not o.joblog then
      o["--resume"], o["--resume-failed"] = nil, nil
    else
      resume = nil
    end
    for k, v in pairs(job_options(o)) do
      popts[k] = v
    end
    popts.dry_run = o["--dry-run"] or nil
    if o.jobs then
      popts.jobs = jobs_value(o.jobs, 1000)
    end
    if o["--summary"] or o["--no-summary"] then
      popts.summary = not o["--no-summary"]
    end
    if o["--progress"] or o["--no-progress"] then
      popts.progress = not o["--no-progress"]
    end
    new_pool(popts)
    return { popts, resume }
  end)
  if ok then
    return res[1], res[2]
  end
  io.stderr:write("tide: ", getmetatable(res) == Usage and res.msg or tostring(res), "\n")
  return nil, 255
end

-- The option tables, read by the tests that keep the man page, the bash
-- completion and docs/gnu-parallel.md in step with the code: OPTIONS
-- (tide's, aliases included), NOT_YET (among them, those that stop with
-- "not available yet") and GNU (every option of GNU parallel's).
M.OPTIONS, M.NOT_YET, M.GNU = OPTIONS, NOT_YET, GNU

-- Whether a one-liner option (as written: "--joblog", "-j") takes a
-- value in the next word.
function M.takes_value(name)
  local spec = OPTIONS[name]
  if type(spec) == "string" and spec:sub(1, 1) == "-" then
    spec = OPTIONS[spec]
  end
  return type(spec) == "string"
end

-- Runs the one-liner given by tide's arguments; returns the exit status.
function M.main(args)
  local ok, status = pcall(function()
    return run(parse(args))
  end)
  if ok then
    io.stdout:flush()
    return status
  end
  io.stdout:flush()
  if getmetatable(status) == Usage then
    io.stderr:write("tide: ", status.msg, "\n")
    return 255
  end
  -- an error while running (a results directory that cannot be made...):
  -- its message alone, without where in tide it was raised
  local msg = tostring(status):match("^[^\n]*")
  msg = msg:gsub("^tide/[%w_/]+%.lua:%d+: ", ""):gsub("^map: item %d+ failed: ", "")
    :gsub("^map: the list iterator raised an error: ", "")
  msg = msg:gsub("^tide/[%w_/]+%.lua:%d+: ", "")
  io.stderr:write("tide: ", msg, "\n")
  return 255
end

return M
