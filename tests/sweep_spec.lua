-- The sweep library's sequences: range, product/grid, zip, lines, glob, the
-- combinators, and random search.  Orders, laziness (items pulled are
-- counted), re-iteration, and errors that name the argument.
local h = require("tests.helper")

-- show(s): prints a sequence's items on one line; arrays as {a,b}, named
-- tables as {k=v,...} in key order.  counter(n): an iterator function over
-- 1..n that counts its calls in pulls[name].
local PRELUDE = [[
local function str(x)
  if type(x) ~= "table" then return tostring(x) end
  local parts = {}
  if x[1] ~= nil then
    for _, v in ipairs(x) do parts[#parts + 1] = str(v) end
  else
    local keys = {}
    for k in pairs(x) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. str(x[k]) end
  end
  return "{" .. table.concat(parts, ",") .. "}"
end
function show(s)
  local out = {}
  for x in s() do out[#out + 1] = str(x) end
  print(table.concat(out, " "))
end
pulls = {}
function counter(name, n)
  local i = 0
  pulls[name] = 0
  return function()
    pulls[name] = pulls[name] + 1
    if i < n then i = i + 1 return i end
  end
end
]]

local function run(src, opts)
  local r = h.script(PRELUDE .. src, {}, opts)
  assert.are.equal(0, r.code, r.err)
  return r.out
end

-- A script that must fail with a Lua error at its line 1.
local error_of = h.error_of

describe("range", function()
  it("is inclusive like a numeric for, with integers when a and step are", function()
    local out = run([[
      show(range(1, 5)) show(range(5, 1, -2)) show(range(3, 1)) show(range(1, 2.5))
      show(range(1, 1)) print(math.type(collect(range(1, 3))[1]), math.type(collect(range(1.0, 3))[1]))
      print(#range(1, 10), #range(10, 1), #range(1, 10, 3))
    ]])
    assert.are.equal("1 2 3 4 5\n5 3 1\n\n1 2\n1\ninteger\tfloat\n10\t0\t4\n", out)
  end)

  it("gives floats as a + k*step, keeping an end that only rounding would drop", function()
    local out = run([[
      local r = collect(range(0, 0.3, 0.1))
      print(#r, r[4] == 0.3, r[3] == 0.2)
      show(range(0, 1, 0.25)) show(range(1, 0, -0.5)) print(#range(0, 1, 0.1))
      print(#range(0, 0.35, 0.1))
    ]])
    assert.are.equal("4\ttrue\ttrue\n0.0 0.25 0.5 0.75 1.0\n1.0 0.5 0.0\n11\n4\n", out)
  end)

  it("does not overflow at the integer limits and can be endless", function()
    local out = run([[
      print(#collect(range(math.maxinteger - 2, math.maxinteger)))
      print(#collect(range(math.mininteger + 2, math.mininteger, -1)))
      show(take(range(1, math.huge), 3))
    ]])
    assert.are.equal("3\n3\n1 2 3\n", out)
  end)

  it("names its bad arguments", function()
    assert.are.equal("tide: script.lua:1: bad argument #2 to 'range' (number expected, got no value)",
      error_of("range(1)"))
    assert.are.equal("tide: script.lua:1: bad argument #3 to 'range' (step is zero)",
      error_of("range(1, 2, 0)"))
    assert.are.equal("tide: script.lua:1: bad argument #1 to 'range' (number expected, got string)",
      error_of("range('1', 2)"))
  end)
end)

describe("product and grid", function()
  it("gives every combination as an array, the last list varying fastest", function()
    local out = run([[
      show(product({ 1, 2 }, { "a", "b", "c" }))
      show(product{ { 1, 2 }, { "x", "y" } })
      print(#product({ 1, 2 }, { "a", "b", "c" }, range(1, 4)))
      show(product({ 1, 2 }, {})) show(product()) show(product({ "only" }))
    ]])
    assert.are.equal("{1,a} {1,b} {1,c} {2,a} {2,b} {2,c}\n{1,x} {1,y} {2,x} {2,y}\n24\n\n{}\n{only}\n", out)
  end)

  it("names items after a table of named lists, in key order, fixed values included", function()
    local out = run([[
      show(grid{ lr = { 0.1, 0.01 }, depth = range(1, 2), model = "mlp" })
      show(product{ b = { 1, 2 }, a = { "x" } })
    ]])
    assert.are.equal("{depth=1,lr=0.1,model=mlp} {depth=1,lr=0.01,model=mlp} "
      .. "{depth=2,lr=0.1,model=mlp} {depth=2,lr=0.01,model=mlp}\n{a=x,b=1} {a=x,b=2}\n", out)
  end)

  it("starts a product of 10^9 items at once in constant memory", function()
    local r = h.script([[
      local big = product(range(1, 1000), range(1, 1000), range(1, 1000))
      print(#big)
      local res = pool(2):map(function(x) return table.concat(x, ",") end, take(big, 3))
      print(table.concat(res, " "))
      collectgarbage()
      local before, n = collectgarbage("count"), 0
      for _ in big() do
        n = n + 1
        if n == 200000 then break end
      end
      collectgarbage()
      print(collectgarbage("count") - before < 100)
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("1000000000\n1,1,1 1,1,2 1,1,3\ntrue\n", r.out)
    assert.is_true(r.secs < 5)
  end)

  it("pulls lazily, walks inner sequences again and keeps one-shot iterators' items", function()
    local out = run([[
      local inner = map(counter("seq", 3), function(x) return x end)
      local lazy = map(range(1, 3), function(x) pulls.inner = (pulls.inner or 0) + 1 return x end)
      show(take(product(counter("outer", 1000000), lazy), 4))
      print(pulls.outer, pulls.inner)
      local p = product({ "a", "b" }, counter("f", 3))
      show(p) show(p)
      print(pulls.f)
      show(product({ "x" }, inner))
    ]])
    assert.are.equal("{1,1} {1,2} {1,3} {2,1}\n2\t4\n"
      .. "{a,1} {a,2} {a,3} {b,1} {b,2} {b,3}\n{a,1} {a,2} {a,3} {b,1} {b,2} {b,3}\n4\n{x,1} {x,2} {x,3}\n", out)
  end)

  it("names its bad arguments", function()
    assert.are.equal("tide: script.lua:1: bad argument #2 to 'product' "
      .. "(array, sequence or iterator function expected, got number)", error_of("product({1}, 5)"))
    assert.are.equal("tide: script.lua:1: bad argument #1 to 'grid' "
      .. "(list 'a': a table with no array part (wrap a fixed table value as {value}))",
      error_of("grid{ a = { x = 1 } }"))
    assert.are.equal("tide: script.lua:1: bad argument #1 to 'grid' "
      .. "(table of named lists or array of {name, list} pairs expected, got an array or a sequence)",
      error_of("grid{ 1, 2 }"))
  end)
end)

describe("zip", function()
  it("takes lists in lockstep, stopping at the shortest", function()
    local out = run([[
      show(zip({ 1, 2, 3 }, { "a", "b" }))
      show(zip{ { 1, 2 }, range(5, 9), { "x", "y", "z" } })
      show(zip({ 1, 2 }, {})) show(zip()) show(zip({ 7, 8 }))
      print(#zip({ 1, 2, 3 }, range(1, 10)))
    ]])
    assert.are.equal("{1,a} {2,b}\n{1,5,x} {2,6,y}\n\n\n{7} {8}\n3\n", out)
  end)

  it("cycles shorter lists until the longest ends, as GNU parallel --link", function()
    local out = run([[
      show(zip{ { 1, 2, 3, 4, 5 }, { "a", "b" }, cycle = true })
      show(zip{ { 1, 2 }, counter("f", 3), cycle = true })
      show(zip{ { 1, 2 }, {}, cycle = true })
      print(#zip{ { 1, 2, 3, 4, 5 }, { "a", "b" }, cycle = true })
    ]])
    assert.are.equal("{1,a} {2,b} {3,a} {4,b} {5,a}\n{1,1} {2,2} {1,3}\n\n5\n", out)
  end)

  it("pulls no more than it gives", function()
    local out = run([[
      show(take(zip(counter("a", 100), counter("b", 100)), 2))
      print(pulls.a, pulls.b)
    ]])
    assert.are.equal("{1,1} {2,2}\n2\t2\n", out)
  end)

  it("rejects unknown options", function()
    assert.are.equal("tide: script.lua:1: bad argument #1 to 'zip' (unknown option 'cylce')",
      error_of("zip{ { 1 }, { 2 }, cylce = true }"))
  end)
end)

describe("lines", function()
  it("gives lines without newlines, keeping CR and empty lines, and can be read again", function()
    local dir = h.tmpdir()
    h.spit(dir .. "/crlf", "a\r\nb\r\n\r\nc")
    h.spit(dir .. "/plain", "x\n\ny\n")
    h.spit(dir .. "/empty", "")
    h.spit(dir .. "/blank", "\n")
    local out = run(([[
      local dir = %q
      for _, name in ipairs({ "crlf", "plain", "empty", "blank" }) do
        local t = {}
        for l in lines(dir .. "/" .. name)() do t[#t + 1] = ("%%q"):format(l) end
        print(name, #t, table.concat(t, ","))
      end
      local s = lines(dir .. "/plain")
      print(#collect(s), #collect(s))
      local r = pool(2):map(function(l, i) return i .. ":" .. l end, s)
      print(table.concat(r, " "))
    ]]):format(dir))
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal('crlf\t4\t"a\\13","b\\13","\\13","c"\nplain\t3\t"x","","y"\n'
      .. 'empty\t0\t\nblank\t1\t""\n3\t3\n1:x 2: 3:y\n', out)
  end)

  it('reads stdin for "-"', function()
    local out = run([[show(lines("-")) show(lines("-"))]], { stdin = "one\ntwo\n" })
    assert.are.equal("one two\n\n", out)
  end)

  it("reports a missing file where lines() is called", function()
    assert.are.equal("tide: script.lua:1: bad argument #1 to 'lines' "
      .. "(/nonexistent/x: No such file or directory)", error_of("lines('/nonexistent/x')"))
  end)
end)

describe("glob", function()
  it("gives sorted matches; no match is empty, not an error", function()
    local dir = h.tmpdir()
    for _, f in ipairs({ "b.txt", "a.txt", "c d.txt", ".hidden.txt", "e.log", "B.txt" }) do
      h.spit(dir .. "/" .. f, "")
    end
    os.execute("mkdir " .. h.quote(dir .. "/sub"))
    h.spit(dir .. "/sub/f.txt", "")
    local out = run(([[
      local dir = %q
      local function rel(s) return map(s, function(p) return p:sub(#dir + 2) end) end
      show(rel(glob(dir .. "/*.txt")))
      show(rel(glob(dir .. "/*.{log,nope}")))
      show(rel(glob(dir .. "/*/*.txt")))
      print(#collect(glob(dir .. "/*.none")), #collect(glob("/nonexistent/*")))
      local r = pool(2):map(function(p) return shell({ "test", "-f", p }).ok end, glob(dir .. "/*.txt"))
      print(r.n, r[1], r[4])
    ]]):format(dir))
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal("B.txt a.txt b.txt c d.txt\ne.log\nsub/f.txt\n0\t0\n4\ttrue\ttrue\n", out)
  end)

  it("reads the directory when iterated, not when created", function()
    local dir = h.tmpdir()
    local out = run(([[
      local g = glob(%q .. "/*")
      print(#collect(g))
      io.open(%q .. "/new", "w"):close()
      print(#collect(g))
    ]]):format(dir, dir))
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal("0\n1\n", out)
  end)
end)

describe("combinators", function()
  it("take arrays, sequences and iterator functions", function()
    local out = run([[
      show(map({ 1, 2, 3 }, function(x, i) return x * 10 + i end))
      show(filter(range(1, 10), function(x) return x % 3 == 0 end))
      show(take(("a b c d"):gmatch("%S+"), 2))
      show(chain({ 1 }, range(2, 3), ("x y"):gmatch("%S+"), {}))
      show(enumerate({ "a", "b" })) show(enumerate(range(5, 6), 0))
      print(#collect(range(1, 4)), #chain({ 1, 2 }, range(1, 3)), #map(range(1, 7), tostring))
      show(range(1, 20):filter(function(x) return x % 2 == 1 end):map(function(x) return x * x end):take(4))
    ]])
    assert.are.equal("11 22 33\n3 6 9\na b\n1 2 3 x y\n{1,a} {2,b}\n{0,5} {1,6}\n4\t5\t7\n1 9 25 49\n", out)
  end)

  it("pull only what is asked for", function()
    local out = run([[
      show(take(map(counter("a", 1000), function(x) return -x end), 3))
      show(take(filter(counter("b", 1000), function(x) return x % 2 == 0 end), 2))
      show(take(chain(counter("c", 2), counter("d", 100)), 3))
      show(take(counter("e", 100), 0))
      print(pulls.a, pulls.b, pulls.c, pulls.d, pulls.e)
    ]])
    assert.are.equal("-1 -2 -3\n2 4\n1 2 1\n\n3\t4\t3\t1\t0\n", out)
  end)

  it("can be iterated again, in a generic for and by p:map", function()
    local out = run([[
      local s = map(product(range(1, 2), { "a", "b" }), function(x) return x[1] .. x[2] end)
      show(s)
      for x in s() do io.write(x, ";") end print()
      print(table.concat(pool(3):map(function(x, i) return i .. x end, s), " "))
      print(table.concat(pool(3):map(function(x) return x end, s), " "))
      local once = map(("p q"):gmatch("%S+"), string.upper)
      show(once) show(once)
    ]])
    assert.are.equal("1a 1b 2a 2b\n1a;1b;2a;2b;\n11a 21b 32a 42b\n1a 1b 2a 2b\nP Q\n\n", out)
  end)

  it("are the same functions as require('tide') fields", function()
    local out = run([[
      local tide = require("tide")
      local ok = true
      for _, n in ipairs({ "range", "product", "grid", "zip", "lines", "glob", "map", "filter", "take",
          "chain", "enumerate", "collect", "sample", "uniform", "loguniform", "choice", "random_grid",
          "latin_hypercube", "fmt", "argv", "quote" }) do
        ok = ok and type(tide[n]) == "function" and _G[n] == tide[n]
      end
      print(ok)
    ]])
    assert.are.equal("true\n", out)
  end)

  it("explain misuse", function()
    assert.are.equal("tide: script.lua:1: a sequence is looped over as `for x in seq() do` (with the parentheses)",
      error_of("for x in range(1, 3) do end"))
    assert.are.equal("tide: script.lua:1: the length of this sequence is not known before it is iterated "
      .. "(use #collect(seq))", error_of("print(#filter({ 1 }, print))"))
    assert.are.equal("tide: script.lua:1: bad argument #2 to 'map' (function expected, got nil)",
      error_of("map({ 1 })"))
    assert.are.equal("tide: script.lua:1: bad argument #1 to 'filter' "
      .. "(array, sequence or iterator function expected, got a table with no array part)",
      error_of("filter({ a = 1 }, print)"))
    assert.are.equal("tide: script.lua:1: bad argument #2 to 'take' (n must be a whole number of at least 0, got -1)",
      error_of("take({ 1 }, -1)"))
    assert.are.equal("tide: map: the function returned nil for item 2 (a sequence cannot hold nil; "
      .. "drop items with filter)", error_of("collect(map({ 1, 2 }, function(x) if x < 2 then return x end end))"))
    local r = h.script("pool(2):map(print, map({ 1 }, function() end))")
    assert.are.equal(2, r.code)
    assert.matches("map: the list iterator raised an error: map: the function returned nil for item 1", r.err,
      1, true)
  end)
end)

describe("random search", function()
  it("uses xoshiro256** seeded by splitmix64, as the reference C code", function()
    local out = run([[
      local rng = require("tide.sweep.random").new_rng(42)
      print(rng:next(), rng:next(), rng:next(), require("tide.sweep.random").new_rng(-7):next())
    ]])
    assert.are.equal("1546998764402558742\t6990951692964543102\t-5902157311460992607\t-935278008730389822\n", out)
  end)

  it("samples k items in input order, the same for the same seed everywhere", function()
    local out = run([[
      show(sample(range(1, 100), 5, 42))
      show(sample(range(1, 100), 5, 42))
      show(sample(filter(range(1, 100), function() return true end), 5, 42))
      show(sample(product(range(1, 1000), range(1, 1000), range(1, 1000)), 2, 7))
      show(sample({ "a", "b", "c" }, 10, 1)) show(sample({ "a", "b" }, 0, 1))
      print(#collect(sample(range(1, 100), 5)), #sample(range(1, 100), 5))
    ]])
    -- Pinned values: a change of generator shows here.
    assert.are.equal("23 34 51 57 98\n23 34 51 57 98\n31 54 77 82 94\n{252,230,787} {257,389,307}\n"
      .. "a b c\n\n5\t5\n", out)
  end)

  it("reservoir-samples a lazy sequence in one pass, each item equally likely", function()
    local out = run([[
      local hits = {}
      for seed = 1, 2000 do
        for x in sample(counter("c", 10), 3, seed)() do hits[x] = (hits[x] or 0) + 1 end
      end
      local ok = true
      for x = 1, 10 do ok = ok and hits[x] > 500 and hits[x] < 700 end -- 600 expected
      print(ok, pulls.c)
    ]])
    assert.are.equal("true\t11\n", out)
  end)

  it("leaves math.random's state alone", function()
    local out = run([[
      math.randomseed(123)
      local a = { math.random(1000), math.random(1000) }
      math.randomseed(123)
      math.random(1000)
      collect(sample(range(1, 50), 5, 1))
      collect(random_grid({ x = uniform(0, 1) }, 5, 1))
      collect(sample(range(1, 50), 5))
      print(math.random(1000) == a[2])
    ]])
    assert.are.equal("true\n", out)
  end)

  it("draws parameter tables from distributions, reproducibly", function()
    local out = run([[
      local spec = { lr = loguniform(1e-4, 1e-1), m = uniform(0.5, 0.9), b = choice{ 16, 32, 64 }, tag = "x" }
      local g = random_grid(spec, 200, 9)
      local ok, seen = true, {}
      for p in g() do
        ok = ok and p.lr >= 1e-4 and p.lr <= 1e-1 and p.m >= 0.5 and p.m < 0.9 and p.tag == "x"
        seen[p.b] = true
      end
      local small = 0
      for p in g() do if p.lr < 1e-3 then small = small + 1 end end
      print(#g, ok, seen[16] and seen[32] and seen[64], small > 40 and small < 95)
      local a, b = collect(random_grid(spec, 3, 5)), collect(random_grid(spec, 3, 5))
      local same = true
      for i = 1, 3 do same = same and a[i].lr == b[i].lr and a[i].m == b[i].m and a[i].b == b[i].b end
      spec.extra = uniform(0, 1)
      local c = collect(random_grid(spec, 3, 5))
      for i = 1, 3 do same = same and a[i].lr == c[i].lr and a[i].m == c[i].m end
      print(same, collect(random_grid(spec, 3, 6))[1].lr ~= a[1].lr)
      local p = collect(random_grid({ x = uniform(0, 1), y = choice{ "a", "b" } }, 1, 42))[1]
      print(("%.12f %s"):format(p.x, p.y))
    ]])
    assert.are.equal("200\ttrue\ttrue\ttrue\ntrue\ttrue\n0.062738808456 b\n", out)
  end)

  it("fills a Latin hypercube: each stratum of each parameter used once", function()
    local out = run([[
      local pts = collect(latin_hypercube({ x = uniform(0, 10), y = loguniform(1, 1e10), k = 3 }, 10, 1))
      local xs, ys, ok = {}, {}, true
      for _, p in ipairs(pts) do
        xs[math.floor(p.x) + 1] = true
        ys[math.floor(math.log(p.y, 10)) + 1] = true
        ok = ok and p.k == 3
      end
      for i = 1, 10 do ok = ok and xs[i] and ys[i] end
      print(#pts, ok)
    ]])
    assert.are.equal("10\ttrue\n", out)
  end)

  it("names its bad arguments", function()
    assert.are.equal("tide: script.lua:1: bad argument #3 to 'sample' (seed must be an integer, got 1.5)",
      error_of("sample({ 1 }, 1, 1.5)"))
    assert.are.equal("tide: script.lua:1: bad argument #2 to 'uniform' (upper bound 1 is below lower bound 2)",
      error_of("uniform(2, 1)"))
    assert.are.equal("tide: script.lua:1: bad argument #1 to 'loguniform' (bounds must be above 0, got 0)",
      error_of("loguniform(0, 1)"))
    assert.are.equal("tide: script.lua:1: bad argument #1 to 'choice' (no values to choose from)",
      error_of("choice{}"))
    assert.are.equal("tide: script.lua:1: bad argument #2 to 'random_grid' "
      .. "(n must be a whole number of at least 0, got nil)", error_of("random_grid({ x = 1 })"))
  end)
end)
