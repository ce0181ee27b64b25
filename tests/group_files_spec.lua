-- File-backed grouped output (src/proc.c, #15 item 3): a grouped stream
-- goes to an unlinked temporary file instead of a pipe (always, or with
-- file_output = "auto" while the last job's output was big), and is copied
-- to tide's output in the kernel when the job ends.  Each case runs with
-- pipes, files and the automatic choice: the bytes and the blocks must be
-- the same whichever way they went.
local h = require("tests.helper")
local q = h.quote

local ROOT = os.execute("test \"$(id -u)\" = 0 && command -v unshare >/dev/null") == true

local MODES = { "never", "auto", "always" }

-- A script that configures file_output = mode first.
local function script(mode, body)
  return ("require('tide.core').configure({ file_output = %q })\n"):format(mode) .. body
end

local function run(mode, body, args, opts)
  local r = h.script(script(mode, body), args, opts or { timeout = 60 })
  return r
end

-- What stream fd 1 of a job is: "pipe" or "file".
local WHAT = [[case $(readlink /proc/$$/fd/1) in pipe:*) echo pipe;; *deleted*) echo file;; *) echo other;; esac]]

describe("grouped output through files", function()
  for _, mode in ipairs(MODES) do
    describe("(file_output = " .. mode .. ")", function()
      it("prints exact bytes, sizes around the pipe's and past the 1 MiB kept in memory", function()
        local r = run(mode, [[
          local sizes = { 0, 1, 65535, 65536, 65537, 300000, 1048577, 2500000 }
          pool(3):map(function(i)
            local n = sizes[(i - 1) % #sizes + 1]
            shell({ "sh", "-c", "echo \\[$1]; head -c $0 /dev/zero | tr '\\0' x; echo; "
                    .. "head -c $2 /dev/zero | tr '\\0' e >&2", n, i, n // 3 })
          end, range(1, 24))
        ]])
        assert.are.equal(0, r.code, r.err)
        -- every job's block whole, once
        local sizes = { 0, 1, 65535, 65536, 65537, 300000, 1048577, 2500000 }
        local seen, total = {}, 0
        for i, xs in r.out:gmatch("%[(%d+)%]\n(x*)\n") do
          i = tonumber(i)
          assert.is_nil(seen[i])
          seen[i] = true
          assert.are.equal(sizes[(i - 1) % #sizes + 1], #xs)
          total = total + #xs + #tostring(i) + 4
        end
        assert.are.equal(#r.out, total)
        local e = 0
        for i = 1, 24 do
          assert.is_true(seen[i], i)
          e = e + sizes[(i - 1) % #sizes + 1] // 3
        end
        assert.are.equal(e, #r.err)
        assert.is_nil(r.err:find("[^e]"))
      end)

      it("prints blocks in input order with order = 'input', held ones included", function()
        local r = run(mode, [[
          pool{jobs = 3, order = "input"}:map(function(i)
            local n = ({ 300000, 10, 70000 })[i % 3 + 1]
            shell({ "sh", "-c", "sleep 0.0$1; echo \\[$1]; head -c $0 /dev/zero | tr '\\0' x; echo", n, 9 - i })
          end, range(1, 9))
        ]])
        assert.are.equal(0, r.code, r.err)
        local order = {}
        for i, xs in r.out:gmatch("%[(%d+)%]\n(x*)\n") do
          order[#order + 1] = tonumber(i)
          assert.are.equal(({ 300000, 10, 70000 })[(9 - tonumber(i)) % 3 + 1], #xs)
        end
        assert.are.same({ 8, 7, 6, 5, 4, 3, 2, 1, 0 }, order)
      end)

      it("keeps binary output exact, in capture and printed, to a file, a pipe and an appended file", function()
        local dir = h.tmpdir()
        local t = {}
        for i = 1, 400000 do
          t[i] = string.char((i * 7919 + i // 256) % 256)
        end
        local want = table.concat(t)
        h.spit(dir .. "/bin", want)
        local src = h.spit(dir .. "/s.lua", script(mode, [[
          local path = ...
          local want = io.open(path, "rb"):read("a")
          local r = pool(2):map(function() return shell({ "cat", path }, { capture = true }) end, range(1, 4))
          for _, x in ipairs(r) do assert(x.ok and x.stdout == want) end
          pool(2):map(function() shell({ "cat", path }) end, range(1, 3))
        ]]))
        local cmds = {
          ("%s %s %s > %s/out"):format(q(h.TIDE), src, dir .. "/bin", dir),
          ("%s %s %s | cat > %s/out"):format(q(h.TIDE), src, dir .. "/bin", dir),
          (": > %s/out; %s %s %s >> %s/out"):format(dir, q(h.TIDE), src, dir .. "/bin", dir),
        }
        for _, cmd in ipairs(cmds) do
          local r = h.sh(cmd)
          assert.are.equal(0, r.code, r.err)
          local f = io.open(dir .. "/out", "rb")
          local got = f:read("a")
          f:close()
          assert.is_true(got == want:rep(3), cmd .. ": " .. #got)
        end
        os.execute("rm -rf " .. q(dir))
      end)

      it("gets the output of a job that closes stdout early and runs on", function()
        local r = run(mode, [[
          shell("head -c 400000 /dev/zero | tr '\\0' a") -- big: auto uses files next
          local r = shell("echo one; exec >&-; sleep 0.2; echo two >&2", { capture = true })
          print(r.ok, r.stdout == "one\n", r.stderr == "two\n")
        ]])
        assert.are.equal(0, r.code, r.err)
        assert.are.equal(("a"):rep(400000) .. "true\ttrue\ttrue\n", r.out)
      end)

      it("ends a job whose background child keeps stdout open, without a stray byte later", function()
        local r = run(mode, [[
          local r = pool(1):map(function(i)
            if i == 1 then
              return shell("head -c 400000 /dev/zero; echo", { capture = true })
            elseif i == 2 then
              -- a writer that left the group and keeps stdout past the end
              return shell("setsid sh -c 'sleep 0.3; echo stray; sleep 0.3; echo stray' & echo one",
                           { capture = true })
            end
            return shell("sleep 0.05; echo n", { capture = true })
          end, range(1, 16))
          for i = 3, #r do assert(r[i].stdout == "n\n", r[i].stdout) end
          print(r[2].stdout:sub(1, 4))
        ]])
        assert.are.equal(0, r.code, r.err)
        assert.are.equal("one\n\n", r.out)
      end)
    end)
  end

  it("auto: a stream goes to a file after a big job, and back to a pipe after a small one", function()
    local r = run("auto", ([[
      local function what() return shell(%q, { capture = true }).stdout end
      local a = what()
      shell("head -c 300000 /dev/zero")
      local b = what() -- small: the next is a pipe again
      local c = what()
      io.stderr:write(a, b, c)
    ]]):format(WHAT), nil, { stdout = "/dev/null", timeout = 60 })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("pipe\nfile\npipe\n", r.err)
  end)

  it("auto keeps a pipe for stderr: a background child writing just after the exit is waited for", function()
    -- a drain of 10 s, not 0.1, as in shell_spec: no race with a loaded machine
    local r = run("auto", [[
      require("tide.core").configure({ drain = 10 })
      shell("head -c 300000 /dev/zero >&2; head -c 300000 /dev/zero")
      local r = shell("(sleep 0.05; echo late) & echo early", { capture = true })
      io.stderr:write(r.stdout)
    ]], nil, { stdout = "/dev/null", timeout = 60 })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("early\nlate\n", r.err:sub(-11))
  end)

  it("never: output goes through pipes", function()
    local r = run("never", ([[
      shell("head -c 300000 /dev/zero")
      io.stderr:write(shell(%q, { capture = true }).stdout)
    ]]):format(WHAT), nil, { stdout = "/dev/null", timeout = 60 })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("pipe\n", r.err)
  end)

  it("leaves keep = false, max_output and tee as they were", function()
    local dir = h.tmpdir()
    local r = run("always", ([[
      local r = shell("head -c 100000 /dev/zero | tr '\\0' x", { capture = true, max_output = 1000 })
      print(#r.stdout, r.omitted.stdout)
      pool{results = %q}:map(function() shell("echo hi") end, {1})
    ]]):format(dir .. "/res"))
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("1000\t99000\nhi\n", r.out)
    local f = io.open(dir .. "/res/1/stdout")
    assert.are.equal("hi\n", f:read("a"))
    f:close()
    os.execute("rm -rf " .. q(dir))
  end)

  it("core.configure refuses an unknown file_output", function()
    local r = h.run({ "-e", "require('tide.core').configure({ file_output = 'sometimes' })" })
    assert.are_not.equal(0, r.code)
    assert.truthy(r.err:find("file_output must be 'auto', 'always' or 'never'", 1, true), r.err)
  end)

  describe("in a spill directory that is full (a 64k tmpfs)", function()
    for _, mode in ipairs({ "auto", "always" }) do
      it("fails the job with a message, printing what was kept (file_output = " .. mode .. ")", function()
        if not ROOT then
          pending("needs root and unshare to mount a tmpfs in a mount namespace of its own")
          return
        end
        local dir = h.tmpdir()
        local src = h.spit(dir .. "/s.lua", script(mode, [[
          shell("head -c 10000 /dev/zero | tr '\\0' s") -- fits
          shell("head -c 2000000 /dev/zero | tr '\\0' w") -- auto: files next
          local r = shell("seq 1 400000", { capture = true })
          print(r.ok, r.error)
          if ... == "always" then
            -- a job that ignores its failed writes and exits 0 fails too
            r = shell("head -c 200000 /dev/zero 2>/dev/null; exit 0", { capture = true })
            io.stderr:write(("<%s %s %s>"):format(r.code, r.ok, r.error))
          end
        ]]))
        os.execute("mkdir " .. q(dir .. "/tmp"))
        local r = h.sh(("unshare -m sh -c %s"):format(q(("mount -t tmpfs -o size=64k tidefull %s && TMPDIR=%s %s %s %s")
          :format(q(dir .. "/tmp"), q(dir .. "/tmp"), q(h.TIDE), src, mode))))
        os.execute("rm -rf " .. q(dir))
        assert.are.equal(1, r.code, r.err)
        local s, w, rest = r.out:match("^(s*)(w*)(.*)$")
        assert.are.equal(10000, #s)
        assert.is_nil(r.err:find("failed %([^\n]*%): head %-c 10000"), r.err) -- it did not fail
        assert.is_true(#w <= 2000000)
        local pat = "^false\tstdout: output lost: ENOSPC: no space left on device %(spill%): '[^']*/tmp'\n$"
        assert.truthy(rest:find(pat), rest)
        if mode == "always" then
          assert.truthy(r.err:find("<0 false stdout: output lost: ENOSPC", 1, true), r.err)
        end
        if #w < 2000000 then -- the big job lost output: it failed too
          assert.truthy(r.err:find("stdout: output lost: ENOSPC", 1, true), r.err)
        end
      end)
    end
  end)
end)
