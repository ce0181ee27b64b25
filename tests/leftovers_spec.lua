-- The suite's last test (a ctest cleanup fixture every spec requires, see
-- CMakeLists.txt): nothing any test started outlives it.
local h = require("tests.helper")

describe("after the whole suite", function()
  it("leaves no job process running", function()
    local n = h.gone(h.MARK, 3)
    if n > 0 then
      os.execute("pgrep -af " .. h.quote("[" .. h.MARK:sub(1, 1) .. "]" .. h.MARK:sub(2)) .. " >&2")
    end
    os.execute("rm -f /tmp/tide-test-bin/*" .. h.TOKEN .. "_sleep")
    assert.are.equal(0, n)
  end)
end)
