-- C defects pinned down (issue #12, "C without a circle"): what tide.core
-- and the host do, seen from a script.
local h = require("tests.helper")

describe("tide.core", function()
  it("mkdir honours its mode argument (0700 under umask 022)", function()
    local dir = h.tmpdir()
    local lua = ("assert(require('tide.core').mkdir(%q, tonumber('700', 8)))"):format(dir .. "/d")
    local r = h.sh(("umask 022; %s -e %s && stat -c %%a %s"):format(h.quote(h.TIDE), h.quote(lua),
      h.quote(dir .. "/d")))
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("700\n", r.out)
  end)

  it("spawn returns a start failure, naming what failed, and writes nothing", function()
    local r = h.script([[
      local core = require("tide.core")
      print(core.spawn({ "nosuch_prog_tide" }, { stderr = "inherit" }))
      print(core.spawn({ "true" }, { cwd = "/nonexistent/tide_dir", stderr = "inherit" }))
      print(core.spawn({ "/" }, { stderr = "inherit" }))
      print(core.mkdir("/nonexistent/tide_dir/x"))
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("", r.err)
    assert.are.equal("nil\tENOENT: no such file or directory (cmd): 'nosuch_prog_tide'\tENOENT\n"
      .. "nil\tENOENT: no such file or directory (cwd): '/nonexistent/tide_dir'\tENOENT\n"
      .. "nil\tEACCES: permission denied (cmd): '/'\tEACCES\n"
      .. "nil\tENOENT: no such file or directory (mkdir): '/nonexistent/tide_dir/x'\tENOENT\n", r.out)
  end)

  it("spawn builds a job's environment: tide's, then extra NAME=value strings, then opts.env", function()
    local r = h.script([[
      local core = require("tide.core")
      local sched = require("tide.run.sched")
      local function env_of(...)
        local job = assert(core.spawn({ "sh", "-c", "echo $A,$B,$C,${TIDE_E_GONE-unset},$TIDE_E_KEPT,$N" }, ...))
        sched.await(job)
        io.write(job:output("stdout"))
        job:release()
      end
      env_of(nil, "A=1")
      -- the same names again (what was kept of environ is used again), others
      env_of(nil, "A=2")
      env_of(nil, "C=3")
      env_of(nil, { "A=4", "C=5" })
      env_of(nil, "A=6", "A=7")
      env_of({ env = { B = "b", TIDE_E_GONE = false, N = 2.5 } }, "A=1", nil, { "B=2", "C=3", "TIDE_E_KEPT=x" })
      env_of({ env = { TIDE_E_KEPT = "table" } }, { "TIDE_E_KEPT=list", "TIDE_E_GONE=new" })
      env_of(nil, nil, nil)
      for _, bad in ipairs({ "A", "=1", 3, { "A=1", true }, { "A=1", "B" }, "A=\0" }) do
        print((select(2, pcall(core.spawn, { "true" }, nil, bad)):match("bad argument #3 .*")))
      end
    ]], {}, { env = { TIDE_E_GONE = "inherited", TIDE_E_KEPT = "kept" } })
    assert.are.equal(0, r.code, r.err)
    local bad = ("bad argument #3 to 'tide.core.spawn' ('NAME=value' strings expected)\n"):rep(6)
    assert.are.equal("1,,,inherited,kept,\n2,,,inherited,kept,\n,,3,inherited,kept,\n4,,5,inherited,kept,\n"
      .. "7,,,inherited,kept,\n1,b,3,unset,x,2.5\n,,,new,table,\n,,,inherited,kept,\n" .. bad, r.out)
  end)

  it("configure checks its fields", function()
    local r = h.script([[
      local core = require("tide.core")
      core.configure({ kill_grace = 2, drain = 0.1 })
      for _, bad in ipairs({ { kill_grace = -1 }, { drain = "x" }, { drain = 0 / 0 }, { grace = 1 } }) do
        print((pcall(core.configure, bad)))
      end
      print(core.errno.EPIPE, core.errno.ENOENT)
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("false\nfalse\nfalse\nfalse\n32\t2\n", r.out)
  end)

  it("frame and unframe: values as tostring writes them, partial and malformed frames, bad arguments", function()
    local r = h.script([[
      local core = require("tide.core")
      local f = core.frame("end", 7, { 0, "", 0.5, 2 ^ 63, -1, true }, 7) -- the 7th is nil
      print((f:gsub("\n", "|")))
      local kind, id, s, at = core.unframe("xx" .. f .. "tail", 3)
      print(kind, id, #s, s[3], s[7], at == #f + 3)
      print(core.unframe(f:sub(1, 10)), core.unframe(f:sub(1, -2)))
      -- the last but one: lengths whose sum wraps 64 bits, which must not pass for a short frame
      local wrap = "out 1 1845 " .. ("9999999999999999 "):rep(1844) .. "6744073709553465\nabcdef"
      for _, bad in ipairs({ "GET / HTTP/1.0\n", "run 1 2 3\nabc", "run x 0\n", "run 1 1 99999999999999999\n",
                             ("y"):rep(5000), wrap }) do
        print(core.unframe(bad))
      end
      print(pcall(core.frame, "k", -1, {}))
      print(pcall(core.frame, "k", 1, {}, -1))
      print(pcall(core.unframe, "x", 3))
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("end 7 7 1 0 3 19 2 4 3|00.59.2233720368548e+18-1truenil\n"
      .. "end\t7\t7\t0.5\tnil\ttrue\n"
      .. "nil\tnil\t55\n"
      .. "false\theader\nfalse\tcount\nfalse\theader\nfalse\theader\nfalse\tlong\nfalse\tcount\n"
      .. "false\tbad argument #2 to 'tide.core.frame' (negative id)\n"
      .. "false\tbad argument #4 to 'tide.core.frame' (bad count)\n"
      .. "false\tbad argument #2 to 'tide.core.unframe' (out of range)\n", r.out)
  end)
end)

describe("tide.core.frame", function()
  it("writes a float as tostring does, whole micro- and nanoseconds (its fast path) or not", function()
    local r = h.script([[
      local core = require("tide.core")
      local vals = { 1e-4, 9.9e-5, 0.00010000001, 99999.999999999, 99999.999999, 1e5, 2.0, 0.5, 0.00514846,
        0.1 + 0.2, 1 / 3, 3.0000001, 1.000000001, 12345.678901234, 0 / 0, math.huge, -0.5 }
      math.randomseed(42)
      for i = 1, 20000 do
        local k = i % 5
        vals[#vals + 1] = k == 0 and math.random(0, 10 ^ 11) / 1e6 or k == 1 and math.random(0, 10 ^ 13) / 1e9
          or k == 2 and math.random(0, 10 ^ 14) / 1e9 or k == 3 and math.random() * 10 ^ math.random(-6, 6)
          or math.random(0, 10 ^ 6) / 1e6 + math.random(0, 100)
      end
      local bad = {}
      for _, v in ipairs(vals) do
        local f = core.frame("x", 1, { v })
        if f:sub(f:find("\n", 1, true) + 1) ~= tostring(v) then
          bad[#bad + 1] = f .. " for " .. tostring(v)
        end
      end
      print(#vals, #bad, bad[1])
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("20017\t0\tnil\n", r.out)
  end)
end)

describe("the host", function()
  it("closes the Lua state on SIGTERM, so __gc runs, and exits 143", function()
    local r = h.signal_run([[
      local guard = setmetatable({}, { __gc = function()
        local f = assert(io.open("gc-ran", "w"))
        f:close()
        io.stdout:write(io.open("gc-ran") and "marker\n" or "no marker\n")
      end })
      io.open("ready", "w"):close()
      shell("sleep 10")
      print("not reached", guard)
    ]], { ready = 1, signals = { { 0.1, "TERM" } } })
    assert.are.equal(143, r.code, r.err)
    assert.are.equal("marker\n", r.out)
    assert.are.equal("", r.err)
    assert.is_true(r.secs < 3, "took " .. r.secs)
  end)
end)
