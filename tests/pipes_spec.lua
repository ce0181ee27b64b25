-- The per-job path of src/proc.c (#15 item 2): pipes in tide's own epoll
-- set, reused once they reach EOF, and the exit inferred from the end of
-- the output (a pidfd only when that cannot tell).
local h = require("tests.helper")

local function out_of(src, args, code)
  local r = h.script(src, args, { timeout = 60 })
  assert.are.equal(code or 0, r.code, r.err)
  return r.out
end

describe("a job's pipes", function()
  it("carry exact bytes through reused pipes, sizes around the pipe's", function()
    local out = out_of([[
      local sizes = { 0, 1, 4095, 65535, 65536, 65537, 200000, 1048577 }
      local r = pool(4):map(function(i)
        local n = sizes[(i - 1) % #sizes + 1]
        return shell({ "sh", "-c", "head -c $0 /dev/zero; head -c $1 /dev/zero >&2", n, n // 2 },
                     { capture = true })
      end, range(1, 200))
      for i, x in ipairs(r) do
        local n = sizes[(i - 1) % #sizes + 1]
        assert(x.ok and #x.stdout == n and #x.stderr == n // 2, i)
      end
      print("ok")
    ]])
    assert.are.equal("ok\n", out)
  end)

  it("carry binary output unchanged", function()
    local dir = h.tmpdir()
    local f = io.open(dir .. "/bin", "wb")
    local t = {}
    for i = 1, 300000 do t[i] = string.char((i * 7919) % 256) end
    f:write(table.concat(t))
    f:close()
    local out = out_of([[
      local path = ...
      local want = io.open(path, "rb"):read("a")
      local r = pool(2):map(function() return shell({ "cat", path }, { capture = true }) end, range(1, 6))
      for _, x in ipairs(r) do assert(x.stdout == want) end
      print("ok")
    ]], { dir .. "/bin" })
    assert.are.equal("ok\n", out)
  end)

  it("of a job that closes them and runs on: its exit is still waited for", function()
    local out = out_of([[
      local r = shell("echo before; exec >&- 2>&-; sleep 0.3; exit 3", { capture = true })
      print(r.code, r.stdout == "before\n", r.elapsed >= 0.3)
    ]], {}, 1)
    assert.are.equal("3\ttrue\ttrue\n", out)
  end)

  it("give the exit status and signal of jobs whose exit is inferred", function()
    local out = out_of([[
      local r = pool(2):map(function(i)
        if i % 2 == 0 then return shell("kill -9 $$", { capture = true }) end
        return shell({ "sh", "-c", "exit $0", i })
      end, range(1, 40))
      for i, x in ipairs(r) do
        if i % 2 == 0 then assert(x.signal == "SIGKILL", i) else assert(x.code == i % 256, i) end
      end
      print("ok")
    ]], {}, 1) -- failed jobs: tide exits 1
    assert.are.equal("ok\n", out)
  end)

  it("closed with a writer still there are not reused: no stray bytes in a later job", function()
    local out = out_of([[
      local r = pool(1):map(function(i)
        if i == 1 then
          -- a writer that left the group and keeps stdout past the drain bound
          return shell("setsid sh -c 'sleep 0.3; echo stray; sleep 0.3; echo stray' & echo one",
                       { capture = true })
        end
        return shell("sleep 0.05; echo n", { capture = true })
      end, range(1, 16))
      for i = 2, #r do assert(r[i].stdout == "n\n", r[i].stdout) end
      print(r[1].stdout:sub(1, 4))
    ]])
    assert.are.equal("one\n\n", out)
  end)
end)
