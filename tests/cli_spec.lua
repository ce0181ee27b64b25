-- The command line: tide is a drop-in for `lua`.
local h = require("tests.helper")

-- Max number of jobs running at once under pool() with the given tide options.
local CONCURRENCY = [[
  local cur, max = 0, 0
  local p = pool()
  p:map(function()
    cur = cur + 1
    if cur > max then max = cur end
    shell("sleep 0.2")
    cur = cur - 1
  end, { 1, 2, 3, 4, 5, 6, 7, 8 })
  print("max=" .. max .. " size=" .. p.size)
]]

local function nproc()
  local p = io.popen("nproc")
  local n = tonumber(p:read("l"))
  p:close()
  return n
end

describe("tide command line", function()
  it("sets arg and ... for a script as lua does", function()
    local dir = h.tmpdir()
    local path = h.spit(dir .. "/s.lua", [[
      print(arg[0], arg[1], arg[2], #arg, select("#", ...), ...)
    ]])
    local r = h.run({ path, "one", "two words" })
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(0, r.code)
    assert.are.equal(path .. "\tone\ttwo words\t2\t2\tone\ttwo words\n", r.out)
    assert.are.equal("", r.err)
  end)

  it("puts the interpreter and options at negative arg indices", function()
    local dir = h.tmpdir()
    local path = h.spit(dir .. "/s.lua", "print(arg[-1], arg[-2], arg[-3])")
    local r = h.run({ "-j", "3", path })
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(0, r.code)
    assert.are.equal("3\t-j\t" .. h.TIDE .. "\n", r.out)
  end)

  it("runs -e code, several in order", function()
    local r = h.run({ "-e", "x = 40", "-e", "print(x + 2)" })
    assert.are.equal(0, r.code)
    assert.are.equal("42\n", r.out)
  end)

  it("runs -e before the script, which still gets its args", function()
    local dir = h.tmpdir()
    local path = h.spit(dir .. "/s.lua", "print(x, ...)")
    local r = h.run({ "-e", "x = 'pre'", path, "a" })
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(0, r.code)
    assert.are.equal("pre\ta\n", r.out)
  end)

  it("reads the script from stdin with -", function()
    local r = h.run({ "-", "a1", "a2" }, { stdin = "print('from stdin', ...)\nprint(arg[1], arg[2])\n" })
    assert.are.equal(0, r.code)
    assert.are.equal("from stdin\ta1\ta2\na1\ta2\n", r.out)
  end)

  it("reads the script from stdin when none is given and stdin is not a tty", function()
    local r = h.run({}, { stdin = "print(6 * 7)" })
    assert.are.equal(0, r.code)
    assert.are.equal("42\n", r.out)
  end)

  it("stops taking options after --", function()
    local dir = h.tmpdir()
    local path = h.spit(dir .. "/s.lua", "print(...)")
    local r = h.run({ "--", path, "-v", "-x" })
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(0, r.code)
    assert.are.equal("-v\t-x\n", r.out)
  end)

  for _, flag in ipairs({ "-v", "--version" }) do
    it("prints its version with " .. flag, function()
      local r = h.run({ flag })
      assert.are.equal(0, r.code)
      assert.truthy(r.out:match("^tide 0%.1%.0 %(Lua 5%.4[^\n]*%)\n$"), r.out)
      assert.are.equal("", r.err)
    end)
  end

  for _, flag in ipairs({ "-h", "--help" }) do
    it("prints usage on stdout and exits 0 with " .. flag, function()
      local r = h.run({ flag })
      assert.are.equal(0, r.code)
      assert.truthy(r.out:find("usage: tide", 1, true), r.out)
      assert.truthy(r.out:find("-j N", 1, true), r.out)
      assert.are.equal("", r.err)
    end)
  end

  it("-j N sets the default pool size", function()
    local r = h.run({ "-j", "3", "-e", CONCURRENCY })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("max=3 size=3\n", r.out)
    r = h.run({ "-j5", "-e", CONCURRENCY })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("max=5 size=5\n", r.out)
  end)

  it("defaults the pool size to the number of CPUs", function()
    local n = nproc()
    local r = h.run({ "-e", CONCURRENCY })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(("max=%d size=%d\n"):format(math.min(n, 8), n), r.out)
  end)

  for _, bad in ipairs({ "0", "-1", "abc", "1.5", "", "2x" }) do
    it("rejects -j " .. h.quote(bad) .. " naming -j, exit 2, running nothing", function()
      local r = h.run({ "-j", bad, "-e", "print('ran')" })
      assert.are.equal(2, r.code)
      assert.are.equal("", r.out)
      assert.truthy(r.err:find("-j", 1, true), r.err)
    end)
  end

  it("rejects -j without a value", function()
    local r = h.run({ "-j" })
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("-j", 1, true), r.err)
  end)

  for _, bad in ipairs({ "-x", "--frobnicate", "-vx" }) do
    it("rejects unknown option " .. bad .. " with a message naming it, exit 2", function()
      local r = h.run({ bad, "-e", "print('ran')" })
      assert.are.equal(2, r.code)
      assert.are.equal("", r.out)
      assert.truthy(r.err:find(bad, 1, true), r.err)
    end)
  end

  it("-l mod requires a module into a global", function()
    local r = h.run({ "-l", "dkjson", "-e", "print(dkjson.encode({1, 2, 3}))" })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("[1,2,3]\n", r.out)
  end)

  it("finds Debian's Lua 5.4 modules with require", function()
    local r = h.script([[
      local json = require("dkjson")
      print(json.encode({ a = { true, false } }))
      print(package.path:find("/usr/share/lua/5.4/?.lua", 1, true) ~= nil)
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal('{"a":[true,false]}\ntrue\n', r.out)
  end)

  it("opens every standard Lua library", function()
    local r = h.script([[
      for _, name in ipairs({ "string", "table", "math", "io", "os", "coroutine",
                              "utf8", "debug", "package" }) do
        assert(type(_G[name]) == "table", name)
      end
      assert(math.type(1) == "integer" and utf8.char(233) == "\u{e9}")
      assert(_VERSION == "Lua 5.4")
      print("ok")
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("ok\n", r.out)
  end)

  it("provides pool and shell as globals and as require('tide')", function()
    local r = h.script([[
      local tide = require("tide")
      print(type(pool), type(shell), tide.pool == pool, tide.shell == shell)
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("function\tfunction\ttrue\ttrue\n", r.out)
  end)

  it("gives the script tide's stdin", function()
    local r = h.script("print(io.read('l'), io.read('l'))", {}, { stdin = "first\nsecond\n" })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("first\tsecond\n", r.out)
  end)

  it("honours LUA_INIT, as code or as @file, and -E ignores it", function()
    local dir = h.tmpdir()
    h.spit(dir .. "/init.lua", "init_from_file = 'file'")
    local a = h.run({ "-e", "print(init_value)" }, { env = { LUA_INIT = "init_value = 'code'" } })
    local b = h.run({ "-e", "print(init_from_file)" }, { env = { LUA_INIT = "@" .. dir .. "/init.lua" } })
    local c = h.run({ "-E", "-e", "print(init_value)" }, { env = { LUA_INIT = "init_value = 'code'" } })
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal("code\n", a.out)
    assert.are.equal("file\n", b.out)
    assert.are.equal("nil\n", c.out)
    assert.are.equal(0, a.code + b.code + c.code)
  end)

  it("turns warnings on with -W", function()
    local on = h.run({ "-W", "-e", "warn('careful')" })
    local off = h.run({ "-e", "warn('careful')" })
    assert.are.equal(0, on.code)
    assert.truthy(on.err:find("Lua warning: careful", 1, true), on.err)
    assert.are.equal("", off.err)
  end)

  it("reports a syntax error in -e code, exit 2", function()
    local r = h.run({ "-e", "x = = 1" })
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("^tide: [^\n]*%(command line%):1:"), r.err)
  end)

  it("reports a -l module that cannot be found, exit 2", function()
    local r = h.run({ "-l", "nosuch_module_tide", "-e", "print('ran')" })
    assert.are.equal(2, r.code)
    assert.are.equal("", r.out)
    assert.truthy(r.err:find("^tide: [^\n]*nosuch_module_tide"), r.err)
  end)

  it("reports a missing script as 'cannot open', exit 2", function()
    local r = h.run({ "nosuch.lua" })
    assert.are.equal(2, r.code)
    assert.are.equal("", r.out)
    assert.truthy(r.err:find("tide: cannot open nosuch.lua", 1, true), r.err)
  end)
end)

describe("--plus in one-liners", function()
  -- GNU parallel 20221122 prints these patterns as they stand, against its
  -- own documentation: tide does what the documentation says.
  it("{,re} and {,,re} lower-case the first match / every match", function()
    local r = h.run({ "-k", "--plus", "echo", "{,A}", "{,,[AB]}", ":::", "ABAB" })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("aBAB abab\n", r.out)
  end)
end)

describe("{= =} in one-liners", function()
  it("evaluates a Lua expression with _ the arguments, for each job, quoted as {} is", function()
    local r = h.run({ "-k", "-j1", "printf", "'[%s]'", "{= _:upper() =}", "x-{= _:gsub('%.gz$', '') =}", ":::",
      "a.gz", "b c.gz" })
    assert.are.equal(0, r.code, r.err)
    -- one argument each, the space included: quoted as {} is
    assert.are.equal("[A.GZ][x-a][B C.GZ][x-b c]", r.out)
  end)

  it("with -q, makes one argument of a word, the value as it is", function()
    local r = h.run({ "-k", "-j1", "-q", "printf", "[%s]", "x {= _:upper() =}", "{}", ":::", "a 'b" })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("[x A 'B][a 'b]", r.out)
  end)

  it("says that a Perl expression is not Lua, and that an expression that fails failed, exit 255", function()
    local r = h.run({ "echo", "{= s/a/b/ =}", ":::", "a" })
    assert.are.equal(255, r.code)
    assert.matches("^tide: {= s/a/b/ =} is not a Lua expression: .*GNU parallel's are Perl%)\n$", r.err)
    assert.are.equal("", r.out)
    r = h.run({ "echo", "{= nosuch() =}", ":::", "a" })
    assert.are.equal(255, r.code)
    assert.are.equal("tide: {= nosuch() =}: attempt to call a nil value (global 'nosuch')\n", r.err)
  end)
end)
