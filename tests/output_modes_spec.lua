-- Output modes (issue #4): line mode, ungroup, capture and null, tags,
-- order = "input", per-line callbacks, results directories, max_output.
local h = require("tests.helper")
local dkjson = require("dkjson")

-- Every byte value, several times over: n bytes.
local function binary(n)
  local t = {}
  for i = 0, n - 1 do
    t[#t + 1] = string.char((i * 7 + i // 256) % 256)
  end
  return table.concat(t)
end

local lines = h.lines

local function count(s, pat)
  local n = 0
  for _ in s:gmatch(pat) do
    n = n + 1
  end
  return n
end

describe("output = 'line'", function()
  it("prints whole lines as they come: jobs interleave by line, never inside one", function()
    -- each job writes every line in two halves with a pause between: whole
    -- lines of the others must not land inside them
    local r = h.script([[
      pool{ jobs = 3, output = "line" }:map(function(j)
        return shell(("for k in 1 2 3 4; do printf '%d:'; sleep 0.02; echo $k; done"):format(j, j))
      end, { 1, 2, 3 })
    ]])
    assert.are.equal(0, r.code, r.err)
    local ls = lines(r.out)
    assert.are.equal(12, #ls, r.out)
    local firsts, seen = {}, {}
    for i, l in ipairs(ls) do
      local j, k = l:match("^(%d):(%d)$")
      assert.truthy(j, "split line: " .. r.out)
      seen[l] = true
      if k == "1" then firsts[#firsts + 1] = i end
    end
    assert.are.equal(12, #(function() local t = {} for l in pairs(seen) do t[#t + 1] = l end return t end)())
    -- they ran at once: the second job's first line comes before the first job's last
    local last1
    for i, l in ipairs(ls) do if l == "1:4" then last1 = i end end
    assert.is_true(firsts[2] < last1, "not interleaved, so not line by line:\n" .. r.out)
  end)

  it("shows a line while the job still runs", function()
    local r = h.script([[
      local t0 = require("tide.core").now()
      local seen
      shell("echo early; sleep 0.6; echo late", { output = "line", on_line = function(l)
        if l == "early" then seen = require("tide.core").now() - t0 end
      end })
      io.stderr:write(seen < 0.4 and "early\n" or ("late " .. seen .. "\n"))
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("early\nlate\n", r.out)
    assert.are.equal("early\n", r.err)
  end)

  it("flushes a last line without newline at the end, adding one only with newline = true", function()
    local r = h.script([[
      shell("printf 'a\nno-eol'", { output = "line" })
      io.write("|")
      shell("printf 'b\nno-eol'", { output = "line", newline = true })
      shell("printf 'c\n'", { output = "line", newline = true })
      shell("printf 'err'; printf 'e' >&2", { output = "line", newline = true, tag = true })
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("a\nno-eol|b\nno-eol\nc\nprintf 'err'; printf 'e' >&2\terr\n", r.out)
    assert.are.equal("printf 'err'; printf 'e' >&2\te\n", r.err)
  end)

  it("keeps stdout and stderr apart, both tagged", function()
    local r = h.script([[
      pool{ jobs = 2, output = "line", tag = true }:map(function(x)
        return shell(("echo out-%s; echo err-%s >&2; echo out2-%s"):format(x, x, x))
      end, { "a", "b" })
    ]])
    assert.are.equal(0, r.code, r.err)
    table.sort(lines(r.out))
    local out, err = lines(r.out), lines(r.err)
    table.sort(out)
    table.sort(err)
    assert.are.same({ "a\tout-a", "a\tout2-a", "b\tout-b", "b\tout2-b" }, out)
    assert.are.same({ "a\terr-a", "b\terr-b" }, err)
  end)

  it("passes binary data through byte for byte, NULs and all", function()
    local dir = h.tmpdir()
    local data = binary(300000) .. "tail without newline"
    h.spit(dir .. "/bin", data)
    local r = h.script([[
      shell({ "cat", (...) .. "/bin" }, { output = "line" })
      shell({ "sh", "-c", "cat \"$1\" >&2", "sh", (...) .. "/bin" }, { output = "line" })
    ]], { dir })
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(0, r.code)
    assert.is_true(r.out == data, "stdout differs")
    assert.is_true(r.err == data, "stderr differs")
  end)

  it("prints a line longer than max_line in pieces, whole, in bounded memory", function()
    local r = h.script(h.HWM .. [[
      local before = hwm()
      shell("head -c 20000000 /dev/zero | tr '\\0' x; echo; echo next", { output = "line", tag = true })
      io.stderr:write(("%d\n"):format(hwm() - before))
    ]], {}, { timeout = 60 })
    assert.are.equal(0, r.code)
    assert.are.equal(20000000 + #"head -c 20000000 /dev/zero | tr '\\0' x; echo; echo next\t" * 2 + 6, #r.out)
    local ls = lines(r.out)
    assert.are.equal(2, #ls)
    assert.truthy(ls[1]:find("\txxxxxxxx"))
    assert.is_nil(ls[1]:find("[^x]", ls[1]:find("\t") + 1))
    assert.truthy(ls[2]:find("\tnext$"))
    local grew = tonumber(r.err) / 1024
    assert.is_true(grew < 16, ("peak RSS grew by %.1f MiB"):format(grew))
  end)

  it("keeps every line of 20 jobs x 20,000 lines intact and tagged", function()
    local r = h.script([[
      local items = {}
      for i = 1, 20 do items[i] = i end
      pool{ jobs = 8, output = "line", tag = true }:map(function() return shell{ "seq", "20000" } end, items)
    ]], {}, { timeout = 60 })
    assert.are.equal(0, r.code, r.err)
    local per, bad = {}, 0
    for t, v in r.out:gmatch("([^\n]*)\t([^\n]*)\n") do
      per[t] = (per[t] or 0) + 1
      if not v:match("^%d+$") then bad = bad + 1 end
    end
    assert.are.equal(0, bad)
    for i = 1, 20 do
      assert.are.equal(20000, per[tostring(i)])
    end
    assert.are.equal(20 * 20000, count(r.out, "\n"))
  end)
end)

describe("output = 'ungroup', 'capture', 'null'", function()
  it("ungroup: the job writes straight to tide's stdout and stderr; tags are ignored, as GNU parallel does", function()
    local r = h.script([[
      shell("echo out; echo err >&2; printf tail", { output = "ungroup", tag = true })
      io.write("|")
      local r = shell("echo x", { output = "ungroup" })
      print(r.stdout, r.ok)
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("out\ntail|x\nnil\ttrue\n", r.out)
    assert.are.equal("err\n", r.err)
  end)

  it("capture: into the result, nothing printed, like capture = true", function()
    local r = h.script([[
      local res = pool{ jobs = 2, output = "capture" }:map(function(x)
        return shell("echo o" .. x .. "; echo e" .. x .. " >&2")
      end, { 1, 2 })
      print(res[1].stdout .. res[2].stderr)
      local r = shell("echo printed", { capture = false, output = "capture" })
      print(r.stdout)
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("o1\ne2\n\nprinted\nnil\n", r.out)
    assert.are.equal("", r.err)
  end)

  it("null: discards both streams", function()
    local r = h.script([[
      local r = shell("echo out; echo err >&2", { output = "null" })
      print(r.ok, r.stdout)
      pool{ output = "null" }:map(function() return shell("seq 100000") end, { 1, 2 })
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("true\tnil\n", r.out)
    assert.are.equal("", r.err)
  end)

  it("layers: pool, map and shell options, the most specific winning", function()
    local r = h.script([[
      local p = pool{ jobs = 1, output = "null" }
      p:map(function() shell("echo pool-null") end, { 1 })
      p:map(function() shell("echo map-line") end, { 1 }, { output = "line" })
      p:map(function() shell("echo shell-group", { output = "group" }) end, { 1 })
      p:map(function() shell("echo back-to-default", { output = false }) end, { 1 })
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("map-line\nshell-group\nback-to-default\n", r.out)
  end)
end)

describe("max_output", function()
  it("keeps the first and last parts, sets truncated, and lets the job run to its end", function()
    local r = h.script([[
      local r = shell("seq 1 2000000; echo done; echo e >&2", { capture = true, max_output = 20 })
      print(r.ok, r.truncated, r.omitted.stdout, r.omitted.stderr)
      io.write(r.stdout, "|", r.stderr)
      local small = shell("echo small", { output = "capture", max_output = "1K" })
      print(small.truncated, small.stdout)
    ]], {}, { timeout = 60 })
    assert.are.equal(0, r.code, r.err)
    -- 1..2000000: 12,888,896 digits and 2,000,000 newlines, then "done\n"
    local total = 12888896 + 2000000 + 5
    assert.are.equal(("true\ttrue\t%d\t0\n1\n2\n3\n4\n5\n0000\ndone\n|e\nnil\tsmall\n\n"):format(total - 20), r.out)
  end)

  it("keeps a bounded amount of memory when a huge output is captured with a limit", function()
    local r = h.script(h.HWM .. [[
      local before = hwm()
      local r = shell("head -c 50000000 /dev/zero", { capture = true, max_output = "2M" })
      print(#r.stdout, r.omitted.stdout, (hwm() - before) < 16 * 1024)
    ]], {}, { timeout = 60 })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(("%d\t%d\ttrue\n"):format(2 * 1024 * 1024, 50000000 - 2 * 1024 * 1024), r.out)
  end)
end)

describe("tags", function()
  it("prefix every line of both streams in group mode, with the item and a tab", function()
    local r = h.script([[
      pool{ jobs = 2, tag = true }:map(function(x)
        return shell("echo one; echo two; echo err >&2")
      end, { "a", 7 })
    ]])
    assert.are.equal(0, r.code, r.err)
    local out = lines(r.out)
    table.sort(out)
    assert.are.same({ "7\tone", "7\ttwo", "a\tone", "a\ttwo" }, out)
    local err = lines(r.err)
    table.sort(err)
    assert.are.same({ "7\terr", "a\terr" }, err)
  end)

  it("show a table item as its values, then name=value fields sorted; outside a map, the command", function()
    local r = h.script([[
      pool{ jobs = 1, tag = true }:map(function() return shell("echo x") end,
        { { "a", "b", 3 }, { lr = 0.1, depth = 2 }, { "p", { "q", "r" }, k = "v" } })
      shell("echo y", { tag = true })
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("a b 3\tx\ndepth=2 lr=0.1\tx\np q r k=v\tx\necho y\ty\n", r.out)
  end)

  it("take a function(item, i) whose string (or number) comes before the tab", function()
    local r = h.script([[
      pool{ jobs = 1 }:map(function() return shell("echo x; printf y") end, { "a", "b" },
        { tag = function(item, i) return "[" .. i .. ":" .. item .. "]" end, newline = true })
      shell("echo z", { tag = function() return 42 end })
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("[1:a]\tx\n[1:a]\ty\n[2:b]\tx\n[2:b]\ty\n42\tz\n", r.out)
  end)

  it("leave captured output untagged", function()
    local r = h.script([[print(shell("echo x", { tag = true, capture = true }).stdout)]])
    assert.are.equal("x\n\n", r.out)
  end)
end)

describe("order = 'input'", function()
  local REVERSE = [[
    local p = pool{ jobs = 5, order = "input", output = %q }
    p:map(function(i)
      return shell(("sleep 0.%%d; echo out %%d; echo err %%d >&2"):format(5 - i, i, i))
    end, { 1, 2, 3, 4, 5 })
  ]]

  it("prints each job's block in input order, though later jobs end first (group)", function()
    local r = h.script(REVERSE:format("group"))
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("out 1\nout 2\nout 3\nout 4\nout 5\n", r.out)
    assert.are.equal("err 1\nerr 2\nerr 3\nerr 4\nerr 5\n", r.err)
  end)

  it("prints the first item's lines as they come and holds the others' (line)", function()
    local r = h.script([[
      local p = pool{ jobs = 3, order = "input", output = "line", tag = true }
      p:map(function(i)
        return shell(("echo start; sleep 0.%d; echo end"):format(4 - i))
      end, { 1, 2, 3 })
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("1\tstart\n1\tend\n2\tstart\n2\tend\n3\tstart\n3\tend\n", r.out)
  end)

  it("is a map option too, and keeps the output of several jobs per item together", function()
    local r = h.script([[
      pool(4):map(function(i)
        shell(("sleep 0.%d; echo a%d"):format(4 - i, i))
        shell("echo b" .. i)
      end, { 1, 2, 3 }, { order = "input" })
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("a1\nb1\na2\nb2\na3\nb3\n", r.out)
  end)

  it("holds megabytes of finished output byte for byte behind a slow first item", function()
    local dir = h.tmpdir()
    local data = binary(1500000)
    h.spit(dir .. "/bin", data)
    local r = h.script([[
      local f = (...) .. "/bin"
      pool{ jobs = 4, order = "input" }:map(function(i)
        if i == 1 then return shell("sleep 0.5; echo first") end
        return shell{ "cat", f }
      end, { 1, 2, 3, 4, 5, 6 })
    ]], { dir }, { timeout = 60 })
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(0, r.code, r.err)
    assert.is_true(r.out == "first\n" .. data:rep(5), "held output differs")
  end)

  it("orders nested maps: an inner map's output stays inside its outer item's", function()
    local r = h.script([[
      pool{ jobs = 4, order = "input" }:map(function(i)
        pool(2):map(function(j)
          return shell(("sleep 0.%d; echo %d.%d"):format((3 - i) * 2 + (3 - j), i, j))
        end, { 1, 2 }, { order = "input" })
      end, { 1, 2 })
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("1.1\n1.2\n2.1\n2.2\n", r.out)
  end)

  it("still prints what finished when a halt stops the map", function()
    local mark = h.mark("ordhalt")
    local S = h.sleeper(mark)
    local r = h.script(([[
      local res = pool{ jobs = 3, order = "input" }:map(function(i)
        if i == 1 then return shell({ %q, "30" }) end
        if i == 2 then return shell("sleep 0.3; echo two; exit 1") end
        return shell("echo three")
      end, { 1, 2, 3 }, { halt = "now,fail=1" })
      print(res.halted, res[1] == require("tide").KILLED)
    ]]):format(S))
    assert.are.equal(1, r.code, r.err)
    assert.are.equal("two\nthree\nnow,fail=1\ttrue\n", r.out)
    assert.are.equal(0, h.gone(mark))
  end)
end)

describe("on_line", function()
  it("gets each complete line, its stream and the item, from the driver", function()
    local r = h.script([[
      local got = {}
      pool{ jobs = 2, output = "null" }:map(function(x)
        return shell("printf 'a\nb'; echo c >&2", { on_line = function(line, stream, item, partial)
          got[#got + 1] = ("%s %s %s %s"):format(item, stream, line, tostring(partial))
          assert(coroutine.isyieldable(), "not in a task")
        end })
      end, { "x", "y" })
      table.sort(got)
      print(table.concat(got, "\n"))
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("x stderr c false\nx stdout a false\nx stdout b false\n"
      .. "y stderr c false\ny stdout a false\ny stdout b false\n", r.out)
  end)

  it("can read a metric while the job runs; lines it returns false for are not printed", function()
    local r = h.script([[
      local best = 0
      local res = shell("for p in 10 50 90; do echo progress $p; echo keep $p; done", {
        output = "line", tag = true,
        on_line = function(line)
          local p = tonumber(line:match("^progress (%d+)"))
          if p then best = math.max(best, p); return false end
        end })
      print("best", best)
      shell("echo hide; echo show; echo hide >&2", { tag = true, on_line = function(l) return l ~= "hide" end })
    ]])
    assert.are.equal(0, r.code, r.err)
    local cmd = "for p in 10 50 90; do echo progress $p; echo keep $p; done"
    assert.are.equal(cmd .. "\tkeep 10\n" .. cmd .. "\tkeep 50\n" .. cmd .. "\tkeep 90\nbest\t90\n"
      .. "echo hide; echo show; echo hide >&2\tshow\n", r.out)
    assert.are.equal("", r.err)
  end)

  it("gets a line longer than max_line in pieces, partial = true on all but the last", function()
    local r = h.script([[
      local got = {}
      shell("head -c 2500 /dev/zero | tr '\\0' x; echo; printf 'short\nend'", { output = "line", max_line = 1000,
        on_line = function(line, _, _, partial) got[#got + 1] = #line .. (partial and "+" or "") end })
      io.stderr:write(table.concat(got, " "), "\n")
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("1000+ 1000+ 500 5 3\n", r.err)
    assert.are.equal(("x"):rep(2500) .. "\nshort\nend", r.out)
  end)

  it("an error in it stops the job and fails the item, naming it", function()
    local mark = h.mark("online")
    local S = h.sleeper(mark)
    local r = h.script(([[
      pool(2):map(function(i)
        return shell("echo go; exec %s 30", { on_line = function(l) if i == 2 then error("bad line " .. l) end end })
      end, { 1, 2 })
    ]]):format(S))
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("map: item 2 failed: [^\n]*script.lua:2: bad line go"), r.err)
    assert.is_true(r.secs < 10, "slow: " .. r.secs)
    assert.are.equal(0, h.gone(mark))
  end)

  it("may wait inside (it runs in the task): the job is held back, not tide's memory", function()
    local r = h.script(h.HWM .. [[
      local before, n = hwm(), 0
      shell("head -c 20000000 /dev/zero | tr '\\0' x | fold -w 999", { output = "null",
        on_line = function() n = n + 1 if n % 5000 == 0 then require("tide").sleep(0.05) end end })
      print(n, (hwm() - before) < 16 * 1024)
    ]], {}, { timeout = 60 })
    assert.are.equal(0, r.code, r.err)
    local n, bounded = r.out:match("^(%d+)\t(%a+)\n$")
    assert.are.equal("20021", n)
    if not h.SANITIZED then -- ASan keeps freed memory (20,000 line strings) in quarantine
      assert.are.equal("true", bounded)
    end
  end)
end)

describe("results = dir", function()
  it("writes stdout, stderr, cmd and exit per job, and a valid results.jsonl index", function()
    local dir = h.tmpdir()
    local r = h.script([[
      local dir = ...
      pool{ jobs = 2, results = dir .. "/res" }:map(function(x)
        return shell({ "sh", "-c", "printf 'out %s\\0\\377' \"$0\"; echo err $0 >&2; exit $0", x })
      end, { 0, 3 })
      shell("kill -9 $$", { results = dir .. "/res", output = "null" })
    ]], { dir })
    assert.are.equal(1, r.code, r.err)
    assert.is_true(r.out == "out 0\0\255out 3\0\255" or r.out == "out 3\0\255out 0\0\255")
    local res = dir .. "/res"
    assert.are.equal("out 0\0\255", h.slurp(res .. "/1/stdout"))
    assert.are.equal("err 3\n", h.slurp(res .. "/2/stderr"))
    assert.are.equal("0\n", h.slurp(res .. "/1/exit"))
    assert.are.equal("3\n", h.slurp(res .. "/2/exit"))
    assert.are.equal("137\n", h.slurp(res .. "/1.2/exit"))
    assert.are.equal("kill -9 $$\n", h.slurp(res .. "/1.2/cmd"))
    assert.truthy(h.slurp(res .. "/1/cmd"):find("^sh %-c "))
    local recs = {}
    for l in io.lines(res .. "/results.jsonl") do
      local obj, _, err = dkjson.decode(l, 1, dkjson.null)
      assert.is_nil(err, l)
      recs[obj.dir:match("[^/]+$")] = obj
    end
    os.execute("rm -rf " .. h.quote(dir))
    local a, b, c = recs["1"], recs["2"], recs["1.2"]
    assert.are.equal(1, a.i)
    assert.are.equal(0, a.item)
    assert.are.equal(0, a.code)
    assert.is_true(a.ok)
    assert.are.equal(dkjson.null, a.signal)
    assert.are.same({ "sh", "-c", "printf 'out %s\\0\\377' \"$0\"; echo err $0 >&2; exit $0", "0" }, a.argv)
    assert.are.equal(res .. "/1/stdout", a.stdout)
    assert.are.equal(res .. "/1/stderr", a.stderr)
    assert.are.equal(3, b.code)
    assert.are.equal(2, b.i)
    assert.is_false(b.ok)
    assert.are.equal("SIGKILL", c.signal)
    assert.are.equal(dkjson.null, c.code)
    assert.are.equal(dkjson.null, c.i)
    assert.is_true(type(a.elapsed) == "number" and a.elapsed >= 0 and a.elapsed < 10)
    assert.is_true(math.abs(a.start - os.time()) < 60)
  end)

  it("appends each job's line as it ends, so a partial run can be read", function()
    local dir = h.tmpdir()
    local r = h.script([[
      local idx = (...) .. "/results.jsonl"
      pool{ jobs = 2, results = ... }:map(function(i)
        if i == 1 then return shell("echo fast") end
        for _ = 1, 100 do -- the first job's line must show while this one runs
          local f = io.open(idx)
          local s = f and f:read("a") or ""
          if f then f:close() end
          if s:find("fast") then return shell("echo seen") end
          require("tide").sleep(0.05)
        end
        return shell("echo never-seen")
      end, { 1, 2 })
    ]], { dir })
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("fast\nseen\n", r.out)
  end)

  it("saves output in every mode, and gives names .2, .3 to more jobs of one item", function()
    local dir = h.tmpdir()
    local r = h.script([[
      local dir = ...
      pool{ jobs = 1, results = dir }:map(function(i)
        shell("echo group" .. i)
        shell("echo line" .. i, { output = "line", tag = true })
        shell("echo null" .. i, { output = "null" })
        shell("echo ungroup" .. i, { output = "ungroup" })
        shell("echo capture" .. i, { output = "capture" })
      end, { 1 })
    ]], { dir })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("group1\n1\tline1\nungroup1\n", r.out)
    assert.are.equal("group1\n", h.slurp(dir .. "/1/stdout"))
    assert.are.equal("line1\n", h.slurp(dir .. "/1.2/stdout"))
    assert.are.equal("null1\n", h.slurp(dir .. "/1.3/stdout"))
    assert.are.equal("ungroup1\n", h.slurp(dir .. "/1.4/stdout"))
    assert.are.equal("capture1\n", h.slurp(dir .. "/1.5/stdout"))
    assert.are.equal(5, count(h.slurp(dir .. "/results.jsonl"), "\n"))
    os.execute("rm -rf " .. h.quote(dir))
  end)

  it("keeps only the last attempt of a retried job, with its command", function()
    local dir = h.tmpdir()
    local r = h.script([[
      local n = 0
      shell("echo first; exit 1", { results = ..., output = "null", retries = 2,
        retry = function() n = n + 1 return "echo second" end })
    ]], { dir })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("second\n", h.slurp(dir .. "/1/stdout"))
    assert.are.equal("echo second\n", h.slurp(dir .. "/1/cmd"))
    local rec = dkjson.decode(h.slurp(dir .. "/results.jsonl"))
    assert.are.equal(2, rec.attempts)
    os.execute("rm -rf " .. h.quote(dir))
  end)

  it("raises when the directory cannot be made", function()
    local r = h.script([[shell("true", { results = "/proc/no/such/dir" })]])
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("results: cannot create directory /proc/no/such/dir", 1, true), r.err)
  end)
end)

describe("output option misuse", function()
  local cases = {
    { [[shell("true", { output = "lines" })]], "#2 to 'shell' (option 'output' must be 'group', 'line'" },
    { [[shell("true", { order = "input" })]], "#2 to 'shell' (option 'order' is a map's" },
    { [[shell("true", { capture = true, output = "line" })]], "#2 to 'shell' (capture = true and output = 'line'" },
    { [[shell("true", { tag = function() return {} end })]], "#2 to 'shell' (option 'tag' returned table" },
    { [[shell("true", { tag = "x" })]], "#2 to 'shell' (option 'tag' must be true or a function" },
    { [[shell("true", { on_line = 1 })]], "#2 to 'shell' (option 'on_line' must be a function" },
    { [[shell("true", { max_line = 0 })]], "#2 to 'shell' (option 'max_line' must be a size" },
    { [[shell("true", { max_output = "x" })]], "#2 to 'shell' (option 'max_output' must be a size" },
    { [[shell("true", { results = 1 })]], "#2 to 'shell' (option 'results' must be a directory name" },
    { [[shell("true", { newline = 1 })]], "#2 to 'shell' (option 'newline' must be a boolean" },
    { [[pool{ order = "keep" }]], "#1 to 'pool' (option 'order' must be 'input' or 'finish', got 'keep')" },
    { [[pool(1):map(print, {}, { order = 1 })]], "#3 to 'map' (option 'order' must be 'input' or 'finish'" },
    { [[pool{ output = "loud" }]], "#1 to 'pool' (option 'output' must be" },
    { [[shell("true", { ouput = "line" })]], "#2 to 'shell' (unknown option 'ouput' (did you mean 'output'?))" },
  }
  for _, case in ipairs(cases) do
    it("raises at the user's line: " .. case[1], function()
      local r = h.script("local x = 1\n" .. case[1] .. "\n")
      assert.are.equal(2, r.code)
      assert.truthy(r.err:find("script.lua:2: bad argument " .. case[2], 1, true), r.err)
    end)
  end
end)
