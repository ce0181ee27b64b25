local h = require("tests.helper")

describe("tide smoke", function()
  it("runs the README example shape", function()
    local r = h.script([[
      local args = {"-foo 123", "-bar 456", "-baz 789"}
      local results = pool(4):map(function(a) return shell("echo prog " .. a) end, args)
      for i, r in ipairs(results) do print(args[i], r.code) end
    ]])
    assert.are.equal(0, r.code)
    assert.truthy(r.out:find("-bar 456\t0", 1, true))
    assert.truthy(r.out:find("prog -baz 789\n", 1, true))
  end)
end)
