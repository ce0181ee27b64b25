-- The run report, checked where a person looks at it: in a real headless
-- Chromium (Debian's chromium, installed by the test command), with the
-- network namespace empty when we are root, through the page's DOM
-- contract (lua/tide/run/report_page.lua).
local h = require("tests.helper")
local q = h.quote

local check_page = h.check_page

local function count(s, pattern)
  return select(2, s:gsub(pattern, ""))
end

local function statuses(dom)
  local s = {}
  for st in dom:gmatch('class="job s%-[a-z]+" data%-status="([a-z]+)"') do
    s[st] = (s[st] or 0) + 1
  end
  return s
end

describe("the run report", function()
  local dir
  h.tmpdir_each(function(d)
    dir = d
  end)

  it("shows every job, item and metric of a run where all went well", function()
    local html = dir .. "/run.html"
    local r = h.script(([[
      pool{jobs = 2, report = %q}:map(function(p)
        shell("true")
        return {loss = p.lr * 10}
      end, grid{{"lr", {0.1, 0.2, 0.3}}, {"depth", {1, 2}}})
    ]]):format(html))
    assert.are.equal(0, r.code, r.err)
    local dom = check_page(html)
    assert.are.same({ ok = 6 }, statuses(dom))
    assert.are.equal(6, count(dom, 'class="item"'))
    assert.truthy(dom:find('id="row-count" data-shown="6" data-total="6">6 of 6 items', 1, true), dom:sub(1, 300))
    assert.are.equal(0, count(dom, 'class="failure"'))
    assert.truthy(dom:find('<section id="scatter-section">', 1, true), "no scatter for a numeric sweep")
    assert.truthy(dom:find('data-mode="bars" data-drawn="6"', 1, true))
    for _, col in ipairs({ ">lr<", ">depth<", ">loss<", ">status<", ">elapsed<", ">CPU<", ">RSS<" }) do
      assert.truthy(dom:find(col, 1, true), col)
    end
  end)

  it("lists each failed job with its exit code and the tail of its stderr", function()
    local html = dir .. "/run.html"
    local r = h.script(([[
      pool{jobs = 2, report = %q}:map(function(i)
        return shell(("echo out; echo 'oops %%d' >&2; exit %%d"):format(i, i %% 2 == 0 and 3 or 0))
      end, {1, 2, 3, 4, 5})
    ]]):format(html))
    assert.are.equal(1, r.code)
    local dom = check_page(html)
    assert.are.same({ ok = 3, failed = 2 }, statuses(dom))
    assert.are.equal(2, count(dom, 'class="failure"'))
    assert.truthy(dom:find("exit 3 after", 1, true))
    assert.truthy(dom:find("<pre>oops 2\n</pre>", 1, true), dom:match('<section id="failures">.*'))
    assert.truthy(dom:find("<pre>oops 4\n</pre>", 1, true))
  end)

  it("shows the jobs a halt stopped, and is written when the run halts", function()
    local html = dir .. "/run.html"
    local S = h.sleeper(h.mark("reporthalt"))
    local r = h.script(([[
      pool{jobs = 3, report = %q, halt = "now,fail=1"}:map(function(c) return shell(c) end,
        {"sleep 0.3; exit 4", "%s 30", "%s 30", "true"})
    ]]):format(html, S, S))
    assert.are.equal(4, r.code, r.err)
    local dom = check_page(html)
    assert.are.same({ failed = 1, stopped = 2 }, statuses(dom))
    assert.truthy(dom:find('id="row-count" data-shown="3" data-total="3"', 1, true))
    assert.are.equal(0, h.gone(h.mark("reporthalt"), 5))
  end)

  it("shows the items a resumed run took from its records", function()
    local html, rec = dir .. "/run.html", dir .. "/rec.jsonl"
    local src = ([[
      pool{jobs = 2, record = %q, resume = true, report = %q}:map(function(i)
        shell("true")
        return {v = i}
      end, {1, 2, 3, 4})
    ]]):format(rec, html)
    assert.are.equal(0, h.script(src).code)
    local r = h.script(src)
    assert.are.equal(0, r.code, r.err)
    local dom = check_page(html)
    assert.are.equal(4, count(dom, '<span class="st s%-resumed">resumed</span>'))
    assert.are.same({}, statuses(dom)) -- nothing ran
  end)

  it("is written with what ran so far when the run is stopped by Ctrl-C", function()
    local html = dir .. "/run.html"
    local r = h.signal_run(([[
      pool{jobs = 2, report = %q}:map(function(i)
        if i <= 2 then return shell("true") end
        return shell("touch ready" .. i .. "; sleep 30")
      end, {1, 2, 3, 4})
    ]]):format(html), { ready = 2, signals = { { 0.2, "INT" } } })
    assert.are.equal(130, r.code, r.err)
    local dom = check_page(html)
    assert.are.equal(2, statuses(dom).ok)
  end)

  it("comes from a one-liner's --report, and a trace from --trace", function()
    local html, trace = dir .. "/run.html", dir .. "/run.json"
    local r = h.run({ "-j2", "--report", html, "--trace", trace, "exit {}", ":::", "0", "0", "5" })
    assert.are.equal(1, r.code)
    local dom = check_page(html)
    assert.are.same({ ok = 2, failed = 1 }, statuses(dom))
    local py = h.sh(("python3 -c %s %s"):format(q([[
import json, sys
d = json.load(open(sys.argv[1]))
ev = [e for e in d["traceEvents"] if e["ph"] == "X"]
print(len(ev), sorted(e["args"]["status"] for e in ev), all(e["dur"] >= 0 and e["ts"] >= 0 for e in ev))
]]), q(trace)))
    assert.are.equal("3 ['failed', 'ok', 'ok'] True\n", py.out, py.err)
  end)

  it("is built afterwards by tide report from GNU parallel's own job log", function()
    local log, html = dir .. "/gnu.log", dir .. "/run.html"
    local g = h.sh(("parallel --will-cite -j2 --joblog %s 'sleep 0.1; exit {}' ::: 0 0 2 0"):format(q(log)))
    assert.are.equal(1, g.code, g.err)
    local r = h.run({ "report", log, "-o", html })
    assert.are.equal(0, r.code, r.err)
    local dom = check_page(html)
    assert.are.same({ ok = 3, failed = 1 }, statuses(dom))
    assert.are.equal(4, count(dom, 'class="item"')) -- one row per job when no item was recorded
    -- two jobs at a time: two lanes
    assert.are.equal(2, count(dom, '<div>slot %d</div>'))
  end)

  it("is built afterwards from item records and a results directory", function()
    local rec, res, html = dir .. "/rec.jsonl", dir .. "/res", dir .. "/run.html"
    local r = h.script(([[
      pool{jobs = 2, record = %q, results = %q}:map(function(p)
        return {score = shell("exit " .. p.code).code + p.x}
      end, grid{x = {1, 2}, code = {0, 1}})
    ]]):format(rec, res))
    assert.are.equal(1, r.code)
    r = h.run({ "report", rec, res .. "/results.jsonl", "-o", html })
    assert.are.equal(0, r.code, r.err)
    local dom = check_page(html)
    assert.are.same({ ok = 2, failed = 2 }, statuses(dom))
    assert.truthy(dom:find(">score<", 1, true))
  end)

  it("draws a large run on a canvas and keeps every row", function()
    local log, html = dir .. "/big.log", dir .. "/run.html"
    local f = io.open(log, "w")
    f:write("Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n")
    for i = 1, 6000 do
      f:write(("%d\t:\t%.3f\t0.010\t0\t0\t%d\t0\tjob %d\n"):format(i, 1.7e9 + i * 0.005, i % 100 == 0 and 1 or 0, i))
    end
    f:close()
    local r = h.run({ "report", log, "-o", html })
    assert.are.equal(0, r.code, r.err)
    local dom = check_page(html)
    assert.truthy(dom:find('data-mode="canvas" data-drawn="6000"', 1, true))
    assert.truthy(dom:find('data-shown="6000" data-total="6000"', 1, true))
    assert.are.equal(60, count(dom, 'class="failure"'))
    local rows = count(dom, 'class="item"')
    assert.truthy(rows > 10 and rows < 200, "rows rendered: " .. rows) -- only those in view
  end)

  it("refuses bad report options and inputs, naming them", function()
    local r = h.script("print(pcall(pool, {report = 5}))")
    assert.matches("option 'report' must be a file name, got 5", r.out)
    r = h.run({ "report", dir .. "/missing.log", "-o", dir .. "/x.html" })
    assert.are.equal(255, r.code)
    assert.matches("^tide: report: cannot open .*missing%.log", r.err)
    r = h.run({ "report", "-o", dir .. "/x.html" })
    assert.are.equal(255, r.code)
    assert.matches("no input file given", r.err)
    r = h.script(("pool{report = %q}:map(function() return shell('true') end, {1})")
      :format(dir .. "/no/such/dir/run.html"))
    assert.are.equal(1, r.code)
    assert.matches("tide: report: cannot write .*/no/such/dir/run%.html", r.err)
  end)
end)
