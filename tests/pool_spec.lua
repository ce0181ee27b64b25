-- pool(n): its size, its concurrency bound, parallelism and nesting.
local h = require("tests.helper")

describe("pool", function()
  it("runs at most n jobs at once, and uses all n slots", function()
    local r = h.script([[
      local cur, max = 0, 0
      local res = pool(3):map(function(i)
        cur = cur + 1
        if cur > max then max = cur end
        shell("sleep 0.1")
        cur = cur - 1
        return i
      end, { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 })
      print(max, res.n)
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("3\t10\n", r.out)
  end)

  it("accepts pool{jobs = n}", function()
    local r = h.script([[
      local cur, max = 0, 0
      local p = pool{ jobs = 2 }
      p:map(function()
        cur = cur + 1
        if cur > max then max = cur end
        shell("sleep 0.1")
        cur = cur - 1
      end, { 1, 2, 3, 4, 5 })
      print(max, p.size)
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("2\t2\n", r.out)
  end)

  it("pool{} and pool() take the -j default", function()
    local r = h.run({ "-j", "7", "-e", "print(pool().size, pool{}.size, pool(2).size)" })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("7\t7\t2\n", r.out)
  end)

  it("runs jobs in parallel: 8 x sleep 0.5 at pool(4) take two waves", function()
    local r = h.script([[
      pool(4):map(function() shell("sleep 0.5") end, { 1, 2, 3, 4, 5, 6, 7, 8 })
    ]])
    assert.are.equal(0, r.code, r.err)
    -- serially this is 4 s; in parallel two waves of 0.5 s
    assert.is_true(r.secs >= 0.95, "too fast for two waves: " .. r.secs)
    assert.is_true(r.secs < (h.SANITIZED and 2.5 or 1.8), "not parallel: " .. r.secs)
  end)

  for _, bad in ipairs({ "0", "-1", "1.5", "'4'", "{ job = 2 }", "{ jobs = 0 }", "{ jobs = 'x' }",
                          "true", "math.huge", "0/0" }) do
    it("rejects pool(" .. bad .. ") with bad argument #1 to 'pool'", function()
      local r = h.script(([[
        local ok, err = pcall(pool, %s)
        print(ok, err)
      ]]):format(bad))
      assert.are.equal(0, r.code, r.err)
      assert.truthy(r.out:find("^false\t[^\n]*bad argument #1 to 'pool' %(.+%)\n$"), r.out)
    end)
  end

  it("reports a bad size at the caller's line", function()
    local r = h.script("\n\npool(0)\n")
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("script.lua:3: bad argument #1 to 'pool'", 1, true), r.err)
  end)

  it("accepts a whole float size such as 2.0", function()
    local r = h.script("print(pool(2.0).size)")
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("2\n", r.out)
  end)

  it("can be used for several maps in turn", function()
    local r = h.script([[
      local p = pool(2)
      local a = p:map(function(x) return x * 2 end, { 1, 2, 3 })
      local b = p:map(function(x) return shell("echo " .. x, { capture = true }).stdout end, { "u", "v" })
      print(a[1], a[2], a[3], b[1], b[2])
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("2\t4\t6\tu\n\tv\n\n", r.out)
  end)

  it("nests a different pool inside a task", function()
    local r = h.script([[
      local outer, inner = pool(2), pool(2)
      local res = outer:map(function(a)
        local sub = inner:map(function(b)
          return shell("echo " .. a .. b, { capture = true }).stdout:gsub("\n", "")
        end, { "x", "y" })
        return table.concat(sub, ",")
      end, { "a", "b", "c" })
      print(table.concat(res, " "))
    ]], {}, { timeout = 30 })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("ax,ay bx,by cx,cy\n", r.out)
  end)

  it("nests the same pool(1) inside its own task without deadlock", function()
    local r = h.script([[
      local p = pool(1)
      local res = p:map(function(a)
        local sub = p:map(function(b)
          return shell("echo " .. a .. b, { capture = true }).stdout:gsub("\n", "")
        end, { 1, 2 })
        return table.concat(sub, ",")
      end, { "a", "b" })
      print(table.concat(res, " "))
    ]], {}, { timeout = 20 })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("a1,a2 b1,b2\n", r.out)
  end)

  it("nests the same pool three levels deep when every slot is busy", function()
    local r = h.script([[
      local p = pool(2)
      local function leaf(x) return shell("echo " .. x, { capture = true }).stdout:gsub("\n", "") end
      local res = p:map(function(a)
        return table.concat(p:map(function(b)
          return table.concat(p:map(function(c) return leaf(a .. b .. c) end, { 1, 2 }), "+")
        end, { "x", "y" }), ",")
      end, { "A", "B", "C" })
      print(table.concat(res, " "))
    ]], {}, { timeout = 20 })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("Ax1+Ax2,Ay1+Ay2 Bx1+Bx2,By1+By2 Cx1+Cx2,Cy1+Cy2\n", r.out)
  end)

  it("bounds concurrent maps that share one pool", function()
    local r = h.script([[
      local shared = pool(2)
      local cur, max = 0, 0
      pool(4):map(function()
        shared:map(function()
          cur = cur + 1
          if cur > max then max = cur end
          shell("sleep 0.05")
          cur = cur - 1
        end, { 1, 2, 3 })
      end, { 1, 2, 3, 4 })
      print(max)
    ]], {}, { timeout = 30 })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("2\n", r.out)
  end)

  it("maps from a coroutine of the script's own", function()
    local r = h.script([[
      local f = coroutine.wrap(function()
        local res = pool(2):map(function(x)
          return shell({ "echo", x }, { capture = true }).stdout
        end, { "p", "q" })
        coroutine.yield(res[1] .. res[2])
      end)
      io.write(f())
    ]], {}, { timeout = 20 })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("p\nq\n", r.out)
  end)
end)
