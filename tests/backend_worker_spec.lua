-- Jobs on tide workers (`tide --worker`, backend/worker.lua): one worker
-- per ssh host or Slurm node carries every job there.  The same sweep must
-- give the same results as locally; a lost worker's jobs run again
-- elsewhere; a host without tide is sent this binary; Slurm sees one step
-- per node, never one per job.  Engines: scripts/services.
local h = require("tests.helper")

local svc = h.services()
local ENV = h.service_env()
local SSH = ("%q"):format(svc.ssh)
local HOSTS = ("hosts = {'2/%s', '2/%s'}, ssh = %s"):format(svc.host_a, svc.host_b, SSH)

local run = h.service_script

-- A sweep whose printout says everything a result carries that does not
-- depend on where it ran: output modes, codes, signals, timeouts,
-- retries, input, environment, directory, binary output, a failed start.
local SWEEP = [[
  local P = {jobs = 2, @OPTS@}
  local p = pool(P)
  local rs = p:map(function(i)
    local cmds = {
      "echo out " .. i .. "; echo err " .. i .. " >&2; exit " .. i % 3,
      "cat; echo $TIDE_W_VAR; pwd",
      "printf 'a\\000b\\377'",
      "kill -TERM $$",
      "sleep 5",
      "/nonexistent/prog",
    }
    local opts = {capture = true, stdin = "input\n", env = {TIDE_W_VAR = "v" .. i}, cwd = "/tmp"}
    if i == 5 then opts.timeout = 0.3 end
    return shell(cmds[i], opts)
  end, {1, 2, 3, 4, 5, 6})
  for i, r in ipairs(rs) do
    print(i, r.ok, r.code, r.signal, r.timed_out, r.attempts, ("%q"):format(r.stdout), ("%q"):format(r.stderr))
  end
  -- grouped and line output, tagged
  p:map(function(i) return shell("echo g" .. i .. "; echo e" .. i .. " >&2") end, {1, 2}, {tag = true, order = "input"})
  p:map(function(i) return shell("echo l" .. i) end, {1, 2}, {output = "line", tag = true, order = "input"})
  -- retries: fails twice, then succeeds
  local dir = os.getenv("TIDE_W_DIR")
  local r = shell("n=$(cat " .. dir .. "/n 2>/dev/null || echo 0); echo $((n+1)) > " .. dir .. "/n; [ $n -ge 2 ]",
    {retries = 3, capture = true})
  print("retry", r.ok, r.attempts)
  -- resume from the records a first run wrote (sweep()): only item 4 runs
  local ran = 0
  p:map(function(i) ran = ran + 1; return shell("exit 0") end, {1, 2, 3, 4},
    {record = dir .. "/rec.jsonl", resume = true})
  print("ran again", ran)
  print("binary", rs[3].stdout == "a\0b\255")
]]

local function sweep(opts)
  local dir = h.tmpdir()
  local env = h.service_env({ TIDE_W_DIR = dir })
  local first = run(([[
    pool{jobs = 2, %s}:map(function(i) return shell("exit 0") end, {1, 2, 3}, {record = %q})
  ]]):format(opts, dir .. "/rec.jsonl"), { env = env })
  assert.are.equal(0, first.code, first.err)
  local r = run((SWEEP:gsub("@OPTS@", function() return opts end)), { env = env })
  os.execute("rm -rf " .. h.quote(dir))
  return r
end

