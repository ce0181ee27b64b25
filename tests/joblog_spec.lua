-- Run bookkeeping: job log, resume, dry run, per-job resources, summary.
local h = require("tests.helper")
local summary = require("tests.summary")
local q = h.quote

local LINE = "^(%d+)\t:\t(%d+%.%d%d%d)\t(%d+%.%d%d%d)\t0\t0\t(%-?%d+)\t(%d+)\t(.*)$"

local lines = h.file_lines

local function count(s, word)
  local n = 0
  for l in s:gmatch("[^\n]+") do
    if l == word then
      n = n + 1
    end
  end
  return n
end

describe("job log", function()
  local dir
  h.tmpdir_each(function(d)
    dir = d
  end)

  it("writes GNU parallel's format, one line per job, shared by pools", function()
    local r = h.script([[
      local log = ...
      local t0 = os.time()
      pool{jobs = 2, joblog = log}:map(function(c) return shell(c) end, { "true", "exit 3", "kill -9 $$" })
      pool{jobs = 1, joblog = log}:map(function(c) return shell(c) end, { "sleep 0.2" })
      print(t0)
    ]], { dir .. "/log" })
    assert.are.equal(1, r.code, r.err)
    local t0 = tonumber(r.out)
    local l = lines(dir .. "/log")
    assert.are.equal("Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand", l[1])
    assert.are.equal(5, #l)
    local by = {}
    for i = 2, 5 do
      local seq, start, runtime, code, sig, cmd = l[i]:match(LINE)
      assert.truthy(seq, l[i])
      assert.truthy(math.abs(tonumber(start) - t0) < 5, l[i])
      by[cmd] = { seq = tonumber(seq), runtime = tonumber(runtime), code = tonumber(code), sig = tonumber(sig) }
    end
    assert.are.same({ 1, 0, 0 }, { by["true"].seq, by["true"].code, by["true"].sig })
    assert.are.same({ 2, 3, 0 }, { by["exit 3"].seq, by["exit 3"].code, by["exit 3"].sig })
    assert.are.same({ 3, 9 }, { by["kill -9 $$"].seq, by["kill -9 $$"].sig })
    assert.truthy(by["sleep 0.2"].runtime >= 0.19, l[5])
  end)

  it("is accepted by GNU parallel --resume, which skips the logged jobs", function()
    local r = h.run({ "--joblog", dir .. "/log", "echo tide {} >> " .. dir .. "/out", ":::", "a", "b", "c" })
    assert.are.equal(0, r.code, r.err)
    local cmd = ("cd %s && parallel --will-cite --resume --joblog log 'echo gnu {} >> out' ::: a b c d 2>&1; echo $?")
      :format(q(dir))
    local p = io.popen(cmd)
    local said = p:read("a")
    p:close()
    assert.truthy(said:find("0\n$"), said)
    local out = h.slurp(dir .. "/out")
    assert.are.equal(3, select(2, out:gsub("tide ", "")), out)
    assert.are.equal("gnu d\n", out:match("gnu.*$"), out)
    -- and tide reads GNU parallel's lines back
    r = h.run({ "--joblog", dir .. "/log", "--resume", "echo gnu {} >> out", ":::", "d", "e" }, { cwd = dir })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("gnu d\ngnu e\n", h.slurp(dir .. "/out"):match("gnu.*$"))
  end)

  it("with resume skips jobs by content, whatever their order", function()
    local src = [[
      local log, items = ...
      local p = pool{jobs = 2, joblog = log, resume = true}
      local rs = p:map(function(x) return shell("echo ran " .. x) end, load("return " .. items)())
      for i, r in ipairs(rs) do
        print(i, r.ok, r.code, r.resumed or false, type(r.elapsed))
      end
    ]]
    local r = h.script(src, { dir .. "/log", "{ 1, 2, 3 }" })
    assert.are.equal(0, r.code, r.err)
    r = h.script(src, { dir .. "/log", "{ 3, 4, 1, 5 }" })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(0, count(r.out, "ran 1") + count(r.out, "ran 3"), r.out)
    assert.are.equal(1, count(r.out, "ran 4"), r.out)
    assert.are.equal(1, count(r.out, "ran 5"), r.out)
    assert.truthy(r.out:find("1\ttrue\t0\ttrue\tnumber\n", 1, true), r.out)
    assert.truthy(r.out:find("2\ttrue\t0\tfalse\tnumber\n", 1, true), r.out)
  end)

  it("with resume = 'failed' also reruns the failed jobs; resume = true does not", function()
    local src = [[
      local log, mode, flag = ...
      local resume = mode == "failed" and "failed" or true
      local p = pool{jobs = 2, joblog = log, resume = resume}
      p:map(function(x)
        local r = shell(("echo ran %s; test -e %s"):format(x, flag), { env = { X = x } })
        print(x, r.ok, r.resumed or false)
      end, { "a", "b" })
    ]]
    local flag = dir .. "/flag"
    local r = h.script(src, { dir .. "/log", "true", flag })
    assert.are.equal(1, r.code)
    h.spit(flag, "")
    r = h.script(src, { dir .. "/log", "true", flag })
    assert.are.equal(0, count(r.out, "ran a"), r.out)
    assert.truthy(r.out:find("a\tfalse\ttrue", 1, true), r.out)
    r = h.script(src, { dir .. "/log", "failed", flag })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(1, count(r.out, "ran a"), r.out)
    assert.are.equal(1, count(r.out, "ran b"), r.out)
    -- the env the job was given is part of its key, after a marker
    assert.truthy(h.slurp(dir .. "/log"):find("test %-e [^\n]* #tide env=X=a\n"))
  end)

  it("does not count a resumed failure for the exit status or a halt", function()
    local src = [[
      local log = ...
      local p = pool{jobs = 1, joblog = log, resume = true, halt = "now,fail=1"}
      local rs = p:map(function(x) return shell(x == 1 and "exit 2" or "true") end, { 1, 2, 3 })
      print(rs.halted, rs[1].ok, rs[1].resumed, rs[1].code, rs[3].ok)
    ]]
    local r = h.script(src, { dir .. "/log" })
    assert.are.equal(2, r.code)
    r = h.script(src, { dir .. "/log" })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("nil\tfalse\ttrue\t2\ttrue\n", r.out)
    assert.are.equal("", r.err)
  end)

  it("after kill -9, resume runs every job exactly once in total", function()
    -- Rounds of 4 jobs of 0.6 s; tide is killed 0.2 s into the second
    -- round, far from any job's end.  The jobs running then die with tide
    -- (they must not go on, append, and run again on resume).
    local src = [[
      local log, out, dir = ...
      local items = {}
      for i = 1, 12 do items[i] = i end
      pool{jobs = 4, joblog = log, resume = true}:map(function(i)
        shell(("touch %s/started.%d; sleep 0.6; echo %d >> %s"):format(dir, i, i, out))
      end, items)
    ]]
    local script = h.spit(dir .. "/s.lua", src)
    local log, out = dir .. "/log", dir .. "/out"
    -- after the kill, longer than the jobs that were running would take
    os.execute(("%s %s %s %s %s >/dev/null 2>&1 & pid=$!; n=0; "
      .. "while [ ! -e %s/started.5 ] && [ $n -lt 1000 ]; do sleep 0.01; n=$((n+1)); done; "
      .. "sleep 0.2; kill -9 $pid; wait $pid 2>/dev/null; sleep 0.8")
      :format(q(h.TIDE), q(script), q(log), q(out), q(dir), q(dir)))
    local logged, nlogged = {}, 0
    for i, l in ipairs(lines(log)) do
      if i > 1 then
        local cmd = select(6, l:match(LINE))
        logged[tonumber(cmd:match("echo (%d+)"))] = true
        nlogged = nlogged + 1
      end
    end
    local before = h.slurp(out)
    assert.truthy(nlogged > 0 and nlogged < 12, "logged before the kill: " .. nlogged)
    -- what was appended before the rerun is exactly what was logged
    for i = 1, 12 do
      assert.are.equal(logged[i] and 1 or 0, count(before, tostring(i)), "item " .. i .. " before the rerun")
    end
    local r = h.run({ script, log, out, dir })
    assert.are.equal(0, r.code, r.err)
    local all = h.slurp(out)
    for i = 1, 12 do
      assert.are.equal(1, count(all, tostring(i)), "item " .. i .. " in total:\n" .. all)
    end
  end)

  it("rejects bad values, naming the option", function()
    local r = h.script([[
      for _, o in ipairs({ { joblog = 5 }, { joblog = "" }, { resume = "yes" }, { dry_run = 1 }, { summary = "y" } }) do
        local ok, err = pcall(pool, o)
        print(ok, err)
      end
      local ok, err = pcall(shell, "true", { resume = true })
      print(ok, err)
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("option 'joblog' must be a file name, got 5", 1, true), r.out)
    assert.truthy(r.out:find("option 'resume' must be true, false or 'failed'", 1, true), r.out)
    assert.truthy(r.out:find("option 'dry_run' must be a boolean", 1, true), r.out)
    assert.truthy(r.out:find("option 'summary' must be a boolean", 1, true), r.out)
    assert.truthy(r.out:find("option 'resume' needs option 'joblog'", 1, true), r.out)
    r = h.script([[
      local ok, err = pcall(function()
        return pool{jobs = 1, joblog = "/nonexistent/dir/log"}:map(function() shell("true") end, { 1 })
      end)
      print(ok, err)
    ]])
    assert.truthy(r.out:find("^false\t.*joblog: /nonexistent/dir/log"), r.out)
    r = h.run({ "--resume", "echo", ":::", "a" })
    assert.are.equal(255, r.code)
    assert.truthy(r.err:find("--resume", 1, true), r.err)
  end)
end)

describe("dry run", function()
  it("prints each command in input order and runs nothing", function()
    local dir = h.tmpdir()
    local r = h.script([[
      local dir = ...
      local rs = pool{jobs = 3, dry_run = true}:map(function(i)
        return shell(("sleep 0.0%d; touch %s/%d"):format(4 - i, dir, i))
      end, { 1, 2, 3 })
      for i, r in ipairs(rs) do print(r.ok, r.dry_run, r.code) end
    ]], { dir })
    local made = io.popen("ls " .. q(dir)):read("a")
    os.execute("rm -rf " .. q(dir))
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("", made)
    local want = ("sleep 0.03; touch %s/1\nsleep 0.02; touch %s/2\nsleep 0.01; touch %s/3\n"):format(dir, dir, dir)
    assert.are.equal(want .. ("true\ttrue\t0\n"):rep(3), r.out)
  end)
end)

describe("per-job resources", function()
  it("are in each result and in results.jsonl", function()
    local dir = h.tmpdir()
    local r = h.script([[
      local dir = ...
      local a = shell("true")
      local b = shell("true", { timeout = 10 })
      print(type(a.user), type(a.sys), math.type(a.maxrss), a.maxrss > 0, math.type(b.maxrss))
      pool{jobs = 1, results = dir}:map(function() shell("true") end, { 1 })
    ]], { dir })
    local jsonl = io.popen("cat " .. q(dir) .. "/results.jsonl " .. q(dir) .. "/*/results.jsonl 2>/dev/null"):read("a")
    os.execute("rm -rf " .. q(dir))
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("number\tnumber\tinteger\ttrue\tinteger\n", r.out)
    assert.truthy(jsonl:find('"maxrss":%d+'), jsonl)
    assert.truthy(jsonl:find('"user":'), jsonl)
  end)
end)

describe("summary", function()
  it("is printed with summary = true: counts, failures, slowest", function()
    local r = h.script([[
      pool{jobs = 2, summary = true}:map(function(c) return shell(c) end,
        { "sleep 0.2", "exit 3", "true", "sleep 0.1" })
    ]])
    assert.are.equal(1, r.code)
    assert.truthy(r.err:find("summary: 4 jobs run, 3 succeeded, 1 failed, 0 skipped by resume", 1, true), r.err)
    assert.truthy(r.err:find("failed (exit 3): exit 3", 1, true), r.err)
    assert.truthy(r.err:find("slowest #1: 0%.%d+s sleep 0%.2\n"), r.err)
    assert.truthy(r.err:find("slowest #2: 0%.%d+s sleep 0%.1\n"), r.err)
    -- a job failed: the failure line comes first, the summary after it
    assert.truthy(r.err:find("^tide: 1 of 4 jobs failed\ntide: summary: "), r.err)
    assert.truthy(r.err:find(summary.pattern(1, 4, 0, { { "exit 3", "exit 3" } }, 3, { "sleep 0.2", "sleep 0.1" })),
      r.err)
  end)

  it("is printed whenever a job failed: failed commands and codes, skipped by resume, slowest", function()
    local dir = h.tmpdir()
    local src = [[
      local log, stage = ...
      local cmds = { "echo a" }
      if stage == "2" then
        cmds = { "echo a", "exit 3", "sleep 0.3", "kill -9 $$", "exit 4", "sleep 0.2", "exit 5", "exit 6", "exit 7",
          "exit 8", "true" }
      end
      pool{jobs = 1, joblog = log, resume = true}:map(function(c) return shell(c) end, cmds)
    ]]
    local r = h.script(src, { dir .. "/log", "1" })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("", r.err)
    r = h.script(src, { dir .. "/log", "2" })
    os.execute("rm -rf " .. q(dir))
    assert.are.equal(1, r.code)
    -- the first 5 failures in the order they ended, then how many more
    local failed = { { "exit 3", "exit 3" }, { "SIGKILL", "kill -9 $$" }, { "exit 4", "exit 4" },
      { "exit 5", "exit 5" }, { "exit 6", "exit 6" } }
    assert.truthy(r.err:find(summary.pattern(7, 10, 1, failed, 3, { "sleep 0.3", "sleep 0.2" })), r.err)
    -- a one-liner too
    r = h.run({ "-j1", "exit", ":::", "0", "2", "0" })
    assert.are.equal(1, r.code)
    assert.truthy(r.err:find(summary.pattern(1, 3, 0, { { "exit 2", "exit 2" } }, 3)), r.err)
  end)

  it("is printed with TIDE_SUMMARY=1", function()
    local r = h.script([[shell("true")]], nil, { env = { TIDE_SUMMARY = "1" } })
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.err:find("^tide: summary: 1 jobs run, 1 succeeded, 0 failed, 0 skipped by resume"), r.err)
    assert.truthy(r.err:find("slowest #1: 0%.%d+s true\n$"), r.err)
  end)

  it("is printed by the one-liner with --summary, and not without", function()
    local r = h.run({ "--summary", "true", ":::", "a", "b" })
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.err:find("summary: 2 jobs run, 2 succeeded, 0 failed", 1, true), r.err)
    r = h.run({ "true", ":::", "a", "b" })
    assert.are.equal("", r.err)
  end)
end)
