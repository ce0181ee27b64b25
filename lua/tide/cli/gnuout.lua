-- cli/gnuout.lua: the one-liner outputs that replace a job's printed
-- output, as GNU parallel 20221122 writes them: --results NAME.csv, .tsv
-- or .json (one row or object per job, in the order jobs end) and --files
-- (each job's stdout in a file of its own; its name is printed).
local core = require("tide.core")
local result = require("tide.run.result")
local util = require("tide.util")

local M = {}

-- "csv", "tsv" or "json" for a --results name ending so (any case), else
-- nil: a directory, as before.
function M.format(name)
  local ext = name and name:lower():match("%.(%a+)$")
  if ext == "csv" or ext == "tsv" or ext == "json" then
    return ext
  end
end

-- A field as GNU's combine_ref writes it: quoted when it holds a quote,
-- white space, the separator or a NUL, quotes doubled.
local function field(s, sep)
  s = tostring(s)
  local doubled, n = s:gsub('"', '""')
  if n > 0 or s:find("[%s%z]") or s:find(sep, 1, true) then
    return '"' .. doubled .. '"'
  end
  return s
end

-- jsonquote: \ and " escaped, control characters as \u00XX.
local function jsonquote(s)
  return (s:gsub('[\\"]', "\\%0"):gsub("[%c]", function(c)
    if c:byte() < 32 then
      return ("\\u%04x"):format(c:byte())
    end
  end))
end

-- The job's exit value and signal as GNU parallel logs them.
local function status(r)
  return math.tointeger(r.code) or -1, result.logged_signal(r)
end

-- --results path in format fmt (M.format's); names: the --header column
-- names, if any.  Returns row(r, i, cmd, values), the text of a job's row
-- (values: its arguments; the CSV header is written before the first),
-- and write(text), which appends it.  An unopenable file is an error.
function M.results(path, fmt, names)
  local f, err = io.open(path, "wb")
  if not f then
    error(("cannot open results file %s"):format(err), 0)
  end
  f:setvbuf("no")
  local sep = fmt == "tsv" and "\t" or ","
  local header = false
  local function write(text)
    util.checked(f:write(text))
  end
  local function row_of(r, i, cmd, values)
    local code, sig = status(r)
    local out, errout = r.stdout or "", r.stderr or ""
    local start, runtime = ("%.3f"):format(r.start or core.time()), ("%.3f"):format(r.elapsed or 0)
    local line
    if fmt == "json" then
      local v = {}
      for k, x in ipairs(values) do
        v[k] = '"' .. jsonquote(x) .. '"'
      end
      line = ('{ "Seq": %d, "Host": "%s", "Starttime": %s, "JobRuntime": %s, "Send": 0, "Receive": %d, '
        .. '"Exitval": %d, "Signal": %d, "Command": "%s", "V": [ %s ], "Stdout": "%s", "Stderr": "%s" }\n')
        :format(i, jsonquote(r.host or ":"), start, runtime, #out, code, sig, jsonquote(cmd),
          table.concat(v, ","), jsonquote(out), jsonquote(errout))
    else
      local row = { i, r.host or ":", start, runtime, 0, #out, code, sig, cmd }
      for _, x in ipairs(values) do
        row[#row + 1] = x
      end
      table.move({ out, errout }, 1, 2, #row + 1, row)
      if not header then
        header = true
        local head = { "Seq", "Host", "Starttime", "JobRuntime", "Send", "Receive", "Exitval", "Signal", "Command" }
        for k = 1, #values do
          head[#head + 1] = names[k] or ("V" .. k)
        end
        table.move({ "Stdout", "Stderr" }, 1, 2, #head + 1, head)
        write(table.concat(M.fields(head, sep), sep) .. "\n")
      end
      line = table.concat(M.fields(row, sep), sep) .. "\n"
    end
    return line
  end
  return row_of, write
end

function M.fields(row, sep)
  local out = {}
  for k, v in ipairs(row) do
    out[k] = field(v, sep)
  end
  return out
end

-- --files: a directory of this run's own under $TMPDIR (--tmpdir), made
-- on first use by mkdtemp (nobody else's directory or link can stand in
-- for it), and a file in it per job.  Returns name(i, stdout): the
-- file's name once stdout is written there.
function M.files(tmpdir)
  local dir
  return function(i, out)
    if not dir then
      local base = (tmpdir or os.getenv("TMPDIR") or "/tmp"):gsub("/+$", "")
      local msg
      dir, msg = core.mkdtemp(base .. "/tide-files-XXXXXX")
      if not dir then
        error(("--files: cannot create a directory in %s (%s)"):format(base, msg), 0)
      end
    end
    local name = ("%s/%d.par"):format(dir, i)
    local f, err = io.open(name, "wb")
    if not f then
      error(("--files: %s"):format(err), 0)
    end
    local ok, werr = f:write(out)
    f:close()
    if not ok then
      error(("--files: cannot write %s: %s"):format(name, werr), 0)
    end
    return name
  end
end

return M
