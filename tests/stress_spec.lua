-- Many jobs at once: every byte accounted for, no crash, no hang.
local h = require("tests.helper")

describe("stress", function()
  it("runs 500 jobs at pool(64), every job's output whole and contiguous", function()
    -- job i prints 40 lines "i:k:" + 100 copies of a letter derived from i
    -- on stdout, and 10 lines on stderr, pausing halfway
    local r = h.script([[
      local list = {}
      for i = 1, 500 do list[i] = i end
      local script = [=[
        i=$1; c=$2; pad=$(printf "%0100d" 0 | tr 0 "$c")
        k=1; while [ $k -le 40 ]; do
          echo "$i:$k:$pad"
          if [ $k -le 10 ]; then echo "e$i:$k" >&2; fi
          if [ $k = 20 ]; then sleep 0.01; fi
          k=$((k + 1))
        done
      ]=]
      local res = pool(64):map(function(i)
        local c = string.char(97 + i % 26)
        return shell({ "sh", "-c", script, "sh", tostring(i), c }).ok
      end, list)
      local ok = 0
      for i = 1, res.n do if res[i] then ok = ok + 1 end end
      io.stderr:write("ok=" .. ok .. "\n")
    ]], {}, { timeout = 120 })
    assert.are.equal(0, r.code, r.err:sub(1, 2000))
    assert.truthy(r.err:find("ok=500\n$"), r.err:sub(-200))

    -- stdout: 500 blocks of 40 lines, each exactly as expected
    local expected_line_len = 0
    local pos, seen = 1, {}
    while pos <= #r.out do
      local i = r.out:match("^(%d+):1:", pos)
      assert.truthy(i, "block does not start at line 1 at byte " .. pos)
      i = tonumber(i)
      assert.is_nil(seen[i], "job " .. i .. " printed twice")
      seen[i] = true
      local pad = string.char(97 + i % 26):rep(100)
      local lines = {}
      for k = 1, 40 do lines[k] = ("%d:%d:%s\n"):format(i, k, pad) end
      local block = table.concat(lines)
      expected_line_len = expected_line_len + #block
      assert.are.equal(block, r.out:sub(pos, pos + #block - 1), "job " .. i .. " block broken")
      pos = pos + #block
    end
    for i = 1, 500 do assert.is_true(seen[i], "job " .. i .. " missing") end
    assert.are.equal(expected_line_len, #r.out)

    -- stderr: 500 blocks of 10 lines, then the count line
    local err = r.err:gsub("ok=500\n$", "")
    local n, eseen = 0, {}
    pos = 1
    while pos <= #err do
      local i = tonumber(err:match("^e(%d+):1\n", pos))
      assert.truthy(i, "stderr block broken at byte " .. pos)
      assert.is_nil(eseen[i])
      eseen[i] = true
      local lines = {}
      for k = 1, 10 do lines[k] = ("e%d:%d\n"):format(i, k) end
      local block = table.concat(lines)
      assert.are.equal(block, err:sub(pos, pos + #block - 1))
      pos = pos + #block
      n = n + 1
    end
    assert.are.equal(500, n)
  end)

  it("keeps 16 concurrent multi-MiB outputs apart and exact", function()
    local r = h.script([[
      local list = {}
      for i = 1, 16 do list[i] = i end
      local res = pool(16):map(function(i)
        -- 3 MiB of the letter for i, written in pieces with pauses
        local c = string.char(64 + i)
        local r = shell(("head -c 1048576 /dev/zero | tr '\\0' %s; sleep 0.05; "
          .. "head -c 2097152 /dev/zero | tr '\\0' %s"):format(c, c), { capture = true })
        return #r.stdout == 3145728 and not r.stdout:find("[^" .. c .. "]")
      end, list)
      local good = 0
      for i = 1, res.n do if res[i] then good = good + 1 end end
      print(good)
    ]], {}, { timeout = 120 })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("16\n", r.out)
  end)

  it("runs 300 jobs at pool(200) under ulimit -n 64: all finish, no crash, no hang", function()
    local r = h.script([[
      local list = {}
      for i = 1, 300 do list[i] = i end
      local res = pool(200):map(function(i)
        local r = shell("true", { capture = i % 2 == 0 })
        if not r.ok then io.stderr:write("job ", i, " failed: ", tostring(r.stderr), "\n") end
        return r.ok
      end, list)
      local ok = 0
      for i = 1, res.n do if res[i] then ok = ok + 1 end end
      print(res.n, ok)
    ]], {}, { sh = "ulimit -n 64;", timeout = 60 })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("300\t300\n", r.out)
    assert.is_true(r.secs < 30, "slow: " .. r.secs)
  end)

  for _, nofile in ipairs({ 6, 9, 13 }) do
    it("fails clearly, without crashing or hanging, with only " .. nofile .. " descriptors", function()
      local r = h.script([[
        local r = shell("echo hi", { capture = true })
        print(r.ok, r.code, r.stdout)
        io.stderr:write("captured: ", r.stderr, "error: ", tostring(r.error), "\n")
      ]], {}, { wrap = ("prlimit --nofile=%d:%d"):format(nofile, nofile), timeout = 30 })
      assert.is_true(r.code == 0 or r.code == 1 or r.code == 2, "crashed: " .. tostring(r.code) .. r.err)
      if r.code == 0 then
        assert.are.equal("true\t0\thi\n\n", r.out)
      else
        assert.truthy(r.err:find("tide: [^\n]*%a", 1), r.err)
      end
      if r.code == 1 then -- exit 1 means the script ran and a job failed
        assert.truthy(r.out:find("^false\t"), "exit 1 but the script did not run; stderr: " .. r.err)
        assert.truthy(r.err:find("error: [^\n]*%a", 1), r.err)
        assert.falsy(r.err:find("error: nil", 1, true), r.err)
      end
    end)
  end

  it("runs 2000 short jobs at pool(32)", function()
    local r = h.script([[
      local n, k = 0, 0
      local function items()
        if k < 2000 then k = k + 1; return k end
      end
      local res = pool(32):map(function(i)
        local r = shell({ "echo", i }, { capture = true })
        if r.stdout == i .. "\n" then n = n + 1 end
        return r.ok
      end, items)
      print(res.n, n)
    ]], {}, { timeout = 120 })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("2000\t2000\n", r.out)
  end)
end)
