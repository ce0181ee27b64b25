-- SIGINT, SIGTERM and SIGHUP end tide and every job, grandchildren included.
local h = require("tests.helper")

-- A script whose n jobs each touch ready.<i> in tide's cwd and then wait,
-- with a grandchild in the background; `trap` is put before the wait (e.g.
-- "trap '' TERM;" to make jobs ignore SIGTERM).
local function jobs_script(n, trap)
  local S = h.sleeper()
  return ([[
    local S, n, trap = %q, %d, %q
    local list = {}
    for i = 1, n do list[i] = i end
    pool(n):map(function(i)
      shell({ "sh", "-c", trap .. S .. " 100 & touch ready." .. i .. "; " .. S .. " 100; :" })
    end, list)
    print("not reached")
  ]]):format(S, n, trap or "")
end

describe("signals", function()
  for _, case in ipairs({ { "TERM", 143 }, { "INT", 130 }, { "HUP", 129 } }) do
    it("SIG" .. case[1] .. " ends every job and its group, exit " .. case[2], function()
      local r = h.signal_run(jobs_script(3), { ready = 3, signals = { { 0.1, case[1] } } })
      assert.are.equal(case[2], r.code, r.err)
      assert.are.equal("", r.out)
      assert.is_true(r.secs < 1.8, "jobs got SIGTERM but tide took " .. r.secs)
      assert.are.equal(0, h.gone(h.MARK))
    end)
  end

  it("SIGKILLs jobs that ignore SIGTERM after the 2 s grace", function()
    local r = h.signal_run(jobs_script(2, "trap '' TERM; "), { ready = 2, signals = { { 0.1, "TERM" } } })
    assert.are.equal(143, r.code, r.err)
    assert.is_true(r.secs > 1.8, "did not wait for the grace: " .. r.secs)
    assert.is_true(r.secs < 6, "grace too long: " .. r.secs)
    assert.are.equal(0, h.gone(h.MARK))
  end)

  it("kills at once on a second signal", function()
    local r = h.signal_run(jobs_script(2, "trap '' TERM INT; "),
      { ready = 2, signals = { { 0.1, "INT" }, { 0.3, "INT" } } })
    assert.are.equal(130, r.code, r.err)
    assert.is_true(r.secs < 1.6, "second signal did not kill at once: " .. r.secs)
    assert.are.equal(0, h.gone(h.MARK))
  end)

  it("ends a job run from the main chunk without a pool", function()
    local S = h.sleeper()
    local r = h.signal_run(([[
      shell({ "sh", "-c", "touch ready; %s 100; :" })
      print("not reached")
    ]]):format(S), { ready = 1, signals = { { 0.1, "TERM" } } })
    assert.are.equal(143, r.code, r.err)
    assert.are.equal("", r.out)
    assert.are.equal(0, h.gone(h.MARK))
  end)

  for _, case in ipairs({ { "TERM", 143 }, { "INT", 130 } }) do
    it("interrupts a busy Lua loop on SIG" .. case[1], function()
      local r = h.signal_run([[
        io.open("ready", "w"):close()
        local n = 0
        while true do n = n + 1 end
      ]], { ready = 1, signals = { { 0.2, case[1] } } })
      assert.are.equal(case[2], r.code, r.err)
      assert.is_true(r.secs < 3, "slow: " .. r.secs)
    end)
  end

  it("interrupts a busy Lua loop inside a task while jobs run", function()
    -- its own marker and a short sleep: if tide hangs and gets SIGKILLed, the
    -- job it leaks ends by itself and does not fail later leftovers checks
    local mark = h.mark("busy")
    local S = h.sleeper(mark)
    local r = h.signal_run(([[
      pool(2):map(function(i)
        if i == 1 then shell({ "%s", "15" }) end
        io.open("ready", "w"):close()
        while true do end
      end, { 1, 2 })
    ]]):format(S), { ready = 1, signals = { { 0.2, "TERM" } }, wait = 5 })
    assert.are.equal(143, r.code, r.err)
    assert.is_true(r.secs < 3, "slow: " .. r.secs)
    assert.are.equal(0, h.gone(mark))
  end)

  it("ends tide while it is blocked writing a job's output to a full stdout pipe", function()
    -- `tide x.lua | less`, then Ctrl-C: the reader does not read, tide must still end
    local r = h.signal_run([[
      io.open("ready", "w"):close()
      shell("head -c 1000000 /dev/zero")
    ]], { ready = 1, signals = { { 0.5, "TERM" } }, wait = 5, stdout_pipe = true })
    assert.are.equal(143, r.code, r.err)
    assert.is_true(r.secs < 3, "slow: " .. tostring(r.secs))
  end)

  it("ends tide while the script is blocked printing to a full stdout pipe", function()
    local r = h.signal_run([[
      io.open("ready", "w"):close()
      for i = 1, 1e7 do print(i) end
    ]], { ready = 1, signals = { { 0.5, "TERM" } }, wait = 5, stdout_pipe = true })
    assert.are.equal(143, r.code, r.err)
    assert.is_true(r.secs < 3, "slow: " .. tostring(r.secs))
  end)

  it("ends nested pools' jobs too", function()
    local S = h.sleeper()
    local r = h.signal_run(([[
      local p = pool(2)
      p:map(function(a)
        p:map(function(b)
          shell({ "sh", "-c", "touch ready.$1; %s 100; :", "sh", a .. b })
        end, { 1, 2 })
      end, { 1, 2 })
    ]]):format(S), { ready = 2, signals = { { 0.1, "HUP" } } })
    assert.are.equal(129, r.code, r.err)
    assert.are.equal(0, h.gone(h.MARK))
  end)

  it("keeps SIGINT ignored when started with it ignored, as shells do", function()
    local dir = h.tmpdir()
    -- started with & from a non-interactive shell: SIGINT is ignored
    local p = io.popen(([[
      %s -e 'io.open(%q, "w"):close(); shell("sleep 1")' & pid=$!; n=0;
      while [ ! -e %s ] && [ $n -lt 500 ]; do sleep 0.02; n=$((n + 1)); done;
      kill -INT $pid; wait $pid; echo $?
    ]]):format(h.quote(h.TIDE), dir .. "/ready", h.quote(dir .. "/ready")))
    local code = p:read("n")
    p:close()
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(0, code)
  end)
end)
