-- p:map(fn, list): order, lists and iterators, laziness, errors.
local h = require("tests.helper")

describe("map", function()
  it("returns results in input order with n, whatever order items finish in", function()
    local r = h.script([[
      local delays = { 0.3, 0.2, 0.1, 0 }
      local res = pool(4):map(function(d, i)
        shell("sleep " .. d)
        return "r" .. i
      end, delays)
      print(res.n, #res, table.concat(res, " "))
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("4\t4\tr1 r2 r3 r4\n", r.out)
  end)

  it("calls fn with the item and its index", function()
    local r = h.script([[
      local res = pool(2):map(function(item, i) return item .. "@" .. i end, { "a", "b", "c" })
      print(table.concat(res, " "))
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("a@1 b@2 c@3\n", r.out)
  end)

  it("keeps nil results in their place", function()
    local r = h.script([[
      local res = pool(2):map(function(x) if x % 2 == 0 then return x end end, { 1, 2, 3, 4, 5 })
      print(res.n, res[1], res[2], res[3], res[4], res[5])
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("5\tnil\t2\tnil\t4\tnil\n", r.out)
  end)

  it("honours an explicit n for lists with nil holes", function()
    local r = h.script([[
      local seen = {}
      local res = pool(2):map(function(x, i)
        seen[#seen + 1] = i .. "=" .. tostring(x)
        return x and x * 10
      end, { 1, nil, 3, nil, n = 5 })
      table.sort(seen)
      print(res.n, res[1], res[2], res[3], res[4], res[5])
      print(table.concat(seen, " "))
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("5\t10\tnil\t30\tnil\tnil\n1=1 2=nil 3=3 4=nil 5=nil\n", r.out)
  end)

  it("takes an iterator function, called until it returns nil", function()
    local r = h.script([[
      local words = ("alpha beta gamma delta"):gmatch("%a+")
      local res = pool(3):map(function(w, i)
        return i .. ":" .. shell({ "echo", w }, { capture = true }).stdout:gsub("\n", "")
      end, words)
      print(res.n, table.concat(res, " "))
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("4\t1:alpha 2:beta 3:gamma 4:delta\n", r.out)
  end)

  it("pulls from an iterator only when a slot is free", function()
    local r = h.script([[
      local pulled, finished, worst = 0, 0, 0
      local function gen()
        if pulled - finished > worst then worst = pulled - finished end
        if pulled == 12 then return nil end
        pulled = pulled + 1
        return pulled
      end
      local res = pool(3):map(function(x)
        shell("sleep 0.02")
        finished = finished + 1
        return x
      end, gen)
      print(res.n, worst)
    ]])
    assert.are.equal(0, r.code, r.err)
    -- when an item is pulled, at most n - 1 others may be in flight
    assert.are.equal("12\t2\n", r.out)
  end)

  it("keeps the order of an iterator that runs jobs to make its items", function()
    local r = h.script([[
      local k = 0
      local res = pool(2):map(function(x) return x .. "!" end, function()
        k = k + 1
        if k <= 5 then return (shell({ "echo", k }, { capture = true }).stdout:gsub("\n", "")) end
      end)
      print(res.n, table.concat(res, " "))
    ]], {}, { timeout = 20 })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("5\t1! 2! 3! 4! 5!\n", r.out)
  end)

  it("takes a coroutine.wrap generator that runs jobs", function()
    local r = h.script([[
      local gen = coroutine.wrap(function()
        for i = 1, 5 do
          coroutine.yield((shell({ "echo", i }, { capture = true }).stdout:gsub("\n", "")))
        end
      end)
      local res = pool(2):map(function(x) return x .. "!" end, gen)
      print(res.n, table.concat(res, " "))
    ]], {}, { timeout = 20 })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("5\t1! 2! 3! 4! 5!\n", r.out)
  end)

  it("never runs ahead on an endless generator", function()
    local r = h.script([[
      local calls = 0
      local function forever() calls = calls + 1; return calls end
      local ok, err = pcall(function()
        return pool(4):map(function(x)
          -- item 20 fails as it starts, not after a job: siblings that
          -- end first while it runs would pull more items (a race, not
          -- running ahead)
          if x == 20 then error("stop here") end
          shell("sleep 0.01")
          return x
        end, forever)
      end)
      print(ok, calls)
      io.stderr:write(tostring(err))
    ]], {}, { timeout = 30 })
    assert.are.equal(1, r.code, r.err) -- the cancelled siblings' jobs count as failed
    local ok, calls = r.out:match("^(%a+)\t(%d+)\n$")
    assert.are.equal("false", ok)
    -- item 20 fails; at most 3 others can be running then
    assert.is_true(tonumber(calls) >= 20 and tonumber(calls) <= 24, r.out)
    assert.truthy(r.err:find("stop here", 1, true), r.err)
  end)

  it("returns an empty result with n = 0 for an empty list, never calling fn", function()
    local r = h.script([[
      local called = false
      local a = pool(2):map(function() called = true end, {})
      local b = pool(2):map(function() called = true end, function() return nil end)
      print(a.n, #a, next(a, nil) == "n", b.n, called)
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("0\t0\ttrue\t0\tfalse\n", r.out)
  end)

  it("handles a thousand items of pure Lua", function()
    local r = h.script([[
      local list = {}
      for i = 1, 1000 do list[i] = i end
      local res = pool(8):map(function(x) return x * x end, list)
      local sum = 0
      for i = 1, res.n do sum = sum + res[i] end
      print(res.n, sum)
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("1000\t333833500\n", r.out)
  end)

  it("accepts a callable table as fn", function()
    local r = h.script([[
      local f = setmetatable({}, { __call = function(self, x) return x + 1 end })
      print(table.concat(pool(2):map(f, { 1, 2 }), " "))
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("2 3\n", r.out)
  end)

  it("rejects a fn that is not callable with bad argument #1 to 'map'", function()
    local r = h.script([[
      for _, fn in ipairs({ 42, "f", {} }) do
        print(select(2, pcall(function() return pool(2):map(fn, { 1 }) end)))
      end
    ]])
    assert.are.equal(0, r.code, r.err)
    local n = 0
    for line in r.out:gmatch("[^\n]+") do
      n = n + 1
      assert.truthy(line:find("bad argument #1 to 'map'", 1, true), line)
    end
    assert.are.equal(3, n)
  end)

  it("rejects a list that is neither table nor function with bad argument #2 to 'map'", function()
    local r = h.script([[
      for _, list in ipairs({ 42, "abc", true }) do
        print(select(2, pcall(function() return pool(2):map(print, list) end)))
      end
      print(select(2, pcall(function() return pool(2):map(print) end)))
    ]])
    assert.are.equal(0, r.code, r.err)
    local n = 0
    for line in r.out:gmatch("[^\n]+") do
      n = n + 1
      assert.truthy(line:find("bad argument #2 to 'map'", 1, true), line)
    end
    assert.are.equal(4, n)
  end)

  it("explains p.map called without the colon", function()
    local r = h.script([[
      local p = pool(2)
      p.map(function() end, { 1 })
    ]])
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("script.lua:2:", 1, true), r.err)
    assert.truthy(r.err:find("p:map", 1, true), r.err)
  end)

  it("raises 'map: item i failed:' with the message and a traceback, exit 2", function()
    local r = h.script([[
      local function inner(x)
        if x == 3 then error("boom on three") end
        return x
      end
      pool(2):map(function(x) return inner(x) end, { 1, 2, 3, 4 })
      print("not reached")
    ]])
    assert.are.equal(2, r.code)
    assert.are.equal("", r.out)
    assert.truthy(r.err:find("^tide: "), r.err)
    assert.truthy(r.err:find("map: item 3 failed:", 1, true), r.err)
    assert.truthy(r.err:find("script.lua:2: boom on three", 1, true), r.err)
    assert.truthy(r.err:find("traceback", 1, true), r.err)
    -- the traceback reaches into the task's own frames
    assert.truthy(r.err:find("script.lua:2: in ", 1, true), r.err)
  end)

  it("stops the pool on an error: siblings' jobs killed, no further items started", function()
    local S = h.sleeper()
    local dir = h.tmpdir()
    local r = h.script(([[
      local dir, S = ...
      pool(3):map(function(i)
        io.open(dir .. "/started." .. i, "w"):close()
        if i == 1 then
          shell("sleep 0.3")
          error("item one broke")
        end
        shell({ "sh", "-c", S .. " 100 & " .. S .. " 100; :" })
      end, { 1, 2, 3, 4, 5, 6, 7, 8 })
    ]]), { dir, S }, { timeout = 30 })
    local p = io.popen("ls " .. h.quote(dir))
    local started = p:read("a")
    p:close()
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("map: item 1 failed:", 1, true), r.err)
    assert.truthy(r.err:find("item one broke", 1, true), r.err)
    assert.are.equal("started.1\nstarted.2\nstarted.3\n", started)
    assert.is_true(r.secs < 5, "siblings were not stopped promptly: " .. r.secs)
    assert.are.equal(0, h.gone(h.MARK))
  end)

  it("runs the cancelled tasks' pending <close> variables before raising", function()
    local r = h.script([[
      local closed = {}
      local ok, err = pcall(function()
        return pool(3):map(function(i)
          local guard <close> = setmetatable({}, { __close = function() closed[#closed + 1] = i end })
          if i == 1 then
            shell("sleep 0.2")
            error("first fails")
          end
          shell("sleep 30")
        end, { 1, 2, 3 })
      end)
      table.sort(closed)
      print(ok, table.concat(closed, ","))
    ]], {}, { timeout = 30 })
    assert.are.equal("false\t1,2,3\n", r.out)
    assert.is_true(r.secs < 5, "slow: " .. r.secs)
  end)

  it("takes io.lines(file) as its list", function()
    local dir = h.tmpdir()
    h.spit(dir .. "/items", "one\ntwo\nthree\n")
    local r = h.script([[
      local res = pool(2):map(function(line, i)
        return i .. "=" .. shell({ "echo", line }, { capture = true }).stdout:gsub("\n", "")
      end, io.lines((...) .. "/items"))
      print(res.n, table.concat(res, " "))
    ]], { dir })
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("3\t1=one 2=two 3=three\n", r.out)
  end)

  it("lets the script catch a failed map with pcall and go on", function()
    local r = h.script([[
      local ok, err = pcall(function()
        return pool(2):map(function(x) if x == 2 then error("bad two") end return x end, { 1, 2, 3 })
      end)
      print(ok, (err:find("map: item 2 failed:", 1, true)) ~= nil, (err:find("bad two", 1, true)) ~= nil)
      print(table.concat(pool(2):map(function(x) return x end, { "still", "works" }), " "))
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("false\ttrue\ttrue\nstill works\n", r.out)
  end)

  it("keeps going when a task catches its own error", function()
    local r = h.script([[
      local res = pool(2):map(function(x)
        local ok = pcall(error, "inner")
        return tostring(ok) .. x
      end, { 1, 2 })
      print(res[1], res[2])
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("false1\tfalse2\n", r.out)
  end)

  it("reports an iterator that raises", function()
    local r = h.script([[
      local n = 0
      pool(2):map(function(x) return x end, function()
        n = n + 1
        if n == 3 then error("generator exploded") end
        return n
      end)
    ]])
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("^tide: "), r.err)
    assert.truthy(r.err:find("map: the list iterator raised an error:", 1, true), r.err)
    assert.truthy(r.err:find("generator exploded", 1, true), r.err)
  end)

  it("propagates a failure from a nested map to the outer map", function()
    local r = h.script([[
      local p = pool(2)
      p:map(function(a)
        return p:map(function(b)
          if a == 2 and b == 2 then error("deep failure") end
          return b
        end, { 1, 2 })
      end, { 1, 2 })
    ]], {}, { timeout = 20 })
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("map: item 2 failed:", 1, true), r.err)
    assert.truthy(r.err:find("deep failure", 1, true), r.err)
  end)
end)
