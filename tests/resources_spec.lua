-- resources_spec.lua: every job knows its slot (TIDE_SLOT), and pools hand
-- out resource ids (resources = {gpu = {...}}, gpu = 1) that no two running
-- jobs hold at once.  The evidence is what the jobs themselves record, in
-- the order they record it (under flock), never timestamps.
local h = require("tests.helper")
local q = h.quote

-- Runs src, asserting exit status code (default 0); returns stdout.
local function out_of(src, env, code)
  local r = h.script(src, {}, { timeout = 60, env = env })
  assert.are.equal(code or 0, r.code, r.err)
  return r.out
end

-- A shell snippet appending "word value" to log under a lock, so that lines
-- are in the order the jobs wrote them.
local function note(log, word, value)
  return ("flock %s.lock sh -c 'echo %s %s >>%s'"):format(q(log), word, value, q(log))
end

-- Replays a log of "start id" / "end id" lines: fails if an id starts while
-- a job holds it (more than `share` holders), or ends unheld; returns the
-- ids seen and the largest number of jobs that ran at once.
local function replay(log, share)
  local held, seen, running, most = {}, {}, 0, 0
  for line in io.lines(log) do
    local word, id = line:match("^(%a+) (.*)$")
    if word == "start" then
      held[id] = (held[id] or 0) + 1
      assert.is_true(held[id] <= (share or 1), "id " .. id .. " held twice at once:\n" .. h.slurp(log))
      seen[id] = true
      running = running + 1
      most = math.max(most, running)
    else
      assert.are.equal("end", word)
      assert.is_true((held[id] or 0) > 0, "id " .. id .. " ended unheld")
      held[id] = held[id] - 1
      running = running - 1
    end
  end
  return seen, most
end

describe("TIDE_SLOT", function()
  it("is given to every job a pool runs: 1..size, never two running jobs with the same one", function()
    local dir = h.tmpdir()
    local log = dir .. "/log"
    local job = note(log, "start", "$TIDE_SLOT") .. "; sleep 0.01; " .. note(log, "end", "$TIDE_SLOT")
    local out = out_of(([[
      local res = pool(2):map(function(i)
        -- short path and controlled path (a job option) alike
        local opts = i %% 2 == 0 and { timeout = 30 } or nil
        return shell(%q, opts).ok
      end, tide.range(1, 40))
      local ok = 0
      for i = 1, res.n do ok = ok + (res[i] and 1 or 0) end
      print(ok)
    ]]):format(job))
    assert.are.equal("40\n", out)
    local seen, most = replay(log)
    assert.are.same({ ["1"] = true, ["2"] = true }, seen)
    assert.is_true(most <= 2)
    os.execute("rm -rf " .. q(dir))
  end)

  it("is a task's own: every job of one item sees the same, and a job outside a map inherits tide's", function()
    local out = out_of([[
      local res = pool(3):map(function(i)
        local a = shell("echo $TIDE_SLOT", { capture = true }).stdout
        local b = shell({ "printenv", "TIDE_SLOT" }, { capture = true, env = { X = "1" } }).stdout
        return a == b and #a > 0
      end, { 1, 2, 3, 4, 5, 6 })
      print(table.concat({ tostring(res[1]), tostring(res[6]) }, " "))
      io.write(shell("echo ${TIDE_SLOT-unset}", { capture = true }).stdout)
      io.write(shell("echo $TIDE_SLOT", { capture = true, env = { TIDE_SLOT = "mine" } }).stdout)
      print(pool(1):map(function()
        return shell("echo $TIDE_SLOT", { capture = true, env = { TIDE_SLOT = "mine" } }).stdout
      end, { 1 })[1])
    ]], { TIDE_SLOT = "outer" })
    -- a job's own env wins over tide's TIDE_SLOT
    assert.are.equal("true true\nouter\nmine\nmine\n\n", out)
  end)
end)

