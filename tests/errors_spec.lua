-- Exit status and failure semantics.
local h = require("tests.helper")
local summary = require("tests.summary")

describe("tide's exit status", function()
  it("is 0 when the script ends and every job succeeded", function()
    local r = h.script([[
      pool(4):map(function(i) shell("exit 0") end, { 1, 2, 3, 4, 5 })
      shell({ "true" })
    ]])
    assert.are.equal(0, r.code)
    assert.are.equal("", r.err)
  end)

  it("is 0 for a script that runs no job", function()
    local r = h.script("local x = 1")
    assert.are.equal(0, r.code)
    assert.are.equal("", r.out .. r.err)
  end)

  it("is 1 when some job failed, with the failure line and the summary on stderr", function()
    local r = h.script([[
      local list = {}
      for i = 1, 100 do list[i] = i end
      local res = pool(8):map(function(i)
        return shell(i % 40 == 0 and "exit 3" or (i == 7 and "kill -9 $$" or "true")).ok
      end, list)
      local bad = 0
      for i = 1, res.n do if not res[i] then bad = bad + 1 end end
      print("script ended", bad)
    ]])
    assert.are.equal(1, r.code)
    assert.are.equal("script ended\t3\n", r.out)
    -- `tide: 3 of 100 jobs failed`, then the summary: the failed commands
    -- (in the order they ended) and the 3 slowest jobs
    assert.truthy(r.err:find(summary.pattern(3, 100, 0, { false, false, false }, 3)), r.err)
    local fails = {}
    for l in r.err:gmatch("tide:   failed ([^\n]+)") do
      fails[l] = (fails[l] or 0) + 1
    end
    assert.are.same({ ["(exit 3): exit 3"] = 2, ["(SIGKILL): kill -9 $$"] = 1 }, fails)
  end)

  it("is 1 even when the script looked at the failure itself", function()
    local r = h.script([[
      local r = shell("false")
      if not r.ok then print("handled") end
    ]])
    assert.are.equal(1, r.code)
    assert.are.equal("handled\n", r.out)
    assert.truthy(r.err:find(summary.pattern(1, 1, 0, { { "exit 1", "false" } }, 1, { "false" })), r.err)
  end)

  it("counts a program that cannot start as a failed job", function()
    local r = h.script([[
      shell("true")
      shell({ "nosuch_prog_tide" }, { capture = true })
      shell("true", { cwd = "/nonexistent/tide_dir", capture = true })
    ]])
    assert.are.equal(1, r.code)
    assert.truthy(r.err:find(summary.pattern(2, 3, 0,
      { { "exit 127", "nosuch_prog_tide" }, { "exit 127", "true" } }, 3)), r.err)
  end)

  it("is 2 on a syntax error, naming file and line", function()
    local r = h.script("local x = 1\nlocal = 2\n")
    assert.are.equal(2, r.code)
    assert.are.equal("", r.out)
    assert.truthy(r.err:find("^tide: [^\n]*script%.lua:2: "), r.err)
  end)

  it("is 2 on an uncaught error, with file:line and a traceback", function()
    local r = h.script([[
      print("before")
      local function f() error("kaboom") end
      f()
      print("after")
    ]])
    assert.are.equal(2, r.code)
    assert.are.equal("before\n", r.out)
    assert.truthy(r.err:find("^tide: [^\n]*script%.lua:2: kaboom\n"), r.err)
    assert.truthy(r.err:find("stack traceback:", 1, true), r.err)
    assert.truthy(r.err:find("script.lua:3:", 1, true), r.err)
  end)

  it("is 2 for an error object that is not a string, saying what it is", function()
    local r = h.script("error({ code = 1 })")
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("^tide: [^\n]*table"), r.err)
  end)

  it("uses __tostring of an error object", function()
    local r = h.script([[error(setmetatable({}, { __tostring = function() return "custom error" end }))]])
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("^tide: custom error"), r.err)
  end)

  it("is 2, not 1, when the script fails after jobs failed", function()
    local r = h.script([[
      shell("false")
      error("then the script broke")
    ]])
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("then the script broke", 1, true), r.err)
  end)

  it("is 2 when shell(..., { check = true }) raises and nothing catches it", function()
    local r = h.script([[shell("exit 9", { check = true })]])
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("^tide: [^\n]*exit 9"), r.err)
  end)

  it("is 2 when a map fails, printing 'tide: ...'", function()
    local r = h.script([[pool(2):map(function(x) if x == 2 then error("task broke") end end, { 1, 2, 3 })]])
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("^tide: [^\n]*map: item 2 failed:[^\n]*task broke"), r.err)
  end)

  it("follows os.exit(n) over everything else", function()
    local cases = {
      { 'shell("false"); os.exit(7)', 7 },
      { 'shell("false"); os.exit(0)', 0 },
      { "os.exit(true)", 0 },
      { "os.exit(false)", 1 },
      { 'shell("true"); os.exit(3, true)', 3 },
    }
    for _, c in ipairs(cases) do
      local r = h.script(c[1])
      assert.are.equal(c[2], r.code, c[1])
    end
  end)

  it("follows os.exit(n) called from inside a task", function()
    local r = h.script([[
      pool(2):map(function(i)
        if i == 2 then shell("sleep 0.1"); os.exit(5) end
        shell("sleep 0.1")
      end, { 1, 2 })
    ]])
    assert.are.equal(5, r.code)
  end)

  it("leaves no job running after os.exit from inside a task", function()
    -- its own marker and short sleeps: if this leaks, the leak ends by itself
    -- and does not fail the final leftovers check
    local mark = h.mark("exit")
    local S = h.sleeper(mark)
    local r = h.script([[
      local S = ...
      pool(3):map(function(i)
        if i == 3 then shell("sleep 0.2"); os.exit(4) end
        shell({ "sh", "-c", S .. " 20 & " .. S .. " 20; :" })
      end, { 1, 2, 3 })
    ]], { S }, { timeout = 30 })
    assert.are.equal(4, r.code)
    assert.are.equal(0, h.gone(mark), "jobs outlived tide after os.exit")
  end)
end)
