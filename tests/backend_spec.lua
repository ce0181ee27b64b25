-- The same sweep run locally, on two ssh "hosts" (sshd on 127.0.0.1 under
-- two names and ports, see scripts/services) and through Slurm (a
-- single-node slurmctld + slurmd on loopback) must give the same results.
local h = require("tests.helper")

local svc = h.services()

local function lua_string(s)
  return ("%q"):format(s)
end

local SSH_OPTS = ("hosts = {'2/%s', '3/%s'}, ssh = %s"):format(svc.host_a, svc.host_b, lua_string(svc.ssh))
-- ssh and Slurm through workers (the default), and through a session
-- or an srun per job
local BACKENDS = {
  { "local", "" },
  { "ssh", SSH_OPTS },
  { "slurm", "backend = 'slurm'" },
  { "ssh sessions", SSH_OPTS .. ", workers = false" },
  { "slurm steps", "backend = 'slurm', workers = false" },
}

local run = h.service_script

-- Prints every field of each result that must not depend on the backend,
-- one line per job.
local SWEEP = [[
local dir = %s
local p = pool{jobs = 4, %s}
local hostile = {"printf", "[%%s]", "a b", "'q'", '"d"', "$(touch " .. dir .. "/pwned)",
  "`x`", "\\", "*", "\t", ";&|<>", ""}
local cases = {
  {"echo out; echo err >&2"},
  {"exit 3"},
  {"exit 255"},
  {"kill -9 $$"},
  {"kill -TERM $$"},
  {hostile},
  {"pwd; printf '%%s\\n' \"$TIDE_X\"; echo ${TIDE_GONE-unset}",
   {cwd = "/usr", env = {TIDE_X = "a b$c'd", TIDE_GONE = false}}},
  {"cat; echo", {stdin = "line1\nline2 \0 bytes"}},
  {"sleep 30", {timeout = 1}},
  {"test -e tried || { touch tried; echo first >&2; exit 1; }; echo second", {cwd = dir, retries = 2}},
  {"head -c 300000 /dev/zero | tr '\\0' x; echo"},
  {"printf 'no newline'"},
  {"/nonexistent/program"},
}
local rs = p:map(function(c)
  local o = {capture = true}
  for k, v in pairs(c[2] or {}) do o[k] = v end
  return shell(c[1], o)
end, cases)
for i, r in ipairs(rs) do
  r.stdout = r.stdout:gsub(dir:gsub("%%p", "%%%%%%0"), "DIR") -- each run has its own
  if #r.stdout > 1000 then -- the whole of it would drown a failure message
    r.stdout = ("%%d bytes, %%d x"):format(#r.stdout, select(2, r.stdout:gsub("x", "")))
  end
  print(("%%d ok=%%s code=%%s signal=%%s timed_out=%%s attempts=%%d out=%%q err=%%q"):format(
    i, r.ok, r.code, r.signal, r.timed_out, r.attempts, r.stdout, r.stderr))
end
local f = io.open(dir .. "/pwned")
print("pwned", f ~= nil)
-- where the jobs ran: not compared between backends
local hosts = {}
for _, r in ipairs(rs) do
  hosts[#hosts + 1] = r.host or "-"
end
local w = p:map(function()
  return shell("echo ${SLURM_STEP_ID+slurm}${SSH_CONNECTION+ssh}", {capture = true})
end, {1})[1]
print("where", w.stdout:gsub("\n", ""), table.concat(hosts, " "))
]]

describe("backends", function()
  local outputs = {}
  for _, b in ipairs(BACKENDS) do
    it("run the sweep on " .. b[1], function()
      local dir = h.tmpdir()
      local r = run(SWEEP:format(lua_string(dir), b[2]))
      os.execute("rm -rf " .. h.quote(dir))
      assert.are.equal(1, r.code, r.err) -- some jobs fail
      local out, where = r.out:match("^(.*)where\t([^\n]*)\n$")
      assert.is_not_nil(out, r.out)
      outputs[b[1]] = out
      assert.matches('1 ok=true code=0 signal=nil timed_out=nil attempts=1 out="out\\\n" err="err\\\n"', out, 1, true)
      assert.matches("2 ok=false code=3 signal=nil", out, 1, true)
      assert.matches("3 ok=false code=255 signal=nil", out, 1, true)
      assert.matches("4 ok=false code=nil signal=SIGKILL", out, 1, true)
      assert.matches("5 ok=false code=nil signal=SIGTERM", out, 1, true)
      local OK = "ok=true code=0 signal=nil timed_out=nil attempts=1 "
      assert.matches([=[6 ]=] .. OK .. [=[out="[a b]['q'][\"d\"][$(touch DIR/pwned)]]=], out, 1, true)
      assert.matches([=[[`x`][\\][*][\9][;&|<>][]" err=""]=], out, 1, true)
      assert.matches('7 ' .. OK .. 'out="/usr\\\na b$c\'d\\\nunset\\\n"', out, 1, true)
      assert.matches('8 ' .. OK .. 'out="line1\\\nline2 \\0 bytes\\\n"', out, 1, true)
      assert.matches("9 ok=false code=nil signal=SIGTERM timed_out=true attempts=1", out, 1, true)
      assert.matches('10 ok=true code=0 signal=nil timed_out=nil attempts=2 out="second\\\n" err=""', out, 1, true)
      assert.matches('11 ok=true code=0 signal=nil timed_out=nil attempts=1 out="300001 bytes, 300000 x"', out, 1, true)
      assert.matches('12 ok=true code=0 signal=nil timed_out=nil attempts=1 out="no newline" err=""', out, 1, true)
      assert.matches("13 ok=false code=127", out, 1, true)
      assert.matches("pwned\tfalse", out, 1, true)
      if b[1]:find("^ssh") then
        assert.matches("^ssh\t", where)
        assert.matches(" " .. svc.host_a .. " ", where, 1, true)
        assert.matches(" " .. svc.host_b .. " ", where, 1, true)
      elseif b[1] == "slurm" then
        assert.matches("^slurm\ttide ", where) -- the node's worker ran them
      elseif b[1] == "slurm steps" then
        assert.matches("^slurm\tslurm ", where)
      else
        assert.matches("^\t%- %-", where)
      end
    end)
  end

  -- output modes, tags, input order, the job log and resume, on top of
  -- each backend
  local FEATURES = [[
local log = %s
local opts = {jobs = 3, output = "group", order = "input", tag = true, joblog = log, %s}
local rs = pool(opts):map(function(i)
  return shell("echo out " .. i .. "; echo err " .. i .. " >&2; exit " .. (i == 2 and 4 or 0))
end, {1, 2, 3})
opts.resume, opts.output, opts.tag = "failed", "null", nil
local again = pool(opts):map(function(i) return shell("echo out " .. i .. "; echo err " .. i .. " >&2; exit "
  .. (i == 2 and 4 or 0)) end, {1, 2, 3})
for i, r in ipairs(again) do
  io.stderr:write(("again %%d ok=%%s code=%%s resumed=%%s\n"):format(i, r.ok, r.code, r.resumed))
end
]]
  local features = {}
  for _, b in ipairs(BACKENDS) do
    it("keep output modes, the job log and resume on " .. b[1], function()
      local dir = h.tmpdir()
      local r = run(FEATURES:format(lua_string(dir .. "/log"), b[2]))
      local log = h.slurp(dir .. "/log")
      os.execute("rm -rf " .. h.quote(dir))
      assert.are.equal(1, r.code, r.err)
      assert.are.equal("1\tout 1\n2\tout 2\n3\tout 3\n", r.out)
      assert.matches("1\terr 1\n", r.err, 1, true)
      assert.matches("2\terr 2\n", r.err, 1, true)
      -- the failed job runs again, the others come back from the log
      assert.matches("again 1 ok=true code=0 resumed=true\n", r.err, 1, true)
      assert.matches("again 2 ok=false code=4 resumed=nil\n", r.err, 1, true)
      assert.matches("again 3 ok=true code=0 resumed=true\n", r.err, 1, true)
      local lines = {}
      for seq, code, cmd in log:gmatch("\n(%d+)\t[^\t]+\t[%d.]+\t[%d.]+\t0\t0\t(%d+)\t0\t([^\n]*)") do
        lines[#lines + 1] = table.concat({ seq, code, cmd }, " ")
      end
      table.sort(lines)
      features[b[1]] = table.concat(lines, "\n")
      assert.are.equal(4, #lines, log)
    end)
  end

  it("give identical job logs everywhere", function()
    assert.is_not_nil(features["local"])
    for _, b in ipairs(BACKENDS) do
      assert.are.equal(features["local"], features[b[1]], b[1])
    end
  end)

  it("give identical results everywhere", function()
    for _, b in ipairs(BACKENDS) do
      assert.is_not_nil(outputs[b[1]], b[1] .. " did not run")
    end
    -- the shell's own "not found" message names the shell that ran it
    local function same(s)
      return (s:gsub("13 ok=false code=127[^\n]*", "13"))
    end
    for _, b in ipairs(BACKENDS) do
      assert.are.equal(same(outputs["local"]), same(outputs[b[1]]), b[1])
    end
  end)
end)
