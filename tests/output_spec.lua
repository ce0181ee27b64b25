-- Job output: grouped per job, complete, binary-safe, bounded in memory.
local h = require("tests.helper")

-- Deterministic binary data using all 256 byte values: len bytes.
local function pattern(len)
  local block = {}
  local parts, size, i = {}, 0, 0
  while size < len do
    for b = 0, 255 do
      block[b + 1] = (b * 7 + i) % 256
    end
    local s = string.char(table.unpack(block))
    parts[#parts + 1] = s
    size = size + #s
    i = i + 1
  end
  return table.concat(parts):sub(1, len)
end

local lines = h.lines

-- Asserts that the lines tagged "<job>:<k>" come as one contiguous block of
-- 1..count per job, for jobs 1..njobs.
local function assert_blocks(text, njobs, count)
  local seen, prev = {}, nil
  local ls = lines(text)
  assert.are.equal(njobs * count, #ls, text)
  for idx, l in ipairs(ls) do
    local job, k = l:match("^(%d+):(%d+)$")
    assert.truthy(job, l)
    job, k = tonumber(job), tonumber(k)
    if k == 1 then
      assert.is_nil(seen[job], "job " .. job .. " printed twice")
      seen[job] = true
    else
      assert.are.equal(job .. ":" .. (k - 1), ls[idx - 1], "interleaved output:\n" .. text)
    end
    prev = l
  end
  assert.truthy(prev)
  for j = 1, njobs do
    assert.is_true(seen[j], "job " .. j .. " missing")
  end
end

describe("job output", function()
  it("goes to tide's stdout and stderr respectively", function()
    local r = h.script([[shell("echo to-out; echo to-err >&2")]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("to-out\n", r.out)
    assert.are.equal("to-err\n", r.err)
  end)

  it("comes as one block per job, never interleaved, on both streams", function()
    local r = h.script([[
      pool(4):map(function(j)
        shell(("for k in 1 2 3 4 5; do echo %d:$k; echo %d:$k >&2; sleep 0.05; done"):format(j, j))
      end, { 1, 2, 3, 4, 5, 6 })
    ]])
    assert.are.equal(0, r.code, r.err)
    assert_blocks(r.out, 6, 5)
    assert_blocks(r.err, 6, 5)
  end)

  it("comes after what the script printed before the job and before what it prints after", function()
    local r = h.script([[
      io.write("before\n")
      print("print before")
      shell("echo job")
      io.write("after\n")
      pool(2):map(function(i) shell("echo job" .. i) end, { 1 })
      print("end")
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("before\nprint before\njob\nafter\njob1\nend\n", r.out)
  end)

  it("is printed even when the job is killed by a signal", function()
    local r = h.script([[
      local r = shell("echo partial; echo partial-err >&2; kill -9 $$")
      print(r.signal)
    ]])
    assert.are.equal(1, r.code)
    assert.are.equal("partial\nSIGKILL\n", r.out)
    assert.truthy(r.err:find("^partial%-err\n"), r.err)
  end)

  it("is nothing at all for a silent job", function()
    local r = h.script([[shell("true"); shell({ "true" })]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("", r.out)
    assert.are.equal("", r.err)
  end)

  it("keeps every byte of binary output past the 1 MiB memory bound", function()
    local dir = h.tmpdir()
    local data = pattern(3 * 1024 * 1024 + 17)
    h.spit(dir .. "/bin", data)
    local r = h.script([[
      local dir = ...
      local c = shell({ "cat", dir .. "/bin" }, { capture = true })
      local f = io.open(dir .. "/captured", "wb")
      f:write(c.stdout)
      f:close()
      shell({ "cat", dir .. "/bin" })
      shell({ "sh", "-c", "cat \"$1\" >&2", "sh", dir .. "/bin" })
    ]], { dir }, { timeout = 60 })
    local captured = h.slurp(dir .. "/captured")
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(0, r.code)
    assert.are.equal(#data, #captured)
    assert.is_true(captured == data, "captured bytes differ")
    assert.are.equal(#data, #r.out)
    assert.is_true(r.out == data, "passed-through stdout bytes differ")
    assert.are.equal(#data, #r.err)
    assert.is_true(r.err == data, "passed-through stderr bytes differ")
  end)

  it("reads 10 MB on each stream at once without blocking the job", function()
    local r = h.script([[
      local r = shell("head -c 10000000 /dev/zero; head -c 10000000 /dev/zero >&2; echo done",
        { capture = true })
      local zeros = ("\0"):rep(10000000)
      print(r.ok, #r.stdout, #r.stderr, r.stdout == zeros .. "done\n", r.stderr == zeros)
    ]], {}, { timeout = 60 })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("true\t10000005\t10000000\ttrue\ttrue\n", r.out)
    assert.is_true(r.secs < 20, "slow: " .. r.secs)
  end)

  it("passes 10 MB of a job's stdout through exactly", function()
    local r = h.script([[shell("head -c 10000000 /dev/zero | tr '\\0' x")]], {}, { timeout = 60 })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(10000000, #r.out)
    assert.is_nil(r.out:find("[^x]"))
  end)

  it("keeps tide's memory bounded while a job prints 64 MiB", function()
    local r = h.script(h.HWM .. [[
      local before = hwm()
      local r = shell("head -c 67108864 /dev/zero")
      io.stderr:write(("%s %d %d\n"):format(tostring(r.ok), before, hwm()))
    ]], {}, { stdout = "/dev/null", timeout = 60 })
    assert.are.equal(0, r.code, r.err)
    local ok, before, after = r.err:match("^(%a+) (%d+) (%d+)\n$")
    assert.are.equal("true", ok, r.err)
    local grew = (tonumber(after) - tonumber(before)) / 1024
    assert.is_true(grew < 16, ("peak RSS grew by %.1f MiB"):format(grew))
  end)

  it("spills to an unlinked file in TMPDIR, leaving nothing behind", function()
    local tmp = h.tmpdir()
    local r = h.script([[
      local res = pool(2):map(function(i)
        if i == 1 then
          return shell("head -c 3000000 /dev/zero; sleep 0.6", { capture = true })
        end
        shell("sleep 0.3")
        -- the first job's output is spilled by now: tide ($PPID) holds it open
        return shell("ls -l /proc/$PPID/fd", { capture = true })
      end, { 1, 2 })
      print(#res[1].stdout)
      io.write(res[2].stdout)
    ]], {}, { env = { TMPDIR = tmp }, timeout = 30 })
    local p = io.popen("ls -A " .. h.quote(tmp))
    local left = p:read("a")
    p:close()
    os.execute("rm -rf " .. h.quote(tmp))
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("^3000000\n"), r.out)
    assert.truthy(r.out:find(tmp:gsub("%p", "%%%0") .. "/[^\n]*%(deleted%)"), r.out)
    assert.are.equal("", left)
  end)

  describe("when tide's stdout is closed early (tide x.lua | head -1)", function()
    it("ends quietly and promptly when the script prints a lot", function()
      local r = h.pipe_head([[for i = 1, 5000000 do print("line", i) end]], 1)
      assert.are.equal("line\t1\n", r.out)
      assert.are.equal(141, r.code)
      assert.are.equal("", r.err)
      assert.is_true(r.secs < 5, "slow: " .. r.secs)
    end)

    it("ends quietly and promptly when jobs print a lot, killing running jobs", function()
      local S = h.sleeper()
      local r = h.pipe_head(([[
        local S = %q
        pool(4):map(function(i)
          if i <= 3 then shell({ S, "100" }) else shell("seq 1 200000") end
        end, { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 })
      ]]):format(S), 1)
      assert.are.equal("1\n", r.out)
      assert.are.equal(141, r.code)
      assert.are.equal("", r.err)
      assert.is_true(r.secs < 5, "slow: " .. r.secs)
      assert.are.equal(0, h.gone(h.MARK))
    end)

    it("stops the script when it writes with io.stdout:write, as lua does", function()
      local dir = h.tmpdir()
      local r = h.pipe_head(([[
        for i = 1, 1000000 do io.stdout:write("line ", i, "\n") end
        io.open(%q, "w"):close()
      ]]):format(dir .. "/reached-the-end"), 1)
      local f = io.open(dir .. "/reached-the-end")
      if f then f:close() end
      os.execute("rm -rf " .. h.quote(dir))
      assert.are.equal("line 1\n", r.out)
      assert.are.equal("", r.err)
      assert.is_nil(f, "the script kept running after its stdout was closed")
    end)
  end)
end)
