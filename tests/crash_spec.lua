-- Crash consistency: tide killed with SIGKILL at random moments during a
-- sweep with a job log, resume, a results directory and item records, then
-- run again to completion.  Every item completes exactly once, except the
-- few running when the kill hit (at most one per job slot and kill); every
-- log and record line parses, but for one torn line per kill; no job's
-- process survives its tide.  Seeded, so a failure can be replayed.
local h = require("tests.helper")
local q = h.quote

local SEED, TRIALS, ITEMS, JOBS = 18, 20, 40, 4

local lines = h.file_lines

describe("crash consistency", function()
  it(("kill -9 at random moments, %d trials: exactly once, files parse, nothing survives"):format(TRIALS), function()
    local json = require("dkjson")
    local m = h.mark("crash")
    local S = h.sleeper(m)
    math.randomseed(SEED)
    local t0 = h.now()
    for trial = 1, TRIALS do
      local dir = h.tmpdir()
      h.spit(dir .. "/s.lua", ([[
        local list = {}
        for i = 1, %d do list[i] = i end
        pool{jobs = %d, record = "rec", resume = true, joblog = "jl", results = "res"}:map(function(i)
          local r = shell("echo " .. i .. " >> ran; %s 0.0" .. (i %% 5))
          return r.ok and i * 10 or nil
        end, list)
      ]]):format(ITEMS, JOBS, S))
      local kills = 0
      for _ = 1, 2 do -- two kills a trial, at random moments
        local delay = math.random() * 0.25
        os.execute(("cd %s && { %s s.lua >/dev/null 2>>err & p=$!; sleep %.3f; kill -9 $p; wait $p; } 2>/dev/null")
          :format(q(dir), q(h.TIDE), delay))
        kills = kills + 1
        assert.are.equal(0, h.gone(m, 1), "a job outlived its tide (trial " .. trial .. ")")
      end
      local r = h.run({ "s.lua" }, { cwd = dir })
      assert.are.equal(0, r.code, ("trial %d: %s"):format(trial, r.err))
      -- every item ran, and again only if it was running at a kill
      local ran = {}
      for _, l in ipairs(lines(dir .. "/ran")) do
        local i = tonumber(l)
        ran[i] = (ran[i] or 0) + 1
      end
      local extra = 0
      for i = 1, ITEMS do
        assert.is_true((ran[i] or 0) >= 1, ("trial %d: item %d never ran"):format(trial, i))
        extra = extra + ran[i] - 1
      end
      assert.is_true(extra <= JOBS * kills, ("trial %d: %d runs too many"):format(trial, extra))
      -- the record: every line parses but torn ones (one per kill), every item ok once at least
      local torn, ok = 0, {}
      for _, l in ipairs(lines(dir .. "/rec")) do
        local rec = json.decode(l)
        if rec then
          if rec.status == "ok" then
            assert.are.equal(rec.item * 10, rec.value)
            ok[rec.item] = (ok[rec.item] or 0) + 1
          end
        else
          assert.truthy(l:find("\t#torn$"), ("trial %d: a bad record line: %s"):format(trial, l))
          torn = torn + 1
        end
      end
      for i = 1, ITEMS do
        assert.are.equal(1, ok[i], ("trial %d: item %d recorded ok %s times"):format(trial, i, tostring(ok[i])))
      end
      -- the job log: a header, then lines of 9 columns, one per completed job
      local logged = {}
      for n, l in ipairs(lines(dir .. "/jl")) do
        local cmd = select(9, l:match(("([^\t]*)\t"):rep(8) .. "(.*)$"))
        if l:find("\t#torn$") then
          torn = torn + 1
        elseif n > 1 or not l:find("^Seq\t") then
          assert.truthy(cmd, ("trial %d: a bad log line: %s"):format(trial, l))
          logged[cmd] = (logged[cmd] or 0) + 1
        end
      end
      assert.is_true(torn <= 2 * kills, ("trial %d: %d torn lines"):format(trial, torn))
      local nlogged = 0
      for _, c in pairs(logged) do
        assert.are.equal(1, c)
        nlogged = nlogged + 1
      end
      assert.are.equal(ITEMS, nlogged)
      -- the results directory of the last run: its index parses
      for _, l in ipairs(lines(dir .. "/res/results.jsonl")) do
        assert.is_table(json.decode(l), l)
      end
      os.execute("rm -rf " .. q(dir))
    end
    assert.are.equal(0, h.gone(m, 1))
    assert.is_true(h.now() - t0 < 60, "took " .. (h.now() - t0) .. " s")
  end)
end)