describe("resources", function()
  it("gives each job ids no running job holds, in CUDA_VISIBLE_DEVICES, TIDE_GPU and r.resources", function()
    local dir = h.tmpdir()
    local log = dir .. "/log"
    local job = note(log, "start", "$TIDE_GPU") .. "; sleep 0.02; " .. note(log, "end", "$TIDE_GPU")
      .. '; echo "$CUDA_VISIBLE_DEVICES|$TIDE_GPU"'
    local out = out_of(([[
      local p = pool{jobs = 5, resources = {gpu = {0, 1, "x"}}}
      local res = p:map(function(i)
        local r = shell(%q, {capture = true})
        local cuda, mine = r.stdout:match("^(.-)|(.-)\n$")
        return r.ok and cuda == mine and #r.resources.gpu == 1 and r.resources.gpu[1] == mine
      end, tide.range(1, 30), {gpu = 1})
      local good = 0
      for i = 1, res.n do good = good + (res[i] and 1 or 0) end
      print(good)
    ]]):format(job))
    assert.are.equal("30\n", out)
    local seen, most = replay(log)
    assert.are.same({ ["0"] = true, ["1"] = true, x = true }, seen)
    assert.is_true(most <= 3)
    os.execute("rm -rf " .. q(dir))
  end)

  it("gives a job that asks for 2 two distinct ids, comma-separated", function()
    local out = out_of([[
      local p = pool{jobs = 2, resources = {gpu = {3, 4, 5}}}
      p:map(function()
        local r = shell("echo $CUDA_VISIBLE_DEVICES", {gpu = 2, capture = true})
        local a, b = r.stdout:match("^(%d),(%d)\n$")
        print(a ~= b and #r.resources.gpu == 2 and r.resources.gpu[1] .. "," .. r.resources.gpu[2] == a .. "," .. b)
      end, {1, 2, 3})
    ]])
    assert.are.equal("true\ntrue\ntrue\n", out)
  end)

  it("shares one id between fractions that add up to 1, and not beyond", function()
    local dir = h.tmpdir()
    -- each job waits until the other is in: both must run at once
    local meet = ("touch %s/in.$TIDE_SLOT; for i in $(seq 400); do [ $(ls %s | wc -l) -ge 2 ] && exit 0; "
      .. "sleep 0.05; done; exit 1"):format(q(dir), q(dir))
    local log = dir .. "/log"
    local apart = note(log, "start", "$TIDE_GPU") .. "; sleep 0.05; " .. note(log, "end", "$TIDE_GPU")
    local out = out_of(([[
      local p = pool{jobs = 2, resources = {gpu = {0}}}
      local res = p:map(function()
        local r = shell(%q, {gpu = 0.5})
        return r.ok and r.resources.gpu[1]
      end, {1, 2})
      print(res[1], res[2])
      -- 0.6 + 0.6 > 1: these never share
      p:map(function() shell(%q, {gpu = 0.6}) end, tide.range(1, 6))
    ]]):format(meet, apart))
    assert.are.equal("0\t0\n", out)
    local seen = replay(log, 1)
    assert.are.same({ ["0"] = true }, seen)
    os.execute("rm -rf " .. q(dir))
  end)

  it("gives ids back however a job ends: ok, failure, timeout, signal, start failure, halt", function()
    -- one id: a job that kept it would leave the next waiting forever
    local out = out_of([[
      local p = pool{jobs = 3, resources = {gpu = {7}}}
      local cmds = {"true", "exit 3", "sleep 30", "kill -9 $$", {"nosuch_prog_tide"}, "echo $TIDE_GPU"}
      local res = p:map(function(cmd)
        local r = shell(cmd, {gpu = 1, timeout = cmd == "sleep 30" and 0.2 or nil, capture = true})
        return (r.ok and "ok" or "failed") .. ":" .. r.resources.gpu[1]
      end, cmds)
      print(table.concat(res, " "))
      -- a halt cancels the job holding the id and the ones waiting for it
      local halted = p:map(function(i)
        return shell(i == 1 and "sleep 0.2; exit 1" or "sleep 30", {gpu = 1}).ok
      end, {1, 2, 3}, {halt = "now,fail=1"})
      print(halted.halted)
      print(p:map(function() return shell("echo $TIDE_GPU", {gpu = 1, capture = true}).stdout end, {1})[1])
    ]], nil, 1)
    assert.are.equal("ok:7 failed:7 failed:7 failed:7 failed:7 ok:7\nnow,fail=1\n7\n\n", out)
  end)

  it("lets jobs that need nothing run while others wait for ids", function()
    local dir = h.tmpdir()
    local flag = dir .. "/flag"
    -- item 1 holds the only id until item 3, which needs none, has run;
    -- item 2 waits for the id meanwhile
    local out = out_of(([[
      local p = pool{jobs = 3, resources = {gpu = {0}}}
      local res = p:map(function(i)
        if i == 1 then
          return shell("for i in $(seq 400); do [ -e %s ] && exit 0; sleep 0.05; done; exit 1", {gpu = 1}).ok
        elseif i == 2 then
          tide.sleep(0.1)
          return shell("test -e %s", {gpu = 1}).ok
        end
        tide.sleep(0.2)
        return shell("touch %s").ok
      end, {1, 2, 3})
      print(res[1], res[2], res[3])
    ]]):format(q(flag), q(flag), q(flag)))
    assert.are.equal("true\ttrue\ttrue\n", out)
    os.execute("rm -rf " .. q(dir))
  end)

  it("sets the variables the pool names, and TIDE_<NAME> for any resource", function()
    local out = out_of([[
      local p = pool{jobs = 1, resources = {
        gpu = {ids = {0, 1}, env = {"ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES"}},
        license = {"a", "b"},
      }}
      p:map(function()
        io.write(shell("echo ${CUDA_VISIBLE_DEVICES-none} $ROCR_VISIBLE_DEVICES $HIP_VISIBLE_DEVICES $TIDE_GPU "
          .. "$TIDE_LICENSE", {gpu = 2, license = 1, capture = true}).stdout)
        io.write(shell("echo ${TIDE_GPU-none} ${TIDE_LICENSE-none}", {capture = true}).stdout)
      end, {1})
    ]])
    assert.are.equal("none 0,1 0,1 0,1 a\nnone none\n", out)
  end)

  it("takes a count from the pool, the map or the job, the nearest winning, false for none", function()
    local out = out_of([[
      local p = pool{jobs = 1, resources = {gpu = {0, 1, 2}}, gpu = 1}
      local function ids(opts) return shell("echo ${TIDE_GPU-none}", opts).stdout end
      p:map(function()
        io.write(ids({capture = true}), ids({capture = true, gpu = 3}), ids({capture = true, gpu = false}))
      end, {1})
      p:map(function() io.write(ids({capture = true})) end, {1}, {gpu = 2})
    ]])
    assert.are.equal("0\n0,1,2\nnone\n0,1\n", out)
  end)

  describe("misuse is an error at the caller's line", function()
    for _, case in ipairs({
      { "pool{resources = {gpu = {}}}", "bad argument #1 to 'pool' (option 'resources': gpu has no ids" },
      { "pool{resources = 'gpu'}", "bad argument #1 to 'pool' (option 'resources' must be a table of resources" },
      { "pool{resources = {gpu = {0, 0.0}}}", "option 'resources': gpu: id '0' is given twice" },
      { "pool{resources = {gpu = {true}}}", "option 'resources': gpu: id #1 must be a number or a non-empty" },
      { "pool{resources = {gpu = {'a,b'}}}", "option 'resources': gpu: id #1 must be a number or a non-empty" },
      { "pool{resources = {gpu = {ids = {0}, env = {'A=B'}}}}", "option 'resources': gpu.env[1] must be a variable" },
      { "pool{resources = {gpu = {ids = {0}, env = 'X'}}}", "option 'resources': gpu.env must be a list" },
      { "pool{resources = {gpu = {ids = {0}, envs = {}}}}", "option 'resources': gpu has an unknown field 'envs'" },
      { "pool{resources = {gpu = {ids = {0}, hosts = {}}}}",
        "option 'resources': gpu.hosts must be a table of a host's" },
      { "pool{resources = {gpu = {ids = {0}, hosts = {{1}}}}}", "option 'resources': gpu.hosts: 1 is not a host name" },
      { "pool{resources = {gpu = {ids = {0}, hosts = {n2 = {1, 1}}}}}",
        "option 'resources': gpu.hosts['n2']: id '1' is given twice" },
      { "pool{resources = {gpu = {ids = {0}, hosts = {n2 = 'x'}}}}",
        "option 'resources': gpu.hosts['n2'] must be a list of ids" },
      { "pool{resources = {gpu = {ids = {0}, hosts = {n2 = {0, 1}}}}, gpu = 3}",
        "bad argument #1 to 'pool' (option 'gpu' asks for 3 ids but no host has more than 2)" },
      { "pool{resources = {gpu = {ids = {}}}}", "option 'resources': gpu has no ids" },
      { "pool{resources = {gpu = 4}}", "option 'resources': gpu must be a list of ids such as {0, 1}" },
      { "pool{resources = {timeout = {0}}}", "option 'resources': 'timeout' is the name of an option" },
      { "pool{resources = {['a-b'] = {0}}}", "option 'resources': 'a-b' is not a resource name" },
      { "pool{resources = {gpu = {0}, GPU = {1}}}", "would both set TIDE_GPU" },
      { "pool{resources = {gpu = {0}}, gpu = 2}",
        "bad argument #1 to 'pool' (option 'gpu' asks for 2 ids but the pool has 1 (0))" },
      { "pool{resources = {gpu = {0, 1}}, gpu = -1}", "option 'gpu' must be a number of ids: a whole number up to 2" },
      { "pool{resources = {gpu = {0, 1}}, gpu = 1.5}", "option 'gpu' must be a number of ids" },
      { "pool{resources = {gpu = {0, 1}}, gpu = 0/0}", "option 'gpu' must be a number of ids" },
      { "pool{resources = {gpu = {0, 1}}, tpu = 1}",
        "unknown option 'tpu' (not an option, nor one of this pool's resources: gpu)" },
      { "pool{gpu = 1}", "unknown option 'gpu' (not an option; a count of a resource needs a pool with resources" },
      { "pool{resources = {gpu = {0}}}:map(print, {}, {gpu = '1'})",
        "bad argument #3 to 'map' (option 'gpu' must be a number of ids" },
      { "pool{resources = {gpu = {0}}}:map(print, {}, {resources = {}})",
        "bad argument #3 to 'map' (option 'resources' is a pool's" },
      { "shell('true', {gpu = 1})", "bad argument #2 to 'shell' (unknown option 'gpu' (not an option; a count" },
      { "shell('true', {resources = {gpu = {0}}})", "bad argument #2 to 'shell' (option 'resources' is a pool's" },
    }) do
      it(case[1], function()
        local r = h.script("\n\n" .. case[1] .. "\n")
        assert.are.equal(2, r.code, r.err)
        assert.truthy(r.err:find("script.lua:3: " .. "[^\n]*" .. case[2]:gsub("%p", "%%%0")), r.err)
      end)
    end

    it("fails a local job that asks for more ids than the pool has, when only a host has that many", function()
      local r = h.script([[
        local p = pool{resources = {gpu = {ids = {0}, hosts = {n2 = {0, 1}}}}}
        local r = p:map(function() return shell("true", {gpu = 2, capture = true}) end, {1})[1]
        print(r.ok, r.error)
      ]])
      assert.are.equal(1, r.code, r.err)
      assert.are.equal("false\t2 'gpu' ids asked for, the pool has 1 (0)\n", r.out)
    end)

    for _, case in ipairs({
      { "{gpu = 3}", "bad argument #2 to 'shell' (option 'gpu' asks for 3 ids but the pool has 2 (0, 1))" },
      { "{gpu = -0.5}", "bad argument #2 to 'shell' (option 'gpu' must be a number of ids" },
      { "{tpu = 1}", "bad argument #2 to 'shell' (unknown option 'tpu' (not an option, nor one of this pool's" },
    }) do
      it("shell(cmd, " .. case[1] .. ") in a task", function()
        local r = h.script("local p = pool{resources = {gpu = {0, 1}}}\np:map(function()\n  shell('true', "
          .. case[1] .. ")\nend, {1})\n")
        assert.are_not.equal(0, r.code)
        assert.truthy(r.err:find("script.lua:3: " .. case[2]:gsub("%p", "%%%0")), r.err)
      end)
    end
  end)
end)
