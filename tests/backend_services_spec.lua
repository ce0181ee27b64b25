-- The real engines the backend specs run on (scripts/services, started by
-- the ctest fixture tide_services): two ssh "hosts" on 127.0.0.1 with host
-- key checking on, and a one-node Slurm.  These tests check the set-up, not
-- tide: if they fail, the backend specs cannot be trusted either.
local h = require("tests.helper")

local svc = h.services()
local ENV = h.service_env()

local function sh(cmd)
  return h.sh(cmd, { env = ENV })
end

describe("test services", function()
  it("export what the backend specs need", function()
    assert.truthy(svc.ssh:find("^ssh %-F /"))
    assert.are_not.equal(svc.host_a, svc.host_b)
    assert.are.equal(svc.dir .. "/slurm.conf", svc.slurm_conf)
    assert.are.equal(svc.dir, ENV.TIDE_TEST_SERVICES)
  end)

  it("run a command on both ssh hosts, with its output and exit code", function()
    local ports = {}
    for _, host in ipairs({ svc.host_a, svc.host_b }) do
      local r = sh(svc.ssh .. " " .. host .. [[ 'echo "out $SSH_CONNECTION"; echo err >&2; exit 3']])
      assert.are.equal(3, r.code)
      local port = r.out:match("^out 127%.0%.0%.1 %d+ 127%.0%.0%.1 (%d+)\n$")
      assert.truthy(port, r.out)
      assert.are.equal("err\n", r.err)
      ports[#ports + 1] = port
    end
    assert.are_not.equal(ports[1], ports[2])
  end)

  it("pass stdin through ssh", function()
    local r = h.sh(svc.ssh .. " " .. svc.host_b .. " 'tr a-z A-Z'", { env = ENV, stdin = "hello\n" })
    assert.are.equal(0, r.code)
    assert.are.equal("HELLO\n", r.out)
  end)

  it("refuse an ssh host whose key is unknown or wrong (host key checking is on)", function()
    local dir = h.tmpdir()
    local q = h.quote
    local port = sh(svc.ssh .. " -G " .. svc.host_a .. " | awk '$1 == \"port\" { print $2 }'").out:match("%d+")
    assert.truthy(port)
    assert.are.equal(0, sh("ssh-keygen -q -t ed25519 -N '' -f " .. q(dir .. "/other")).code)
    local other = h.slurp(dir .. "/other.pub"):match("^(%S+ %S+)")
    h.spit(dir .. "/wrong", ("[127.0.0.1]:%s %s\n"):format(port, other))
    h.spit(dir .. "/empty", "")
    local marker = h.mark("hostkey")
    for _, known in ipairs({ "wrong", "empty" }) do
      local r = sh(("%s -o UserKnownHostsFile=%s %s 'touch %s'"):format(
        svc.ssh, q(dir .. "/" .. known), svc.host_a, q(dir .. "/" .. marker)))
      assert.are.equal(255, r.code)
      assert.truthy(r.err:find("Host key verification failed", 1, true)
        or r.err:find("host key is known", 1, true), r.err)
      assert.is_nil(io.open(dir .. "/" .. marker))
    end
    os.execute("rm -rf " .. q(dir))
  end)

  it("run a Slurm job: srun gives the task's output and exit code", function()
    local r = sh("srun -Q -n1 sh -c 'echo hi; exit 3'")
    assert.are.equal(3, r.code)
    assert.are.equal("hi\n", r.out)
  end)

  it("report a task killed by a signal as 128 + the signal", function()
    local r = sh("srun -Q -n1 sh -c 'kill -9 $$'")
    assert.are.equal(137, r.code)
    assert.are.equal("", r.out)
  end)

  it("run job steps inside an allocation", function()
    local r = sh([[salloc -Q -n2 sh -c '
      srun -Q --exact -n1 sh -c "echo step \$SLURM_JOB_ID.\$SLURM_STEP_ID" & a=$!
      srun -Q --exact -n1 sh -c "exit 5" & b=$!
      wait $a; wait $b; echo "second $?"; echo "alloc $SLURM_JOB_ID"']])
    assert.are.equal(0, r.code, r.err)
    local job = r.out:match("alloc (%d+)\n")
    assert.truthy(job, r.out)
    assert.truthy(r.out:find("step " .. job .. ".%d+\n"), r.out)
    assert.truthy(r.out:find("second 5\n", 1, true), r.out)
  end)
end)

describe("h.services()", function()
  it("says so when the services are not running", function()
    local dir = h.tmpdir()
    local r = h.sh("lua5.4 -e " .. h.quote("require('tests.helper').services()"), { env = { TIDE_SERVICES = dir } })
    os.execute("rm -rf " .. h.quote(dir))
    assert.are_not.equal(0, r.code)
    assert.truthy(r.err:find("the test services are not running", 1, true), r.err)
  end)
end)
