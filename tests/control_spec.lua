-- Job control (issue #3): timeouts, retries, halts, throttles, slots, and
-- the whole process tree gone on every exit path.
local h = require("tests.helper")
local summary = require("tests.summary")

-- Lua source of a function alive(marker) for scripts: how many processes
-- carry marker in their command line (the bracket keeps pgrep's own shell
-- from counting).
local ALIVE = [[
local function alive(marker)
  local p = io.popen("pgrep -f '[" .. marker:sub(1, 1) .. "]" .. marker:sub(2) .. "' | wc -l")
  local n = p:read("n")
  p:close()
  return n
end
]]

-- A job whose main process dies on SIGTERM while a grandchild that ignores
-- SIGTERM stays in its group, holding its stdout: sh -c '...'.
local function stubborn(sleep)
  return ("(trap '' TERM; exec %s 100) & exec %s 100"):format(sleep, sleep)
end

describe("timeouts", function()
  it("terminate a job that runs too long: ok false, timed_out, the signal", function()
    local r = h.script([[
      local r = shell("sleep 30", { timeout = 0.3 })
      print(r.ok, r.timed_out, r.signal, r.code, r.elapsed >= 0.25 and r.elapsed < 3)
      r = shell("sleep 0.05", { timeout = 5 })
      print(r.ok, r.timed_out)
    ]])
    assert.are.equal(1, r.code, r.err)
    assert.are.equal("false\ttrue\tSIGTERM\tnil\ttrue\ntrue\tnil\n", r.out)
    assert.truthy(r.err:find(summary.pattern(1, 2, 0, { { "timed out", "sleep 30" } }, 2,
      { "sleep 30", "sleep 0.05" })), r.err)
  end)

  it("take durations with units and apply a pool's timeout unless the call overrides it", function()
    local r = h.script([[
      local p = pool{ jobs = 2, timeout = "0.3s" }
      local res = p:map(function(opt)
        local r = shell("sleep 1", { timeout = opt })
        return tostring(r.timed_out)
      end, { n = 3, nil, false, "1m" })
      print(table.concat(res, " ", 1, 3))
    ]])
    assert.are.equal(1, r.code, r.err)
    assert.are.equal("true nil nil\n", r.out)
  end)

  it("send SIGKILL after kill_grace to a job that ignores SIGTERM", function()
    local r = h.script([[
      local r = shell({ "sh", "-c", "trap '' TERM; sleep 30; sleep 30" }, { timeout = 0.2, kill_grace = 0.5 })
      print(r.timed_out, r.signal, r.elapsed > 0.6 and r.elapsed < 3)
    ]])
    assert.are.equal(1, r.code, r.err)
    assert.are.equal("true\tSIGKILL\ttrue\n", r.out)
  end)

  it("do not wait for a grandchild that ignores SIGTERM and holds the pipe; it is killed too", function()
    local mark = h.mark("tmogc")
    local S = h.sleeper(mark)
    local r = h.script(ALIVE .. ([[
      local r = shell({ "sh", "-c", %q }, { timeout = 0.3, kill_grace = 10 })
      print(r.timed_out, r.signal, r.elapsed < 2, alive(%q))
    ]]):format(stubborn(S), mark))
    assert.are.equal(1, r.code, r.err)
    assert.are.equal("true\tSIGTERM\ttrue\t0\n", r.out)
    assert.is_true(r.secs < 5, "waited for the grace: " .. r.secs)
    assert.are.equal(0, h.gone(mark))
  end)

  it("'200%' is relative to the median of finished jobs, inactive until 3 have finished", function()
    local r = h.script([[
      -- one at a time: the first is long but no median exists yet
      local res = pool{ jobs = 1, timeout = "200%" }:map(function(d)
        return shell("sleep " .. d)
      end, { 0.6, 0.1, 0.1, 0.1, 20 })
      for i = 1, res.n do io.write(tostring(res[i].timed_out), " ") end
      print(res[5].elapsed < 3)
      -- a job already running gets its deadline when the third one finishes
      res = pool{ jobs = 4, timeout = "200%" }:map(function(d)
        return shell("sleep " .. d)
      end, { 20, 0.1, 0.1, 0.1 })
      print(res[1].timed_out, res[1].elapsed < 3)
    ]])
    assert.are.equal(1, r.code, r.err)
    assert.are.equal("nil nil nil nil true true\ntrue\ttrue\n", r.out)
  end)

  for _, case in ipairs({
    { "shell('true', { timeout = 0 })", "#2 to 'shell' (option 'timeout' must be" },
    { "shell('true', { timeout = 'soon' })", "#2 to 'shell' (option 'timeout' must be" },
    { "shell('true', { timeout = '0%' })", "#2 to 'shell' (option 'timeout' must be" },
    { "shell('true', { kill_grace = -1 })", "#2 to 'shell' (option 'kill_grace' must be" },
    { "pool{ timeout = {} }", "#1 to 'pool' (option 'timeout' must be" },
    { "pool(2):map(print, {}, { timeout = true })", "#3 to 'map' (option 'timeout' must be" },
    { "pool(2):map(print, {}, { timeot = 1 })", "#3 to 'map' (unknown option 'timeot' (did you mean 'timeout'?))" },
    { "pool{ timeot = 1 }", "#1 to 'pool' (unknown option 'timeot' (did you mean 'timeout'?))" },
    { "shell('true', { timeot = 1 })", "#2 to 'shell' (unknown option 'timeot' (did you mean 'timeout'?))" },
  }) do
    it("reject " .. case[1] .. " at the caller's line", function()
      local r = h.script("\n" .. case[1] .. "\n")
      assert.are.equal(2, r.code, r.err)
      assert.truthy(r.err:find("script.lua:2: bad argument " .. case[2], 1, true), r.err)
    end)
  end
end)

describe("retries", function()
  it("rerun a failed job up to n more times, keeping each attempt", function()
    local dir = h.tmpdir()
    local r = h.script(([[
      local r = shell("echo x >> %s/log; exit 3", { retries = 2 })
      print(r.ok, r.code, r.attempts, #r.tries, r.tries[1].code, r.tries[3].code)
      -- succeeds on the second attempt: no third
      r = shell("test -e %s/flag || { touch %s/flag; exit 1; }", { retries = 5 })
      print(r.ok, r.attempts, r.tries[1].code, r.tries[2].code)
      print(shell("true").attempts, shell("true").tries)
    ]]):format(dir, dir, dir))
    local log = h.slurp(dir .. "/log")
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(1, r.code, r.err)
    assert.are.equal("false\t3\t3\t3\t3\t3\ntrue\t2\t1\t0\n1\tnil\n", r.out)
    assert.are.equal("x\nx\nx\n", log)
    -- the retried job counts once
    assert.truthy(r.err:find(summary.pattern(1, 4, 0, { { "exit 3", ("echo x >> %s/log; exit 3"):format(dir) } }, 3)),
      r.err)
  end)

  it("print only the last attempt's output, as GNU parallel does", function()
    local r = h.script([[shell("echo attempt; echo oops >&2; exit 1", { retries = 2 })]])
    assert.are.equal(1, r.code)
    assert.are.equal("attempt\n", r.out)
    assert.are.equal("oops\n", r.err:sub(1, 5))
    local failed = { { "exit 1", "echo attempt; echo oops >&2; exit 1" } }
    assert.truthy(r.err:sub(6):find(summary.pattern(1, 1, 0, failed, 1)), r.err)
  end)

  it("wait retry_delay between attempts, multiplied by backoff each time", function()
    local r = h.script([[
      local r = shell("date +%s.%N; exit 1", { retries = 2, retry_delay = 0.2, backoff = 2, capture = true })
      local t = {}
      for _, try in ipairs(r.tries) do t[#t + 1] = try.code end
      print(r.attempts, table.concat(t, ","))
    ]])
    assert.are.equal(1, r.code, r.err)
    assert.are.equal("3\t1,1,1\n", r.out)
    assert.is_true(r.secs >= 0.55, "no delay: " .. r.secs) -- 0.2 + 0.4
    assert.is_true(r.secs < 5, "too slow: " .. r.secs)
  end)

  it("let a retry function stop, rerun, or rerun a different command", function()
    local r = h.script([[
      local seen = {}
      local r = shell("echo need more; exit 137", { retry = function(r, attempt)
        seen[#seen + 1] = ("%d:%d:%s"):format(attempt, r.code, r.stdout:gsub("\n", ""))
        if attempt == 1 then return true end
        return { "sh", "-c", "echo with --mem=$0", "8G" }
      end })
      print(r.ok, r.attempts, r.cmd, r.tries[1].cmd, r.tries[3].cmd)
      print(table.concat(seen, " "))
      r = shell("exit 2", { retries = 5, retry = function(r) return r.code ~= 2 end })
      print(r.attempts, r.code)
    ]])
    assert.are.equal(1, r.code, r.err)
    assert.are.equal("with --mem=8G\ntrue\t3\tsh -c 'echo with --mem=$0' 8G\techo need more; exit 137\t"
      .. "sh -c 'echo with --mem=$0' 8G\n1:137:need more 2:137:need more\n1\t2\n", r.out)
  end)

  it("retry timed-out attempts too", function()
    local r = h.script([[
      local r = shell("sleep 10", { timeout = 0.1, retries = 1 })
      print(r.attempts, r.timed_out, r.tries[1].timed_out, r.tries[2].timed_out)
    ]])
    assert.are.equal(1, r.code, r.err)
    assert.are.equal("2\ttrue\ttrue\ttrue\n", r.out)
  end)

  it("say 'timed out' when check = true raises for a timed-out job", function()
    local r = h.script([[shell("sleep 5", { timeout = 0.1, check = true })]])
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("shell: command failed (timed out): sleep 5", 1, true), r.err)
  end)

  it("raise when the retry function returns something else, at the caller's line", function()
    local r = h.script("\nshell('exit 1', { retry = function() return 42 end })\n")
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("script.lua:2: bad argument #2 to 'shell' (option 'retry' returned a number", 1, true),
      r.err)
  end)
end)

describe("halt", function()
  it("counts the jobs halt = 'now' stops as stopped, neither failed nor succeeded", function()
    local S = h.sleeper(h.mark("haltcount"))
    local r = h.script(([[
      pool{jobs = 3, halt = "now,fail=1"}:map(function(c) return shell(c) end,
        {"sleep 0.3; exit 3", "%s 30", "%s 30"})
    ]]):format(S, S))
    assert.are.equal(3, r.code, r.err)
    local halt = "tide: halt now,fail=1: this job failed: sleep 0.3; exit 3; stopping 2 running items\n"
    assert.are.equal(halt, r.err:sub(1, #halt))
    assert.truthy(r.err:sub(#halt + 1):find(summary.pattern(1, 3, 0, { { "exit 3", "sleep 0.3; exit 3" } }, 1, nil, 2)),
      r.err)
  end)

  it("'now,fail=1' kills running jobs, skips the rest, and exits with the job's status", function()
    local mark = h.mark("haltnow")
    local S = h.sleeper(mark)
    local r = h.script(ALIVE .. ([[
      local list = { "sleep 0.3; exit 7", "S", "S", "true", "true" }
      local res = pool(3):map(function(c)
        if c == "S" then return shell({ "sh", "-c", %q }) end
        return shell(c)
      end, list, { halt = "now,fail=1" })
      print(res.n, res.halted, res[1].code, res[2] == require("tide").KILLED, res[3].killed,
        res[4] == require("tide").SKIPPED, res[5].skipped, res[5].killed, alive(%q))
    ]]):format(stubborn(S), mark))
    assert.are.equal(7, r.code, r.err)
    assert.are.equal("5\tnow,fail=1\t7\ttrue\ttrue\ttrue\ttrue\tnil\t0\n", r.out)
    assert.truthy(r.err:find("tide: halt now,fail=1: this job failed: sleep 0.3; exit 7; stopping 2 running items\n",
      1, true), r.err)
    assert.is_true(r.secs < 5, "did not stop at once: " .. r.secs)
  end)

  it("gives 128 + signal for fail=1 when the job was killed by a signal", function()
    local r = h.script([[
      pool(2):map(function(c) return shell(c) end, { "kill -9 $$", "sleep 5" }, { halt = "now,fail=1" })
    ]])
    assert.are.equal(137, r.code, r.err)
  end)

  it("'soon,fail=2' starts no new item but lets running ones finish", function()
    local r = h.script([[
      local res = pool(2):map(function(c) return shell(c) end,
        { "exit 3", "exit 4", "sleep 0.3", "true", "true" }, { halt = "soon,fail=2" })
      print(res.n, res[1].code, res[2].code, res[3].ok, res[3].skipped, res[4].skipped, res[5].skipped)
    ]])
    assert.are.equal(1, r.code, r.err)
    assert.are.equal("5\t3\t4\ttrue\tnil\ttrue\ttrue\n", r.out)
    assert.truthy(r.err:find("waiting for 1 running item", 1, true), r.err)
  end)

  it("'soon,fail=10%' counts a percentage of the list's items", function()
    local r = h.script([[
      local list = {}
      for i = 1, 30 do list[i] = i end
      local res = pool(1):map(function(i) return shell(i % 5 == 0 and "false" or "true") end, list,
        { halt = "soon,fail=10%" })
      local ran = 0
      for i = 1, res.n do if not res[i].skipped then ran = ran + 1 end end
      print(res.n, ran) -- 10% of 30 = 3 failures: items 5, 10, 15
    ]])
    assert.are.equal(1, r.code, r.err)
    assert.are.equal("30\t15\n", r.out)
  end)

  it("'now,success=1' stops at the first success and exits 0", function()
    local r = h.script([[
      local res = pool(2):map(function(c) return shell(c) end,
        { "false", "sleep 5", "sleep 0.2", "true" }, { halt = "now,success=1" })
      print(res[1].ok, res[2].killed, res[3].ok, res[4].skipped)
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("false\ttrue\ttrue\ttrue\n", r.out)
    assert.is_true(r.secs < 4, "slow: " .. r.secs)
  end)

  it("'soon,done=50%' and the table form, set on the pool or the map", function()
    local r = h.script([[
      local p = pool{ jobs = 1, halt = { when = "soon", done = "50%" } }
      local res = p:map(function(c) return shell(c) end, { "true", "true", "true", "true" })
      print(res.halted, res[2].ok, res[3].skipped)
      res = p:map(function(c) return shell(c) end, { "true", "true", "true" }, { halt = false })
      print(res.halted, res[3].ok)
      res = pool(1):map(function(c) return shell(c) end, { "true", "false", "false" },
        { halt = { when = "now", fail = 1 } })
      print(res.halted, res[3].skipped)
    ]])
    -- the first halt (done, no failure) gave 0, but a job failed after it
    assert.are.equal(1, r.code, r.err)
    assert.are.equal("soon,done=50%\ttrue\ttrue\nnil\ttrue\nnow,fail=1\ttrue\n", r.out)
  end)

  it("counts jobs of nested maps and stops them with the outer map", function()
    local r = h.script([[
      local inner = pool(4)
      local res = pool(2):map(function(a)
        inner:map(function(b) return shell(a == 2 and b == 2 and "sleep 0.2; exit 5" or "sleep 5") end, { 1, 2 })
        return "done"
      end, { 1, 2, 3 }, { halt = "now,fail=1" })
      print(res[1].killed, res[2].killed, res[3].skipped)
    ]])
    assert.are.equal(5, r.code, r.err)
    assert.are.equal("true\ttrue\ttrue\n", r.out)
    assert.is_true(r.secs < 4, "slow: " .. r.secs)
  end)

  it("knows the length of a sequence with __len, and marks its unstarted items skipped", function()
    local r = h.script([[
      local seq = setmetatable({}, {
        __iter = function() local i = 0 return function() i = i + 1 if i <= 6 then return i end end end,
        __len = function() return 6 end,
      })
      local res = pool(1):map(function(i) return shell(i == 2 and "false" or "true") end, seq,
        { halt = "soon,fail=1" })
      print(res.n, res[2].ok, res[3] == require("tide").SKIPPED, res[6].skipped, pcall(function() res[3].x = 1 end))
    ]])
    assert.are.equal(1, r.code, r.err)
    assert.truthy(r.out:find("^6\tfalse\ttrue\ttrue\tfalse\t[^\n]*read%-only\n$"), r.out)
  end)

  it("does not pull an iterator further once halted", function()
    local r = h.script([[
      local pulled = 0
      local function gen() pulled = pulled + 1 return pulled end
      local res = pool(1):map(function(i) return shell(i == 3 and "false" or "true") end, gen,
        { halt = "soon,fail=1" })
      print(res.n, pulled)
    ]])
    assert.are.equal(1, r.code, r.err)
    assert.are.equal("3\t3\n", r.out)
  end)

  for _, bad in ipairs({ "'now'", "'later,fail=1'", "'now,fail=0'", "'now,fail=150%'", "'now,oops=1'",
                          "{ when = 'now' }", "{ when = 'now', fail = 1, done = 1 }", "3" }) do
    it("rejects halt = " .. bad, function()
      local r = h.script(("\npool{ halt = %s }\n"):format(bad))
      assert.are.equal(2, r.code)
      assert.truthy(r.err:find("script.lua:2: bad argument #1 to 'pool' (option 'halt' must be", 1, true), r.err)
    end)
  end
end)

describe("throttles", function()
  -- Each job prints its start time; returns the sorted start times.
  local STARTS = [[
    local function starts(res)
      local t = {}
      for i = 1, res.n do t[i] = tonumber(res[i]) end
      table.sort(t)
      return t
    end
  ]]

  it("delay spaces job starts", function()
    local r = h.script(STARTS .. [[
      local res = pool{ jobs = 4, delay = 0.2 }:map(function()
        return shell("date +%s.%N", { capture = true }).stdout
      end, { 1, 2, 3, 4, 5 })
      local t, ok = starts(res), true
      for i = 2, #t do if t[i] - t[i - 1] < 0.17 then ok = false end end
      print(ok, t[5] - t[1] < 2)
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("true\ttrue\n", r.out)
  end)

  it("delay paces jobs run outside any pool too, and per call", function()
    local r = h.script([[
      local core = require("tide.core")
      local t0 = core.now()
      for _ = 1, 3 do shell("true", { delay = 0.25 }) end
      print(core.now() - t0 >= 0.45)
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("true\n", r.out)
  end)

  it("max_load holds starts while the load average is above it, and resumes", function()
    local dir = h.tmpdir()
    local load = h.spit(dir .. "/loadavg", "9.50 1.00 1.00 2/300 12345\n")
    local r = h.script([[
      local core, tide = require("tide.core"), require("tide")
      local t0 = core.now()
      local when = {}
      pool(3):map(function(i)
        if i == 1 then
          tide.sleep(0.6)
          io.open(os.getenv("TIDE_LOADAVG_FILE"), "w"):write("0.50 1 1 1/1 1\n"):close()
          return
        end
        shell("true", { max_load = 2 })
        when[#when + 1] = core.now() - t0
      end, { 1, 2, 3 })
      print(#when, when[1] >= 0.55, when[2] < 3)
    ]], {}, { env = { TIDE_LOADAVG_FILE = load } })
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("2\ttrue\ttrue\n", r.out)
  end)

  it("min_free stops then requeues the youngest job below half, restarting it when memory is back", function()
    local dir = h.tmpdir()
    local mem = h.spit(dir .. "/meminfo", "MemTotal: 99999999 kB\nMemAvailable: 4194304 kB\n")
    local r = h.script([[
      local core, tide = require("tide.core"), require("tide")
      local t0 = core.now()
      local function avail(mb)
        io.open(os.getenv("TIDE_MEMINFO_FILE"), "w")
          :write(("MemTotal: 99999999 kB\nMemAvailable: %d kB\n"):format(mb * 1024)):close()
      end
      local res = pool(3):map(function(i)
        if i == 3 then
          tide.sleep(0.4); avail(100)  -- below half of 1G: jobs are stopped, youngest first
          tide.sleep(1.0); avail(4096) -- back: they start again
          return
        end
        if i == 2 then tide.sleep(0.2) end
        local r = shell({ "sh", "-c", "sleep 1.6; echo job $0", i }, { min_free = "1G", capture = true })
        r.at = core.now() - t0
        return r
      end, { 1, 2, 3 })
      print(res[1].ok, res[1].stdout, res[2].ok, res[2].stdout, res[2].requeued, res[2].at >= 2.9)
    ]], {}, { env = { TIDE_MEMINFO_FILE = mem } })
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("true\tjob 1\n\ttrue\tjob 2\n\t1\ttrue\n", r.out)
    assert.truthy(r.err:find("^tide: available memory 100 MiB is below half of min_free %(1024 MiB%): stopping the "
      .. "youngest job, to run again later: sh %-c 'sleep 1.6; echo job %$0' 2\n"), r.err)
  end)

  it("min_free holds starts while memory is below it, and lets them go when it is back", function()
    local dir = h.tmpdir()
    local mem = h.spit(dir .. "/meminfo", "MemAvailable: 1000 kB\n")
    local r = h.script([[
      local core, tide = require("tide.core"), require("tide")
      local t0 = core.now()
      pool(2):map(function(i)
        if i == 2 then
          tide.sleep(0.5)
          io.open(os.getenv("TIDE_MEMINFO_FILE"), "w"):write("MemAvailable: 3000000 kB\n"):close()
          return
        end
        shell("true", { min_free = "2G" })
        print(core.now() - t0 >= 0.45)
      end, { 1, 2 })
    ]], {}, { env = { TIDE_MEMINFO_FILE = mem } })
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("true\n", r.out)
  end)

  it("read the real /proc/loadavg and /proc/meminfo", function()
    local r = h.script([[
      local control = require("tide.run.control")
      local load, mem = control.loadavg(), control.memavailable()
      print(type(load), load >= 0, mem > 0)
      print(shell("true", { max_load = 1e6, min_free = "1k" }).ok)
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("number\ttrue\ttrue\ntrue\n", r.out)
    assert.are.equal("", r.err)
  end)

  it("warn once and go on when the load or memory cannot be read", function()
    local r = h.script([[
      for i = 1, 2 do shell("true", { max_load = 1, min_free = "1G" }) end
    ]], {}, { env = { TIDE_LOADAVG_FILE = "/nonexistent/l", TIDE_MEMINFO_FILE = "/nonexistent/m" } })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("tide: cannot read the load average from /nonexistent/l: max_load is ignored\n"
      .. "tide: cannot read available memory from /nonexistent/m: min_free is ignored\n", r.err)
  end)

  for _, case in ipairs({
    { "{ delay = 'x' }", "option 'delay' must be" }, { "{ max_load = 0 }", "option 'max_load' must be" },
    { "{ min_free = '2X' }", "option 'min_free' must be" }, { "{ retries = 1.5 }", "option 'retries' must be" },
    { "{ backoff = 0.5 }", "option 'backoff' must be" }, { "{ retry = 1 }", "option 'retry' must be" },
    { "{ slots = 0 }", "option 'slots' must be" }, { "{ moves = -1 }", "option 'moves' must be a whole number" },
  }) do
    it("reject shell('true', " .. case[1] .. ")", function()
      local r = h.script(("\nshell('true', %s)\n"):format(case[1]))
      assert.are.equal(2, r.code)
      assert.truthy(r.err:find("script.lua:2: bad argument #2 to 'shell' (" .. case[2], 1, true), r.err)
    end)
  end
end)

describe("slots", function()
  -- Jobs print their start and end times; peak() is the largest sum of
  -- weights running at once.
  local PEAK = [[
    local ev = {}
    local function job(w, opts)
      opts = opts or {}
      opts.capture = true
      local out = shell("date +%s.%N; sleep 0.15; date +%s.%N", opts).stdout
      local a, b = out:match("(%S+)\n(%S+)")
      ev[#ev + 1] = { tonumber(a), w }
      ev[#ev + 1] = { tonumber(b), -w }
    end
    local function peak()
      table.sort(ev, function(x, y) if x[1] == y[1] then return x[2] < y[2] end return x[1] < y[1] end)
      local cur, m = 0, 0
      for _, e in ipairs(ev) do cur = cur + e[2]; if cur > m then m = cur end end
      ev = {}
      return m
    end
  ]]

  it("weigh items with map's slots function: a 4-slot item takes 4 of 8", function()
    local r = h.script(PEAK .. [[
      pool{ jobs = 8 }:map(function(w) job(w) end, { 4, 4, 4, 1, 1, 1, 1, 6, 2, 1 },
        { slots = function(w) return w end })
      print(peak())
      pool(3):map(function(w) job(2) end, { 1, 2, 3 }, { slots = 2 })
      print(peak())
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("8\n2\n", r.out)
  end)

  it("let a job take more slots with shell's slots, without deadlock when every task asks", function()
    local r = h.script(PEAK .. [[
      pool(4):map(function(i) local w = i % 2 == 0 and 3 or 1; job(w, { slots = w }) end, { 1, 2, 3, 4, 5, 6 })
      print(peak())
      local core = require("tide.core")
      local t0 = core.now()
      pool(4):map(function() job(4, { slots = 4 }) end, { 1, 2, 3 })
      print(peak(), core.now() - t0 >= 0.44)
    ]], {}, { timeout = 30 })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("4\n4\ttrue\n", r.out)
  end)

  it("run an item or a job larger than the pool alone, with a warning", function()
    local r = h.script(PEAK .. [[
      pool(2):map(function(w) job(w) end, { 1, 5, 1 }, { slots = function(w) return w end })
      print(peak())
      pool(2):map(function(i) job(i == 2 and 3 or 1, { slots = i == 2 and 3 or 1 }) end, { 1, 2, 3 })
      print(peak())
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("5\n3\n", r.out)
    assert.truthy(r.err:find("tide: item 2 needs 5 slots but the pool has 2: running it alone\n", 1, true), r.err)
    assert.truthy(r.err:find("tide: job date +%s.%N; sleep 0.15; date +%s.%N needs 3 slots but the pool has 2: "
      .. "running it alone\n", 1, true), r.err)
  end)

  it("resize a pool while it runs", function()
    local r = h.script([[
      local p = pool(1)
      local cur, max = 0, 0
      local list = {}
      for i = 1, 12 do list[i] = i end
      p:map(function(i)
        if i == 2 then p:resize(4) end
        cur = cur + 1
        if cur > max then max = cur end
        shell("sleep 0.1")
        cur = cur - 1
        if i == 8 then p:resize(1) end
      end, list)
      print(max, p.size, pcall(p.resize, p, 0))
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("4\t1\tfalse\tbad argument #1 to 'resize' (size must be a whole number of at least 1, got 0)\n",
      r.out)
  end)

  it("report a bad slots function as the map's error", function()
    local r = h.script([[
      local ok, err = pcall(pool(2).map, pool(2), print, { 1, 2 }, { slots = function() return 0 end })
      print(ok, err)
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("^false\tmap: the slots function returned 0 for item 1"), r.out)
  end)
end)

describe("every exit path kills the whole job tree", function()
  -- stubborn() runs the job; it touches ready.<pid> in tide's directory
  -- once it runs (signal_run waits for those files).
  local function tree_script(mark, body)
    local S = h.sleeper(mark)
    return ([[
      local S = %q
      local function stubborn() return shell({ "sh", "-c", "(trap '' TERM; exec " .. S .. " 100) & "
        .. "touch ready.$$; exec " .. S .. " 100" }) end
    ]]):format(S) .. body
  end

  for _, case in ipairs({ { "a Lua error in a sibling task", "error('boom')", 2 }, { "os.exit", "os.exit(3)", 3 } }) do
    it("on " .. case[1], function()
      local mark = h.mark("tree" .. case[3])
      local dir = h.tmpdir()
      local r = h.script(tree_script(mark, ([[
        pool(2):map(function(i)
          if i == 1 then return stubborn() end
          require("tide").sleep(0.3)
          %s
        end, { 1, 2 })
      ]]):format(case[2])), {}, { cwd = dir })
      os.execute("rm -rf " .. h.quote(dir))
      assert.are.equal(case[3], r.code, r.err)
      assert.is_true(r.secs < 5, "waited for the grace: " .. r.secs)
      assert.are.equal(0, h.gone(mark, 0.5))
    end)
  end

  for _, case in ipairs({ { "INT", 130 }, { "TERM", 143 }, { "HUP", 129 } }) do
    it("on SIG" .. case[1], function()
      local mark = h.mark("tree" .. case[1])
      local r = h.signal_run(tree_script(mark, [[
        pool(2):map(function() return stubborn() end, { 1, 2 })
      ]]), { ready = 2, signals = { { 0.1, case[1] } } })
      assert.are.equal(case[2], r.code, r.err)
      assert.is_true(r.secs < 1.8, "waited for the grace: " .. tostring(r.secs))
      assert.are.equal(0, h.gone(mark, 0.5))
    end)
  end
end)
