-- A sweep's results as data: item records and resume by item, early stop,
-- accepted exit codes, the summary switch, JSON, CSV and grid order.
local h = require("tests.helper")
local q = h.quote

local function count(s, pattern)
  return select(2, s:gsub(pattern, ""))
end

describe("item records", function()
  local dir
  h.tmpdir_each(function(d)
    dir = d
  end)

  it("write one JSON line per item and resume from them with the same results", function()
    local script = h.spit(dir .. "/s.lua", [[
      local rec, ran = ...
      local items = {}
      for _, n in ipairs({3, 1, 2}) do items[#items + 1] = {n = n, name = "x" .. n} end
      local rs = pool{jobs = 2, record = rec, resume = true}:map(function(it)
        local r = shell(("echo %d >> %s; echo $((%d * %d))"):format(it.n, ran, it.n, it.n), {capture = true})
        return {sq = tonumber(r.stdout), name = it.name}
      end, items)
      for i = 1, rs.n do io.write(rs[i].sq, ":", rs[i].name, " ") end
      print(math.type(rs[1].sq))
    ]])
    local rec, ran = dir .. "/rec.jsonl", dir .. "/ran"
    local r1 = h.run({ script, rec, ran })
    assert.are.equal(0, r1.code, r1.err)
    assert.are.equal("9:x3 1:x1 4:x2 integer\n", r1.out)
    local lines = {}
    for l in io.lines(rec) do
      lines[#lines + 1] = l
    end
    assert.are.equal(3, #lines)
    for _, l in ipairs(lines) do
      assert.matches('^{"elapsed":[%d.e-]+,"i":%d,"item":{"n":%d,"name":"x%d"},"start":[%d.]+,'
        .. '"status":"ok","value":{"name":"x%d","sq":%d}}$', l)
    end
    -- resumed: nothing runs, the results are the same
    local r2 = h.run({ script, rec, ran })
    assert.are.equal(0, r2.code, r2.err)
    assert.are.equal(r1.out, r2.out)
    assert.are.equal(3, count(h.slurp(ran), "\n"))
  end)

  it("key items by content: reordered and added items between runs", function()
    local script = h.spit(dir .. "/s.lua", [[
      local rec, ran, order = ...
      local items = {}
      for n in order:gmatch("%d+") do items[#items + 1] = {n = tonumber(n)} end
      local rs = pool{jobs = 1, record = rec, resume = true}:map(function(it)
        shell(("echo %d >> %s"):format(it.n, ran))
        return it.n * 10
      end, items)
      print(table.concat(rs, ","))
    ]])
    local rec, ran = dir .. "/rec", dir .. "/ran"
    assert.are.equal("10,20\n", h.run({ script, rec, ran, "1 2" }).out)
    local r = h.run({ script, rec, ran, "3 2 1" })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("30,20,10\n", r.out)
    assert.are.equal("1\n2\n3\n", h.slurp(ran))
  end)

  it("run again the items that failed, raised or were stopped, and ignore a torn last line", function()
    local script = h.spit(dir .. "/s.lua", [[
      local rec, ran, flag = ...
      local rs = pool{jobs = 1, record = rec, resume = true}:map(function(i)
        shell(("echo %d >> %s"):format(i, ran))
        if i == 2 and flag == "fail" then return shell("exit 3") end
        if i == 3 and flag == "fail" then error("boom") end
        return i
      end, {1, 2, 3, 4})
      print(rs[1], rs[4])
    ]])
    local rec, ran = dir .. "/rec", dir .. "/ran"
    local r = h.run({ script, rec, ran, "fail" })
    assert.are.equal(2, r.code) -- the map raised for item 3: a script error
    local text = h.slurp(rec)
    assert.matches('"i":1,[^\n]*"status":"ok"', text)
    assert.matches('"i":2,[^\n]*"status":"failed"', text)
    assert.matches('"i":3,[^\n]*"status":"error","value":"[^"]*boom"', text)
    -- tide killed while writing: a line cut short
    local f = io.open(rec, "ab")
    f:write('{"i":4,"item":4,"status":"o')
    f:close()
    r = h.run({ script, rec, ran, "ok" })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("1\t4\n", r.out)
    assert.are.equal("1\n2\n3\n2\n3\n4\n", h.slurp(ran))
    -- every line of the record parses now, the torn one aside
    local n = 0
    for l in io.lines(rec) do
      n = n + 1
      if not l:find('"status":"o\t#torn$') then -- ended with a mark no line parses with
        assert.matches("^{.*}$", l)
      end
    end
    assert.are.equal(7, n)
  end)

  it("after kill -9, every item's function completes exactly once except those running at the kill", function()
    local script = h.spit(dir .. "/s.lua", [[
      local rec, out, dir = ...
      local items = {}
      for i = 1, 12 do items[i] = {k = "item" .. i} end
      pool{jobs = 4, record = rec, resume = true}:map(function(it)
        local i = tonumber(it.k:match("%d+"))
        shell(("touch %s/started.%d; sleep 0.6"):format(dir, i))
        local f = io.open(out, "a") f:write(i, "\n") f:close()
        return i
      end, items)
    ]])
    local rec, out = dir .. "/rec", dir .. "/out"
    os.execute(("%s %s %s %s %s >/dev/null 2>&1 & pid=$!; n=0; "
      .. "while [ ! -e %s/started.5 ] && [ $n -lt 1000 ]; do sleep 0.01; n=$((n+1)); done; "
      .. "sleep 0.2; kill -9 $pid; wait $pid 2>/dev/null; sleep 0.8")
      :format(q(h.TIDE), q(script), q(rec), q(out), q(dir), q(dir)))
    local done_before = h.slurp(out)
    local recorded = count(h.slurp(rec), "\n")
    assert.truthy(recorded > 0 and recorded < 12, "recorded before the kill: " .. recorded)
    local r = h.run({ script, rec, out, dir })
    assert.are.equal(0, r.code, r.err)
    local all = h.slurp(out)
    for i = 1, 12 do
      assert.are.equal(1, count("\n" .. all, "\n" .. i .. "\n"), "item " .. i .. ":\n" .. all)
    end
    assert.are.equal(recorded, count(done_before, "\n"))
    assert.are.equal(12, count(h.slurp(rec), "\n"))
  end)

  it("turn into CSV in one call that Python's csv module reads back", function()
    local r = h.script(([[
      local rec, csvf = %q, %q
      pool{jobs = 2, record = rec}:map(function(p)
        return {loss = p.lr * 10, note = 'a "quoted", text'}
      end, grid{{"lr", {0.1, 0.01}}, {"depth", {2, 4}}})
      print(tide.csv.write(csvf, tide.records(rec)))
    ]]):format(dir .. "/rec", dir .. "/out.csv"))
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("4\n", r.out)
    local py = h.sh(("python3 -c %s %s"):format(q([[
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
print(len(rows), sorted(rows[0].keys()))
for row in rows: print(row["i"], row["item.lr"], row["item.depth"], row["value.loss"], row["value.note"], row["status"])
]]), q(dir .. "/out.csv")))
    assert.are.equal(0, py.code, py.err)
    assert.are.equal("4 ['elapsed', 'i', 'item.depth', 'item.lr', 'start', 'status', 'value.loss', 'value.note']\n"
      .. '1 0.1 2 1 a "quoted", text ok\n2 0.1 4 1 a "quoted", text ok\n'
      .. '3 0.01 2 0.1 a "quoted", text ok\n4 0.01 4 0.1 a "quoted", text ok\n', py.out)
  end)

  it("reject a bad record option, naming it", function()
    local r = h.script([[
      print(pcall(pool, {record = 5}))
      print(pcall(pool(1).map, pool(1), print, {}, {record = ""}))
      print(pcall(pool(1).map, pool(1), print, {}, {stop_when = 3}))
      print(pcall(tide.records, "/nonexistent/x"))
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.matches("false\t[^\n]*bad argument #1 to 'pool' %(option 'record' must be a file name, got 5%)\n", r.out)
    assert.matches("false\t[^\n]*bad argument #3 to 'map' %(option 'record' must be a file name, got ''%)\n", r.out)
    assert.matches("false\t[^\n]*option 'stop_when' must be a function%(value, item%), got 3%)\n", r.out)
    assert.matches("false\t[^\n]*records: cannot open /nonexistent/x\n", r.out)
  end)
end)

describe("early stop", function()
  it("tide.stop ends the map: results so far, KILLED and SKIPPED, not a failure", function()
    local S = h.sleeper(h.mark("stop"))
    local r = h.script(([[
      local rs = pool(2):map(function(i)
        if i == 2 then
          shell("sleep 0.2")
          tide.stop("good enough")
          return "best"
        end
        shell("%s 30")
        return i
      end, range(1, 6))
      print(rs.n, rs.stopped, rs[1] == tide.KILLED, rs[2], rs[3] == tide.SKIPPED, rs[6] == tide.SKIPPED)
    ]]):format(S))
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("6\tgood enough\ttrue\tbest\ttrue\ttrue\n", r.out)
    assert.are.equal("", r.err) -- no summary: the killed job is not a failure
    assert.are.equal(0, h.gone(h.mark("stop"), 5))
  end)

  it("stop_when stops once a value is good enough", function()
    local r = h.script([[
      local rs = pool(1):map(function(i) return {loss = 1 / i} end, range(1, 100),
        {stop_when = function(v, item) return v.loss < 0.3 and ("loss " .. v.loss .. " at " .. item) end})
      print(rs.n, rs.stopped, rs[4].loss, rs[5] == tide.SKIPPED)
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("100\tloss 0.25 at 4\t0.25\ttrue\n", r.out)
  end)

  it("a stop in a nested map stops that map only", function()
    local r = h.script([[
      local rs = pool(2):map(function(i)
        local inner = pool(1):map(function(j)
          if j == i then tide.stop() end
          return j
        end, {1, 2, 3})
        return tostring(inner.stopped) .. ":" .. inner[i] .. ":" .. tostring(inner[3] == tide.SKIPPED)
      end, {1, 2})
      print(rs[1], rs[2], rs.stopped)
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("true:1:true\ttrue:2:true\tnil\n", r.out)
  end)

  it("outside a map is an error naming tide.stop", function()
    local r = h.script("tide.stop()")
    assert.are.equal(2, r.code)
    assert.matches("script.lua:1: tide.stop: not called from a task of a map", r.err)
  end)
end)

describe("accepted exit codes", function()
  it("ok_codes make those codes success in shell, map and pool options", function()
    local r = h.script([[
      print(shell("exit 1", {ok_codes = {0, 1}}).ok, shell("exit 0", {ok_codes = {1}}).ok)
      local rs = pool{jobs = 1, ok_codes = {0, 1}}:map(function(c) return shell(c) end, {"exit 1", "exit 2"})
      print(rs[1].ok, rs[2].ok, rs[2].code)
      rs = pool(1):map(function(c) return shell(c) end, {"grep -q x /dev/null"}, {ok_codes = {0, 1}})
      print(rs[1].ok, rs[1].code)
    ]])
    assert.are.equal(1, r.code) -- "exit 0" with ok_codes {1} and "exit 2" failed
    assert.are.equal("true\tfalse\ntrue\tfalse\t2\ntrue\t1\n", r.out)
    assert.matches("^tide: 2 of 5 jobs failed\n", r.err)
  end)

  it("reject ok_codes that are not exit codes", function()
    local r = h.script([[
      for _, v in ipairs({ {}, {256}, {"x"}, 1, {1.5} }) do
        print((select(2, pcall(shell, "true", {ok_codes = v})):match("%(.*")))
      end
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(5, count(r.out, "option 'ok_codes' must be a list of exit codes from 0 to 255"))
  end)

  it("summary = false and --no-summary silence the failure summary; the exit status tells", function()
    local r = h.script("pool{summary = false}:map(function() return shell('exit 3') end, {1})")
    assert.are.equal(1, r.code)
    assert.are.equal("", r.err)
    r = h.run({ "--no-summary", "false", ":::", "a" })
    assert.are.equal(1, r.code)
    assert.are.equal("", r.err)
  end)
end)

describe("JSON", function()
  it("round-trips values with the shortest numbers", function()
    local r = h.script([[
      local json = tide.json
      local v = {0.1, 1/3, 1e300, 123, -7, "x\"y\n\1é", true, false, {a = {b = {}}}}
      local s = json.encode(v)
      print(s)
      local back = json.decode(s)
      print(json.encode(back) == s, back[4], math.type(back[4]), back[1] == 0.1, back[2] == 1/3)
      print(json.encode(json.decode('[1,null,3]')), json.decode('[1,null,3]').n)
      print(json.decode('"\\ud83d\\ude00\\u00e9"'))
      for _, bad in ipairs({'', '[1,', '01', '{"a" 1}', '[1] 2', 'nul'}) do
        print((select(2, pcall(json.decode, bad))))
      end
    ]])
    assert.are.equal(0, r.code, r.err)
    local lines = {}
    for l in r.out:gmatch("[^\n]*\n") do
      lines[#lines + 1] = l
    end
    assert.are.equal('[0.1,0.3333333333333333,1e+300,123,-7,"x\\"y\\n\\u0001é",true,false,{"a":{"b":[]}}]\n',
      lines[1])
    assert.are.equal("true\t123\tinteger\ttrue\ttrue\n", lines[2])
    assert.are.equal("[1,null,3]\t3\n", lines[3])
    assert.are.equal("😀é\n", lines[4])
    for i = 5, 10 do
      assert.matches("^json: .* at line 1, byte %d+\n$", lines[i])
    end
  end)
end)

describe("grid order", function()
  it("keeps the order of {name, list} pairs, first varying slowest", function()
    local r = h.script([[
      for p in grid{{"z", {1, 2}}, {"a", {"x", "y"}}}() do io.write(p.z, p.a, " ") end
      print(#grid{{"z", {1, 2}}, {"a", range(1, 3)}})
      print(pcall(grid, {{"z", {1}}, {"z", {2}}}))
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.matches("^1x 1y 2x 2y 6\nfalse\t[^\n]*parameter 'z' is given twice", r.out)
  end)
end)

describe("errors a user can act on", function()
  it("suggest the closest option for a typo", function()
    local r = h.script([[
      print(select(2, pcall(shell, "true", {timout = 1})))
      print(select(2, pcall(pool, {jbos = 2})))
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.matches("unknown option 'timout' %(did you mean 'timeout'%?%)", r.out)
    assert.matches("unknown option 'jbos' %(did you mean 'jobs'%?%)", r.out)
    r = h.run({ "--jbos", "2", "echo", ":::", "a" })
    assert.are.equal(255, r.code)
    assert.are.equal("tide: unknown option '--jbos' (did you mean --jobs?) (tide --help lists them)\n", r.err)
  end)

  it("name a GNU parallel option that tide does not implement", function()
    local r = h.run({ "--tmux", "echo", ":::", "a" })
    assert.are.equal(255, r.code)
    assert.matches("^tide: tide does not implement GNU parallel's %-%-tmux", r.err)
  end)

  it("a one-liner's runtime error is `tide: message`, exit 255", function()
    local r = h.run({ "--results", "/proc/no/such", "echo", ":::", "a" })
    assert.are.equal(255, r.code)
    assert.matches("^tide: shell: results: cannot create directory /proc/no/such [^\n]*\n$", r.err)
  end)

  it("show the user's frames only in a task's traceback", function()
    local r = h.script("pool(1):map(function() shell('true', {timeout = 'x'}) end, {1})")
    assert.are.equal(2, r.code)
    assert.matches("traceback of the task:\n\t[^\n]*script.lua:1: in function", r.err)
    assert.is_nil(r.err:find("\ttide/", 1, true), r.err)
  end)
end)

describe("a command line that never silently does nothing", function()
  local dir
  before_each(function()
    dir = h.tmpdir()
  end)
  after_each(function()
    os.execute("rm -rf " .. q(dir))
  end)

  local SRC = [[
    local p = pool()
    print(p.size, #arg, arg[1])
    p:map(function(i) return shell("echo job " .. i) end, {1, 2})
  ]]

  it("runs a script after GNU parallel's options, which become its pools' defaults", function()
    local script = h.spit(dir .. "/sweep.lua", SRC)
    local log = dir .. "/x.log"
    local r = h.run({ "--jobs", "3", "--joblog", log, "-k", script, "a" })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("3\t1\ta\njob 1\njob 2\n", r.out)
    -- a job log is written in the order jobs end, which -k does not change
    local logged = h.slurp(log)
    assert.matches("^Seq\tHost[^\n]*\n[^\n]*\n[^\n]*\n$", logged)
    assert.matches("\n1\t:[^\n]*echo job 1\n", logged)
    assert.matches("\n2\t:[^\n]*echo job 2\n", logged)
    r = h.run({ "-j", "50%", "--no-summary", script })
    assert.are.equal(0, r.code, r.err)
    assert.matches("^%d+\t0\tnil\n", r.out)
  end)

  it("takes a file with a tide shebang for a script too", function()
    local script = h.spit(dir .. "/sweep", "#!/usr/bin/env tide\n" .. SRC)
    local r = h.run({ "--jobs", "2", script })
    assert.are.equal(0, r.code, r.err)
    assert.matches("^2\t0\tnil\n", r.out)
  end)

  it("refuses, naming it, an option that means nothing to a script", function()
    local script = h.spit(dir .. "/sweep.lua", SRC)
    for _, a in ipairs({ { "-N", "2" }, { "--colsep", "," }, { "-q" } }) do
      local args = { a[1], a[2] }
      args[#args + 1] = script
      local r = h.run(args)
      assert.are.equal(255, r.code)
      assert.are.equal(("tide: option '%s' does not apply to a script (only to a one-liner's command line)\n")
        :format(a[1]), r.err)
      assert.are.equal("", r.out)
    end
  end)

  it("fails loudly for a script that is not there", function()
    local r = h.run({ "--jobs", "2", dir .. "/missing.lua" })
    assert.are.equal(2, r.code)
    assert.matches("cannot open .*missing%.lua", r.err)
  end)

  it("says so when a one-liner's input is read from the terminal", function()
    local p = io.popen(("timeout -s KILL 30 script -qec %s /dev/null </dev/null"):format(q(q(h.TIDE) .. " -j1 echo")))
    local out = p:read("a")
    p:close()
    assert.matches("tide: input is read from the terminal", out)
  end)

  it("runs nothing and says nothing for a one-liner given no input, as GNU parallel", function()
    local r = h.run({ "-j1", "echo" })
    assert.are.equal(0, r.code)
    assert.are.equal("", r.out)
    assert.are.equal("", r.err)
  end)
end)

describe("misuse errors", function()
  it("point at the user's line with no frames of tide's own", function()
    local r = h.script("local x = 1\npool('x')\n")
    assert.are.equal(2, r.code)
    assert.matches("^tide: [^\n]*script.lua:2: bad argument #1 to 'pool'", r.err)
    assert.is_nil(r.err:find("tide/run", 1, true), r.err)
    assert.matches("stack traceback:\n\t[^\n]*script.lua:2: in main chunk\n?$", r.err)
    r = h.script("local x = 1\npool('x')\n", nil, { env = { TIDE_TRACEBACK = "1" } })
    assert.truthy(r.err:find("\ttide/run/pool.lua:", 1, true), r.err)
  end)
end)

describe("the shell option", function()
  it("runs command strings with the shell named, in shell, map and pool options", function()
    local r = h.script([=[
      print(shell("[[ a == a* ]] && echo yes", {shell = "bash", capture = true}).stdout)
      print(shell("echo $0", {capture = true}).stdout)
      local rs = pool{jobs = 1, shell = "bash"}:map(function()
        return shell("echo $BASH_VERSION | cut -c1", {capture = true}).stdout
      end, {1})
      print(rs[1])
      print(select(2, pcall(shell, "true", {shell = "no such"})))
    ]=])
    assert.are.equal(0, r.code, r.err)
    assert.matches("^yes\n\n/bin/sh\n\n%d\n\n[^\n]*option 'shell' must be a shell such as 'bash'", r.out)
  end)
end)
