-- The sweeps in examples/ run as they are, from the repository root, and
-- print what they promise.
local h = require("tests.helper")

local lines_of = h.lines

describe("examples", function()
  it("grid.lua writes one result file per combination and prints the best", function()
    local dir = h.tmpdir()
    local out = dir .. "/results 'x'" -- a name that a pasted-in path would break
    local r = h.run({ "examples/grid.lua", out })
    local ls = io.popen("ls " .. h.quote(out)):read("a")
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(0, r.code, r.err)
    local l = lines_of(r.out)
    assert.are.equal(11, #l, r.out)
    assert.matches("^depth%s+lr%s+score%s+file$", l[1])
    for i = 2, 10 do
      assert.matches("^%d+%s+0%.0*1%s+%d+%s+.*/lr=0%.0*1,depth=%d%.txt$", l[i])
    end
    assert.matches("^best: depth=%d lr=0%.0*1 %(score %d+%); 9 result files in ", l[11])
    assert.are.equal(9, #lines_of(ls))
    assert.matches("lr=0.001,depth=8.txt", ls, 1, true)
  end)

  it("compress.lua gzips the files a glob matches, awkward names included", function()
    local dir = h.tmpdir()
    local r = h.run({ "examples/compress.lua" }, { env = { TMPDIR = dir } })
    local gz = io.popen("ls " .. h.quote(dir) .. "/*/*.gz"):read("a")
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(0, r.code, r.err)
    local l = lines_of(r.out)
    assert.are.equal(4, #l, r.out)
    assert.matches("/%-dashed%.log$", l[1])
    assert.matches("/it's a log%.log$", l[2])
    assert.matches("^%s+108894 %->%s+%d+%s+[%d.]+%%%s+/.*/numbers%.log$", l[3])
    assert.matches("^3 files: %d+ %-> %d+ bytes %([%d.]+%%%), 0 failed$", l[4])
    assert.are.equal(3, #lines_of(gz))
    -- a pattern that matches nothing is an empty sweep, not an error
    r = h.run({ "examples/compress.lua", "/nonexistent/*.log" })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("no file matches /nonexistent/*.log\n", r.out)
  end)

  it("random_search.lua reads each job's metric and prints the best, the same every run", function()
    local r = h.run({ "examples/random_search.lua" })
    assert.are.equal(0, r.code, r.err)
    local l = lines_of(r.out)
    assert.are.equal(7, #l, r.out)
    assert.matches("^trial%s+loss", l[1])
    local losses = {}
    for i = 2, 6 do
      losses[#losses + 1] = tonumber(l[i]:match("^%s*%d+%s+([%d.]+)"))
    end
    for i = 2, #losses do
      assert.is_true(losses[i - 1] <= losses[i], r.out)
    end
    assert.matches("^best of 20: trial %d+, loss " .. l[2]:match("^%s*%d+%s+([%d.]+)"):gsub("%.", "%%."), l[7])
    assert.are.equal(r.out, h.run({ "examples/random_search.lua" }).out)
    local other = h.run({ "examples/random_search.lua", "20", "7" })
    assert.are_not.equal(r.out, other.out)
  end)

  it("record.lua records, stops early, resumes to the same results and writes CSV", function()
    local dir = h.tmpdir()
    local r1 = h.run({ "examples/record.lua", dir })
    local first = h.slurp(dir .. "/sweep.jsonl")
    local r2 = h.run({ "examples/record.lua", dir })
    local csv = h.slurp(dir .. "/sweep.csv")
    local records = h.slurp(dir .. "/sweep.jsonl")
    local report = h.slurp(dir .. "/report.html")
    os.execute("rm -rf " .. h.quote(dir))
    assert.truthy(report:find('<script id="tide-data" type="application/json">{"jobs":[', 1, true))
    assert.are.equal(0, r1.code, r1.err)
    assert.are.equal(0, r2.code, r2.err)
    local l = lines_of(r1.out)
    assert.matches("^%d+ of 12 runs have a loss; stopped: loss 0%.125 at lr=0%.01 depth=8$", l[1])
    assert.are.equal(r1.out, r2.out) -- the rerun ran nothing and stopped at the same place
    assert.are.equal(1, select(2, records:gsub('"stop":"loss 0.125', "")))
    assert.are.equal(first, records) -- the rerun ran and recorded nothing
    local rows = lines_of(csv:gsub("\r", ""))
    assert.are.equal("elapsed,i,item.depth,item.lr,start,status,stop,value.loss", rows[1])
    local row8 = csv:gsub("\r", ""):match("[^\n]*,8,8,[^\n]*")
    assert.matches(",8,8,0%.01,[%d.]+,ok,loss 0%.125 at lr=0%.01 depth=8,0%.125$", row8)
  end)
end)