describe("workers", function()
  local here
  setup(function()
    here = sweep("")
  end)

  it("give the same results as local jobs over ssh", function()
    local there = sweep(HOSTS)
    assert.are.equal(here.code, there.code, there.err)
    assert.are.equal(here.out, there.out)
    assert.matches("6\tfalse\t127\t", there.out) -- the failed start is there
    assert.matches("5\tfalse\tnil\tSIGTERM\ttrue", there.out)
    assert.matches("binary\ttrue\n", there.out)
    assert.matches("ran again\t1\n", there.out) -- resumed: only the new item ran
  end)

  it("give the same results as local jobs under Slurm", function()
    local there = sweep("backend = 'slurm'")
    assert.are.equal(here.code, there.code, there.err)
    assert.are.equal(here.out, there.out)
    assert.are.equal("", h.squeue_empty(ENV)) -- the allocation tide took is gone
  end)

  it("carry every job of a host through one worker process", function()
    local r = run(([[
      local rs = pool{%s}:map(function(i)
        return shell("ps -o args= -p $PPID; echo $PPID", {capture = true})
      end, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
      local parents = {}
      for _, r in ipairs(rs) do
        assert(r.stdout:find("--worker", 1, true), r.stdout)
        parents[r.stdout] = true
      end
      local n = 0
      for _ in pairs(parents) do n = n + 1 end
      print("workers", n)
    ]]):format(HOSTS))
    assert.are.equal(0, r.code, r.err)
    assert.matches("workers\t[12]\n", r.out) -- 12 jobs, 2 hosts: at most 2
  end)

  it("run a lost worker's jobs again on the other host (kill -9 of the worker)", function()
    local dir = h.tmpdir()
    local r = run(([[
      local rs = pool{%s}:map(function(i)
        return shell("if mkdir %s/once 2>/dev/null; then kill -9 $PPID; sleep 5; fi; echo done " .. i,
          {capture = true})
      end, {1, 2, 3, 4, 5, 6})
      for i, r in ipairs(rs) do print(i, r.ok, r.attempts, r.stdout) end
    ]]):format(HOSTS, dir))
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(0, r.code, r.err)
    for i = 1, 6 do
      assert.matches(("%d\ttrue\t1\tdone %d\n"):format(i, i), r.out)
    end
    assert.matches("is down: its worker was lost", r.err, 1, true)
  end)

  it("count a loss as a failed attempt with moves = 0: retries then apply", function()
    for _, case in ipairs({ { "retries = 1", "true\t2\tdone" }, { "retries = 0", "false\t1\t\tconnection to '" } }) do
      local dir = h.tmpdir()
      local r = run(([[
        local r = pool{%s, moves = 0, %s}:map(function(i)
          return shell("if mkdir %s/once 2>/dev/null; then kill -9 $PPID; sleep 5; fi; echo done", {capture = true})
        end, {1})[1]
        print(r.ok, r.attempts, (r.stdout:gsub("\n", "")), r.error)
      ]]):format(HOSTS, case[1], dir))
      os.execute("rm -rf " .. h.quote(dir))
      assert.matches(case[2], r.out, 1, true)
      assert.matches("is down: its worker was lost", r.err, 1, true)
    end
  end)

  it("send tide to a host that does not have it at the same path", function()
    local dir = h.tmpdir()
    local copy = dir .. "/tide-copy"
    assert(os.execute(("cp %s %s"):format(h.quote(h.TIDE), h.quote(copy))))
    -- the copy removes itself: the host (this machine) has nothing there
    local script = h.spit(dir .. "/s.lua", ([[
      os.remove(%q)
      local r = shell("ps -o args= -p $PPID", {hosts = {%q}, ssh = %s, capture = true})
      print(r.ok, r.stdout)
    ]]):format(copy, svc.host_a, SSH))
    local r = h.sh(h.quote(copy) .. " " .. h.quote(script), { env = ENV })
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(0, r.code, r.err)
    local path = r.out:match("^true\t(%S+/%.cache/tide/tide%-%x+) %-%-worker\n")
    assert.is_not_nil(path, r.out .. r.err)
    os.remove(path)
  end)

  -- tide.so in a plain lua5.4 has no tide executable to start as a worker
  local MODULE_DIR = h.TIDE:match("^(.*)/[^/]*$")
  local have_module = io.open(MODULE_DIR .. "/tide.so") and not h.SANITIZED
  local fallback = have_module and it or pending
  fallback("fall back to one ssh session per job where no worker can start", function()
    local dir = h.tmpdir()
    local script = h.spit(dir .. "/m.lua", ([[
      local t = require "tide"
      local r = t.shell("echo fine", {hosts = {%q}, ssh = %s, capture = true})
      print(r.ok, r.stdout)
    ]]):format(svc.host_a, SSH))
    local r = h.sh(("LUA_CPATH=%s lua5.4 %s"):format(h.quote(MODULE_DIR .. "/?.so;;"), h.quote(script)),
      { env = ENV })
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(0, r.code, r.err)
    assert.matches("true\tfine\n", r.out)
    assert.matches("cannot run a tide worker (tide runs as a Lua module", r.err, 1, true)
  end)

  -- 20,000 jobs as the issue asks; 2,000 under ASan, which is slower
  local N = h.SANITIZED and 2000 or 20000
  it(("make one Slurm step per node for a sweep of %d jobs"):format(N), function()
    local dir = h.tmpdir()
    local script = h.spit(dir .. "/s.lua", ([[
      local items = {}
      for i = 1, %d do items[i] = i end
      local steps = {}
      pool{jobs = 8, backend = "slurm"}:map(function(i)
        local r = shell("echo $SLURM_JOB_ID.$SLURM_STEP_ID", {capture = true})
        steps[r.stdout] = true
        return r.ok
      end, items)
      for s in pairs(steps) do io.write("step ", s) end
      print("alloc", os.getenv("SLURM_JOB_ID"))
    ]]):format(N))
    local r = h.sh("salloc -Q -n8 " .. h.quote(h.TIDE) .. " " .. h.quote(script), { env = ENV, timeout = 300 })
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(0, r.code, r.err)
    local n = select(2, r.out:gsub("step %d+%.%d+\n", ""))
    assert.are.equal(1, n, r.out) -- every job ran inside the one step
    -- and slurmd launched one step of the allocation: the node's worker
    local alloc = r.out:match("alloc\t(%d+)")
    local log = h.slurp(svc.dir .. "/slurm/slurmd.log")
    local launched = select(2, log:gsub("launch task StepId=" .. alloc .. "%.%d+ ", ""))
    assert.are.equal(1, launched, "steps launched for allocation " .. alloc)
  end)

  it("run a cancelled step's jobs again elsewhere, or fail them when no node is left", function()
    -- one node: scancel of its worker step loses it, and its jobs with it
    local dir = h.tmpdir()
    local script = h.spit(dir .. "/s.lua", [[
      local r = shell("scancel $SLURM_JOB_ID.$SLURM_STEP_ID; sleep 5", {backend = "slurm", capture = true})
      print(r.ok, r.error)
    ]])
    local r = h.sh("salloc -Q -n2 " .. h.quote(h.TIDE) .. " " .. h.quote(script), { env = ENV })
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(1, r.code, r.err)
    assert.matches("false\t", r.out)
    assert.matches("node 'tide' is down: its worker was lost", r.err, 1, true)
    assert.are.equal("", h.squeue_empty(ENV))
  end)

  -- and with workers = false, a step a job: none queued is left either
  for _, mode in ipairs({ { "workers", "" }, { "steps", ", workers = false" } }) do
    it("leave nothing running and no allocation on Ctrl-C (Slurm " .. mode[1] .. ")", function()
      local mark = h.mark("int" .. mode[1])
      local r = h.signal_run(([[
        local here = io.popen("pwd"):read("l")
        pool{jobs = 3, backend = "slurm"%s}:map(function(i)
          return shell("touch ready" .. i .. "; %s 300", {cwd = here})
        end, {1, 2, 3, 4, 5, 6})
      ]]):format(mode[2], h.sleeper(mark)), { ready = 3, signals = { { 0.2, "INT" } }, env = ENV })
      assert.are.equal(130, r.code, r.err)
      assert.are.equal(0, h.gone(mark, 5))
      assert.are.equal("", h.squeue_empty(ENV))
    end)
  end

  -- A job that holds its ids while n jobs run at once (at most 10 s): it
  -- prints CLASH if a running job holds the same id on the same place,
  -- TOGETHER once n ran at once.  A place is the sshd port the job came
  -- through (the two test hosts are two ports of one machine), or "node".
  local HOLD = [[
    local function hold(n, opts)
      local d = os.getenv("TIDE_W_DIR")
      return shell("k=${SSH_CONNECTION##* }; k=${k:-node}; for g in $(echo $TIDE_GPU | tr , ' '); do "
        .. "mkdir " .. d .. "/hold-$k-$g 2>/dev/null || echo CLASH; done; touch " .. d .. "/on-$$; i=0; "
        .. "while [ $(ls " .. d .. " | grep -c '^on-') -lt " .. n .. " ] && [ $i -lt 500 ]; do "
        .. "sleep 0.02; i=$((i+1)); done; [ $i -lt 500 ] && echo TOGETHER; "
        .. "for g in $(echo $TIDE_GPU | tr , ' '); do rmdir " .. d .. "/hold-$k-$g; done; "
        .. "echo \"$TIDE_GPU $CUDA_VISIBLE_DEVICES\"", opts)
    end
  ]]

  local function held(src, sh, code)
    local dir = h.tmpdir()
    local env = h.service_env({ TIDE_W_DIR = dir })
    local script = h.spit(dir .. "/s.lua", HOLD .. src)
    local r = h.sh((sh or "") .. " " .. h.quote(h.TIDE) .. " " .. h.quote(script), { env = env })
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(code or 0, r.code, r.err)
    assert.falsy(r.out:find("CLASH"), r.out)
    return r.out
  end

  it("give each ssh host its own ids: two hosts' GPU 0 in use at once", function()
    local out = held(([[
      local rs = pool{jobs = 4, %s, resources = {gpu = {0}}}:map(function(i)
        return hold(2, {gpu = 1, capture = true})
      end, {1, 2})
      for _, r in ipairs(rs) do print(r.host, r.resources.gpu[1], (r.stdout:gsub("\n", " "))) end
    ]]):format(HOSTS))
    assert.matches(svc.host_a .. "\t0\tTOGETHER 0 0", out, 1, true)
    assert.matches(svc.host_b .. "\t0\tTOGETHER 0 0", out, 1, true)
  end)

  it("give a host the ids the pool names for it, and a job that needs more the host that has them", function()
    local out = held(([[
      local p = pool{jobs = 4, %s, resources = {gpu = {ids = {0}, hosts = {[%q] = {5, 6}}}}}
      local rs = p:map(function(i) return hold(1, {gpu = i < 4 and 1 or 2, capture = true}) end, {1, 2, 3, 4})
      for _, r in ipairs(rs) do print(r.host, table.concat(r.resources.gpu, ","), r.ok) end
      local r = p:map(function() return shell("true", {gpu = 2, hosts = {%q}, ssh = %s}) end, {1})[1]
      print("alone", r.ok, r.error)
    ]]):format(HOSTS, svc.host_b, svc.host_a, SSH), nil, 1)
    assert.matches("alone\tfalse\tno host that is up has the ids asked for: 2 'gpu' ids asked for, '"
      .. svc.host_a .. "' has 1 (0)", out, 1, true)
    local n = 0
    for host, ids in out:gmatch("([^\n]+)\t(%S+)\ttrue\n") do
      n = n + 1
      if host == svc.host_a then
        assert.are.equal("0", ids)
      else
        assert.truthy(ids == "5" or ids == "6" or ids == "5,6", out)
      end
    end
    assert.are.equal(4, n, out)
    assert.matches(svc.host_b .. "\t5,6\ttrue", out, 1, true) -- the job that needs 2
  end)

  it("give a Slurm node the ids of its GRES when its step has some", function()
    -- the pool lists 2 ids, the allocation's GRES 3: three jobs hold one each at once
    local out = held([[
      local rs = pool{jobs = 3, backend = "slurm", resources = {gpu = {7, 8}}}:map(function(i)
        return hold(3, {gpu = 1, capture = true})
      end, {1, 2, 3})
      for _, r in ipairs(rs) do print(r.resources.gpu[1], (r.stdout:gsub("\n", " "))) end
    ]], "salloc -Q -n3 --gres=gpu:3")
    local seen = {}
    for id, rest in out:gmatch("(%d)\t([^\n]*)") do
      assert.truthy(id == "0" or id == "1" or id == "2", out)
      assert.are.equal("TOGETHER " .. id .. " " .. id .. " ", rest)
      seen[id] = true
    end
    assert.are.same({ ["0"] = true, ["1"] = true, ["2"] = true }, seen)
  end)

  it("give a Slurm node the ids the pool names for it (its own allocation, no GRES)", function()
    local out = held([[
      local p = pool{jobs = 2, backend = "slurm", resources = {gpu = {ids = {7, 8, 9}, hosts = {tide = {4, 5}}}}}
      local rs = p:map(function(i) return hold(2, {gpu = 1, capture = true}) end, {1, 2})
      for _, r in ipairs(rs) do print(r.host, r.resources.gpu[1], (r.stdout:gsub("\n", " "))) end
      local r = p:map(function() return shell("true", {gpu = 3}) end, {1})[1]
      print("three", r.ok, r.error)
    ]], nil, 1)
    assert.matches("three\tfalse\tno Slurm node has the ids asked for: 3 'gpu' ids asked for, 'tide' has 2 (4, 5)",
      out, 1, true)
    assert.matches("tide\t4\tTOGETHER 4 4", out, 1, true)
    assert.matches("tide\t5\tTOGETHER 5 5", out, 1, true)
  end)

  for _, b in ipairs({ { "ssh", HOSTS }, { "Slurm", "jobs = 3, backend = 'slurm'" } }) do
    it("leave nothing running on " .. b[1] .. " when tide is killed with SIGKILL", function()
      local mark = h.mark("workkill" .. b[1])
      local S = h.sleeper(mark)
      local r = h.signal_run(([[
        local here = io.popen("pwd"):read("l")
        pool{%s}:map(function(i)
          return shell("touch ready" .. i .. "; %s 300", {cwd = here})
        end, {1, 2, 3})
      ]]):format(b[2], S), { ready = 3, signals = { { 0.2, "KILL" } }, env = ENV })
      assert.are.equal(137, r.code, r.err)
      -- the workers saw their stdin close and stopped their jobs
      assert.are.equal(0, h.gone(mark, 10))
      assert.are.equal("", h.squeue_empty(ENV))
    end)
  end
end)
