-- helper.lua: runs the real tide binary as a subprocess, as a user would.
-- The binary is $TIDE (set by ctest), else build/tide.
local M = {}

M.TIDE = os.getenv("TIDE") or "build/tide"
M.SANITIZED = os.getenv("TIDE_SANITIZED") == "1"

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end
M.slurp = slurp

function M.spit(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
  return path
end

function M.quote(s)
  return "'" .. tostring(s):gsub("'", [['\'']]) .. "'"
end
local q = M.quote

function M.tmpdir()
  local p = io.popen("mktemp -d /tmp/tide-test.XXXXXX")
  local d = p:read("l")
  p:close()
  return d
end

function M.now()
  local p = io.popen("date +%s.%N")
  local t = tonumber(p:read("l"))
  p:close()
  return t
end

-- Runs `tide args...` with opts.stdin (string), opts.env (table), opts.sh
-- (a shell prefix such as "ulimit -n 64;") and a hard timeout, so a hang
-- fails the test instead of the suite.  Returns {code, out, err, secs}.
function M.run(args, opts)
  opts = opts or {}
  local dir = M.tmpdir()
  local words = {}
  for i, a in ipairs(args) do
    words[i] = q(a)
  end
  local env = {}
  for k, v in pairs(opts.env or {}) do
    env[#env + 1] = k .. "=" .. q(v)
  end
  local stdin = "/dev/null"
  if opts.stdin then
    stdin = M.spit(dir .. "/in", opts.stdin)
  end
  local cmd = ("cd %s && %s t0=$(date +%%s%%N); %s timeout -s KILL %d %s %s <%s >%s/out 2>%s/err; "
    .. "echo $? $(( ($(date +%%s%%N) - t0) / 1000000 ))"):format(
    q(opts.cwd or "."), opts.sh or "", table.concat(env, " "), opts.timeout or 120,
    q(M.TIDE), table.concat(words, " "), stdin, dir, dir)
  local p = io.popen(cmd)
  local code, ms = p:read("n", "n")
  p:close()
  local r = { code = code, out = slurp(dir .. "/out"), err = slurp(dir .. "/err"), secs = ms / 1000 }
  os.execute("rm -rf " .. q(dir))
  return r
end

-- Writes src to a temporary script and runs it with tide.
function M.script(src, args, opts)
  local dir = M.tmpdir()
  local path = M.spit(dir .. "/script.lua", src)
  local argv = { path }
  for _, a in ipairs(args or {}) do
    argv[#argv + 1] = a
  end
  local r = M.run(argv, opts)
  os.execute("rm -rf " .. q(dir))
  return r
end

-- Processes whose command line contains marker (tests put a unique marker
-- in job commands to check that nothing outlives tide).
function M.pgrep(marker)
  local p = io.popen("pgrep -f " .. q(marker) .. " | wc -l")
  local n = tonumber(p:read("l"))
  p:close()
  return n
end

return M
