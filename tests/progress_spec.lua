-- The status line (issue #6, item 4): drawn on a terminal, above the
-- output and never through it, with its final figures at the end.
local h = require("tests.helper")
local q = h.quote

-- Runs `tide args...` under a pseudo-terminal (util-linux script): its
-- stdin, stdout and stderr are the terminal.  Returns what the terminal
-- received and tide's exit status.  pre: a command put before tide (such
-- as "timeout -s INT 1").
local function tty(args, env, pre)
  local dir = h.tmpdir()
  local words = { "env", "-u", "TIDE_PROGRESS" }
  for k, v in pairs(env or {}) do
    words[#words + 1] = k .. "=" .. q(v)
  end
  words[#words + 1] = pre or ""
  words[#words + 1] = q(h.TIDE)
  for _, a in ipairs(args) do
    words[#words + 1] = q(a)
  end
  local p = io.popen(("cd %s && timeout -s KILL 60 script -qec %s /dev/null >raw 2>&1 </dev/null; echo $?")
    :format(q(dir), q(table.concat(words, " "))))
  local code = p:read("n")
  p:close()
  local raw = h.slurp(dir .. "/raw")
  os.execute("rm -rf " .. q(dir))
  return raw, code
end

local function tty_script(src, env, pre)
  local dir = h.tmpdir()
  local path = h.spit(dir .. "/script.lua", src)
  local raw, code = tty({ path }, env, pre)
  os.execute("rm -rf " .. q(dir))
  return raw, code
end

-- The rows the terminal shows in the end: each line's last \r-separated
-- piece (tide ends every piece it draws by erasing the rest of the line,
-- \27[K; the terminal turns "\n" into "\r\n").  A status line written
-- through output would leave the two mixed in one row.
local function screen(raw)
  local rows = {}
  for l in (raw:gsub("\r\n", "\n") .. "\n"):gmatch("(.-)\n") do
    rows[#rows + 1] = (l:match("[^\r]*$"):gsub("\27%[K", ""))
  end
  if rows[#rows] == "" then
    rows[#rows] = nil
  end
  return rows
end

-- Every status line drawn, in order (what lies between \r and \27[K).
local function draws(raw)
  local t = {}
  for s in raw:gmatch("\r(tide: [^\r\n\27]*)\27%[K") do
    t[#t + 1] = s
  end
  return t
end

local FINAL = "^tide: (%d+)/(%d+) done, 0 running, (%d+) failed, [%d.ms]+ elapsed, [%d.]+/[smin]+$"

describe("the status line", function()
  it("is drawn on a terminal, above the jobs' output, and ends with the final figures", function()
    local raw, code = tty_script([[
      pool(2):map(function(i) return shell(("sleep 0.5; echo job %d; echo err %d >&2"):format(i, i)) end,
        { 1, 2, 3, 4, 5, 6 })
      pool{jobs = 2, output = "line", tag = true}:map(function(i)
        return shell(("echo one; sleep 0.2; echo two >&2; sleep 0.2; echo three"):format(i))
      end, { "a", "b" })
      print("end")
    ]])
    assert.are.equal(0, code, raw)
    local rows = screen(raw)
    -- the last row is the final status line; every other one is output,
    -- whole: nothing of the status line is left inside it
    local done, total, failed = rows[#rows]:match(FINAL)
    assert.are.same({ "8", "8", "0" }, { done, total, failed }, raw)
    local seen = {}
    for i = 1, #rows - 1 do
      local r = rows[i]
      assert.truthy(r:find("^job %d$") or r:find("^err %d$") or r:find("^[ab]\t[a-z]+$") or r == "end",
        "row " .. i .. ": " .. r)
      seen[r] = (seen[r] or 0) + 1
    end
    for i = 1, 6 do
      assert.are.equal(1, seen["job " .. i], raw)
      assert.are.equal(1, seen["err " .. i], raw)
    end
    for _, t in ipairs({ "a\tone", "a\ttwo", "a\tthree", "b\tone", "b\ttwo", "b\tthree" }) do
      assert.are.equal(1, seen[t], raw)
    end
    assert.are.equal("end", rows[#rows - 1])
    -- and it was drawn while the jobs ran, not only at the end
    local d = draws(raw)
    assert.truthy(#d >= 5, raw)
    assert.truthy(d[1]:find("^tide: %d/6 done, %d running, 0 failed, "), d[1])
  end)

  it("leaves no trace of a run shorter than a second on a terminal", function()
    local raw, code = tty_script([[pool(2):map(function(i) return shell("echo job " .. i) end, { 1, 2 })]])
    assert.are.equal(0, code, raw)
    assert.truthy(raw == "job 1\r\njob 2\r\n" or raw == "job 2\r\njob 1\r\n", raw)
  end)

  it("is erased when tide stops on an error or Ctrl-C, leaving no half line", function()
    local raw, code = tty_script([[
      pool(2):map(function(i) return shell("sleep 0.6") end, { 1, 2, 3 })
      error("boom")
    ]])
    assert.are.equal(2, code, raw)
    assert.truthy(#draws(raw) > 0, raw)
    local rows = screen(raw)
    assert.truthy(rows[1]:find("^tide: [^\n]*boom$"), raw)
    for _, r in ipairs(rows) do
      assert.falsy(r:find(" running, ", 1, true), raw)
    end
    raw, code = tty_script([[pool(2):map(function(i) return shell("sleep 30") end, { 1, 2, 3 })]], nil,
      "timeout --preserve-status -s INT 1.5")
    assert.are.equal(130, code, raw)
    assert.truthy(#draws(raw) > 0, raw)
    assert.are.same({}, screen(raw))
  end)

  it("is not drawn when stderr is not a terminal", function()
    local r = h.script([[
      pool(2):map(function(i) return shell("sleep 0.4; echo job " .. i) end, { 1, 2, 3, 4, 5, 6 })
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("", r.err)
    assert.are.equal(6, select(2, r.out:gsub("job %d\n", "")), r.out)
  end)

  it("is not drawn on a terminal with --no-progress, TIDE_PROGRESS=0 or progress = false", function()
    local src = [[
      local opts = { jobs = 2 }
      if ... == "option" then
        opts.progress = false
      end
      pool(opts):map(function(i)
        return shell("sleep 0.4; echo job " .. i)
      end, { 1, 2, 3, 4, 5, 6 })
    ]]
    local dir = h.tmpdir()
    local path = h.spit(dir .. "/s.lua", src)
    for _, run in ipairs({
      { { "--no-progress", path } }, { { path }, { TIDE_PROGRESS = "0" } }, { { path, "option" } },
      { { "--no-progress", "-j2", "sleep 0.4; echo job {}", ":::", 1, 2, 3, 4, 5, 6 } },
    }) do
      local raw, code = tty(run[1], run[2])
      assert.are.equal(0, code, raw)
      assert.falsy(raw:find("\27[K", 1, true), raw)
      assert.falsy(raw:find("tide", 1, true), raw)
      assert.are.equal(6, select(2, raw:gsub("job %d\r\n", "")), raw)
    end
    os.execute("rm -rf " .. q(dir))
  end)

  it("is drawn when forced, even where stderr is not a terminal", function()
    local r = h.script([[
      pool{jobs = 2, progress = true}:map(function(i) return shell("echo job " .. i) end, { 1, 2, 3 })
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.err:find("\rtide: 3/3 done, 0 running, 0 failed, [^\n]*\27%[K\n$"), r.err)
    assert.are.equal("", (r.err:gsub("\r[^\r\n]*\27%[K\n?", "")), r.err)
    r = h.script([[shell("true")]], { "x" }, { env = { TIDE_PROGRESS = "1" } })
    assert.truthy(r.err:find("\rtide: 1/1 done, [^\n]*\n$"), r.err)
    local dir = h.tmpdir()
    local path = h.spit(dir .. "/s.lua", [[shell("true") shell("true")]])
    r = h.run({ "--progress", path })
    os.execute("rm -rf " .. q(dir))
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.err:find("\rtide: 2/2 done, [^\n]*\n$"), r.err)
    -- in one-liners, GNU parallel's --bar and --eta as well
    for _, flag in ipairs({ "--progress", "--bar", "--eta" }) do
      r = h.run({ flag, "-j1", "echo", ":::", "a", "b" })
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("a\nb\n", r.out)
      assert.truthy(r.err:find("\rtide: 2/2 done, 0 running, 0 failed, [^\n]*\27%[K\n$"), r.err)
    end
  end)

  it("gives the count and no ETA while the list's length is unknown", function()
    local r = h.script([[
      local n = 0
      pool{jobs = 1, progress = true}:map(function(i) return shell("sleep 0.25") end, function()
        n = n + 1
        if n <= 3 then return n end
      end)
      pool(1):map(function(i) return shell("sleep 0.25") end, { 1, 2, 3 })
    ]])
    assert.are.equal(0, r.code, r.err)
    local d = draws(r.err)
    local open, eta = 0, 0
    for _, s in ipairs(d) do
      if s:find("^tide: %d done, ") then
        open = open + 1
        assert.falsy(s:find("ETA", 1, true), s)
      elseif s:find("^tide: [345]/6 done, ") and s:find(", ETA [%d.ms]+$") then
        eta = eta + 1
      end
    end
    assert.truthy(open > 0 and eta > 0, r.err)
    assert.truthy(d[#d]:find(FINAL), d[#d])
  end)

  it("counts the main chunk's maps as they start and jobs outside maps, not nested items", function()
    local r = h.script([[
      local p = pool{jobs = 2, progress = true}
      shell("true")
      p:map(function(i) return shell("sleep 0.3") end, { 1, 2 })
      p:map(function(i)
        return pool(2):map(function() return shell("sleep 0.3") end, { 1, 2, 3, 4 })
      end, { 1, 2, 3 })
    ]])
    assert.are.equal(0, r.code, r.err)
    local totals = {}
    for _, s in ipairs(draws(r.err)) do
      totals[s:match("^tide: %d+/(%d+) done")] = true
    end
    -- 1 (the job outside maps), 3 (and the first map's 2), 6 (and the
    -- second map's 3, whose nested maps add nothing)
    assert.are.same({ ["1"] = true, ["3"] = true, ["6"] = true }, totals)
    assert.truthy(r.err:find("\rtide: 6/6 done, 0 running, 0 failed, [^\n]*\n$"), r.err)
  end)

  it("is redrawn at most 10 times a second, also while no job ends", function()
    local r = h.script([[
      local t0 = require("tide.core").now()
      pool{jobs = 1, progress = true}:map(function() return shell("sleep 1.5") end, { 1 })
      io.stdout:write(require("tide.core").now() - t0)
    ]])
    assert.are.equal(0, r.code, r.err)
    local secs = tonumber(r.out)
    local d = draws(r.err)
    local elapsed = {}
    for _, s in ipairs(d) do
      elapsed[s:match("([%d.]+s) elapsed")] = true
    end
    -- the line shows the time going by: 0.0s, 0.1s, ...
    local n = 0
    for _ in pairs(elapsed) do
      n = n + 1
    end
    assert.truthy(n >= 5, r.err)
    assert.truthy(#d <= 10 * secs + 3, #d .. " draws in " .. secs .. " s")
  end)

  it("does not keep tide waiting: a deadlock is still reported at once", function()
    -- (a task waiting for something that can never complete: internals)
    local r = h.script([[
      pool{jobs = 1, progress = true}:map(function()
        shell("true")
        require("tide.run.sched").await({})
      end, { 1 })
    ]], nil, { timeout = 20 })
    assert.are.equal(2, r.code, r.err)
    assert.truthy(r.err:find("deadlock: tasks are waiting", 1, true), r.err)
    assert.truthy(r.secs < 10, r.secs)
  end)

  it("has its options in both helps", function()
    for _, flag in ipairs({ "-h", "--help" }) do
      local r = h.run({ flag })
      assert.are.equal(0, r.code, r.err)
      assert.truthy(r.out:find("\n  %-%-progress ") and r.out:find("\n  %-%-no%-progress "), r.out)
    end
  end)

  it("rejects a progress option that is not a boolean", function()
    local r = h.script([[print(pcall(pool, { progress = "yes" }))]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("false\tbad argument #1 to 'pool' (option 'progress' must be a boolean, got 'yes')\n", r.out)
  end)

  it("shows in a real terminal (tmux): output above, the line at the bottom", function()
    if os.execute("command -v tmux >/dev/null") ~= true then
      pending("tmux is not installed")
      return
    end
    local dir = h.tmpdir()
    local sock = "tide-test-" .. h.TOKEN
    local path = h.spit(dir .. "/s.lua", [[
      pool(2):map(function(i) return shell("sleep 0.5; echo job " .. i) end, { 1, 2, 3, 4, 5, 6, 7, 8 })
    ]])
    os.execute(("tmux -L %s new-session -d -x 100 -y 30 %s"):format(q(sock),
      q(("env -u TIDE_PROGRESS %s %s; echo rc=$?; touch %s/rc; sleep 60"):format(q(h.TIDE), q(path), q(dir)))))
    local function pane()
      local p = io.popen(("tmux -L %s capture-pane -p"):format(q(sock)))
      local rows = {}
      for l in p:lines() do
        if l ~= "" then
          rows[#rows + 1] = l
        end
      end
      p:close()
      return rows
    end
    local during
    for _ = 1, 400 do
      local f = io.open(dir .. "/rc")
      if f then
        f:close()
        break
      end
      local rows = pane()
      if not during and #rows > 1 and rows[#rows]:find("^tide: %d/8 done, ") then
        during = rows
      end
      os.execute("sleep 0.05")
    end
    local after = pane()
    os.execute(("tmux -L %s kill-server"):format(q(sock)))
    os.execute("rm -rf " .. q(dir))
    assert.truthy(during, "no status line seen under the output: " .. table.concat(after, "\n"))
    for i = 1, #during - 1 do
      assert.truthy(during[i]:find("^job %d$"), table.concat(during, "\n"))
    end
    assert.are.equal("rc=0", after[#after])
    assert.truthy(after[#after - 1]:find(FINAL), table.concat(after, "\n"))
    assert.are.equal(10, #after, table.concat(after, "\n"))
  end)
end)
