-- Fault injection: what tide does when the world misbehaves (issue #18).
-- Each case reproduces a defect found by an adversarial pass and pins the
-- documented behaviour (docs/guarantees.md): a write that fails is an
-- error the user sees, never a silent loss; nothing a job starts outlives
-- it; tide behaves as lua does with odd standard descriptors.
--
-- Full disks are small tmpfs mounts, made when running as root (as CI
-- does) and skipped with a message otherwise; strace cases need strace.
local h = require("tests.helper")
local q = h.quote

local function sh_ok(cmd)
  return os.execute(cmd .. " >/dev/null 2>&1") == true
end

local ROOT = sh_ok("test \"$(id -u)\" = 0")
local STRACE = sh_ok("command -v strace")

-- A tmpfs of size (e.g. "64k") mounted on a fresh directory; returns its
-- path and a function that unmounts and removes it.
local function full_disk(size)
  local dir = h.tmpdir()
  assert(sh_ok(("mount -t tmpfs -o size=%s tidefault %s"):format(size, q(dir))), "cannot mount a tmpfs")
  return dir, function()
    os.execute(("umount -l %s; rmdir %s"):format(q(dir), q(dir)))
  end
end

-- Runs body(dir) with a full tmpfs of size at dir, unmounted whatever
-- happens; pending without root.
local function with_full_disk(size, body)
  if not ROOT then
    pending("needs root to mount a tmpfs")
    return
  end
  local dir, unmount = full_disk(size)
  local ok, err = pcall(body, dir)
  unmount()
  if not ok then
    error(err, 0)
  end
end

-- s as a Lua pattern that matches it literally.
local function lit(s)
  return (s:gsub("%p", "%%%0"))
end

describe("standard descriptors", function()
  for fd = 0, 2 do
    it("a closed fd " .. fd .. " at start is /dev/null: tide runs as lua does", function()
      local dir = h.tmpdir()
      local redir = {
        fd == 0 and "<&-" or "</dev/null", fd == 1 and ">&-" or (">" .. dir .. "/out"),
        fd == 2 and "2>&-" or ("2>" .. dir .. "/err"),
      }
      h.spit(dir .. "/out", "")
      h.spit(dir .. "/err", "")
      local r = h.sh(("%s -e 'print(\"hello\") io.stderr:write(\"e\\n\")' %s; echo $? >%s/code")
        :format(q(h.TIDE), table.concat(redir, " "), dir))
      assert.are.equal(0, r.code)
      assert.are.equal("0\n", h.slurp(dir .. "/code"))
      assert.are.equal(fd == 1 and "" or "hello\n", h.slurp(dir .. "/out"))
      assert.are.equal(fd == 2 and "" or "e\n", h.slurp(dir .. "/err"))
      os.execute("rm -rf " .. q(dir))
    end)
  end

  it("a job still runs with fd 0, 1 and 2 closed", function()
    local dir = h.tmpdir()
    local src = [[local r = shell("echo job", {capture = true}) os.exit(r.stdout == "job\n" and 0 or 3)]]
    local r = h.sh(("%s -e " .. q(src) .. " "
      .. "<&- >&- 2>&-; echo $? >%s/code"):format(q(h.TIDE), dir))
    assert.are.equal(0, r.code)
    assert.are.equal("0\n", h.slurp(dir .. "/code"))
    os.execute("rm -rf " .. q(dir))
  end)

  it("os.execute and io.popen children keep stdin, stdout and stderr", function()
    local r = h.run({ "-e", [[print(os.execute("echo hi; echo err >&2"))
      local f = io.popen("cat; echo pop") print(f:read("a")) print(f:close())]] }, { stdin = "in\n" })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("hi\ntrue\texit\t0\nin\npop\n\ntrue\texit\t0\n", r.out)
    assert.are.equal("err\n", r.err)
  end)

  it("descriptors above 2 that tide inherited do not reach its jobs", function()
    local src = [[io.write(shell("ls /proc/self/fd", {capture = true}).stdout)]]
    local r = h.sh(("exec 7>/dev/null; %s -e " .. q(src))
      :format(q(h.TIDE)))
    assert.are.equal(0, r.code, r.err)
    assert.is_nil(r.out:find("^7\n") or r.out:find("\n7\n"), r.out)
  end)
end)

describe("setsid grandchildren", function()
  it("die when os.exit ends tide from inside a task", function()
    local m = h.mark("faultexit")
    local S = h.sleeper(m)
    for _ = 1, 5 do
      local r = h.script(([[
        pool(4):map(function(i)
          if i == 4 then shell("sleep 0.3") os.exit(0) end
          shell(%q)
        end, {1, 2, 3, 4})
      ]]):format(("setsid %s 300 & exec %s 300"):format(S, S)), nil, { timeout = 30 })
      assert.are.equal(0, r.code, r.err)
      assert.are.equal(0, h.gone(m, 0.5))
    end
  end)

  it("die soon after their job ends, while tide runs on", function()
    local m = h.mark("faultjobend")
    local S = h.sleeper(m)
    local r = h.script(([[
      local r = shell(%q)
      assert(r.ok)
      local t0 = require("tide.core").now()
      local n
      repeat
        shell("sleep 0.1")
        local p = io.popen("pgrep -fc '[t]" .. %q .. "' || true")
        n = tonumber(p:read("a")) p:close()
      until n == 0 or require("tide.core").now() - t0 > 3
      print(n)
    ]]):format(("setsid %s 300 & true"):format(S), m:sub(2)))
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("0\n", r.out)
    assert.are.equal(0, h.gone(m, 0.5))
  end)

  it("of a job still running are left alone", function()
    local m = h.mark("faultkeep")
    local S = h.sleeper(m)
    local r = h.script(([[
      pool(2):map(function(i)
        if i == 1 then
          shell(%q)
        else
          shell("sleep 0.1") -- ends first, while the other job runs on
          shell("sleep 0.8")
          local p = io.popen("pgrep -fc '[t]" .. %q .. "' || true")
          print(tonumber(p:read("a"))) p:close()
        end
      end, {1, 2})
    ]]):format(("setsid %s 300 & sleep 1.5"):format(S), m:sub(2)))
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("2\n", r.out) -- the job's sh, whose command line names it, and the sleep
    assert.are.equal(0, h.gone(m, 1))
  end)

  it("die on Ctrl-C", function()
    local m = h.mark("faultint")
    local S = h.sleeper(m)
    local r = h.signal_run(([[
      pool(2):map(function(i) shell(%q .. i) end, {1, 2})
    ]]):format(("setsid %s 300 & touch ready."):format(S) .. "; sleep 100 #"),
      { ready = 2, signals = { { 0.1, "INT" } } })
    assert.are.equal(130, r.code, r.err)
    assert.are.equal(0, h.gone(m, 1))
  end)
end)

describe("a spill that fails", function()
  local SEQ = 'shell("seq 1 400000")' -- 2688895 bytes: past the 1 MiB in memory

  it("with TMPDIR unusable (/proc) fails the job, names the spill and exits 1", function()
    local r = h.run({ "-e", SEQ }, { env = { TMPDIR = "/proc" } })
    assert.are.equal(1, r.code)
    assert.truthy(r.err:find("seq 1 400000: stdout: output lost: %u+: .* %(spill%): '/proc'"), r.err)
  end)

  it("in capture mode gives ok = false and r.error, never ok with a cut stdout", function()
    local r = h.run({ "-e", [[local r = shell("seq 1 400000", {capture = true})
      print(r.ok, #r.stdout < 2688895, r.error)]] }, { env = { TMPDIR = "/proc" } })
    assert.are.equal(1, r.code)
    assert.truthy(r.out:find("^false\ttrue\tstdout: output lost: .*%(spill%): '/proc'\n"), r.out)
  end)

  it("on a full tmpfs loses nothing silently: whole output or a failed job", function()
    with_full_disk("2m", function(dir)
      local r = h.run({ "-e", SEQ }, { env = { TMPDIR = dir } })
      assert.are.equal(1, r.code)
      assert.truthy(r.err:find("output lost: ENOSPC: no space left on device %(spill%): '" .. lit(dir) .. "'"), r.err)
      -- what was printed is the start of the output, with no gap in the middle
      local want = {}
      for i = 1, 400000 do
        want[i] = i
      end
      want = table.concat(want, "\n") .. "\n"
      assert.is_true(#r.out < #want)
      assert.is_true(r.out == want:sub(1, #r.out), "a gap in the printed output")
    end)
  end)
end)

describe("a results directory on a full disk", function()
  it("is an error naming the file, exit nonzero", function()
    with_full_disk("64k", function(dir)
      local r = h.run({ "-e", ([[pool{results = %q}:map(function(i) return shell("seq 1 40000") end, {1, 2})]])
        :format(dir .. "/res") })
      assert.are_not.equal(0, r.code)
      assert.truthy(r.err:find("results: cannot write " .. lit(dir) .. "/res/[^:]*: No space left on device"), r.err)
    end)
  end)
end)

describe("NUL bytes", function()
  for _, case in ipairs({
    { 'shell{"printf", "[%s]\\n", "a\\0b"}', "bad argument #1 to 'shell' %(argv%[3%] contains a NUL byte%)" },
    { 'shell("echo a\\0b")', "bad argument #1 to 'shell' %(command contains a NUL byte%)" },
    { 'shell("pwd", {cwd = "/tmp\\0/x"})', "bad argument #2 to 'shell' %(option 'cwd' contains a NUL byte%)" },
    { 'shell("env", {env = {X = "a\\0b"}})', "bad argument #2 to 'shell' %(env.X contains a NUL byte%)" },
  }) do
    it("are a misuse error, not cut silently: " .. case[1], function()
      local r = h.run({ "-e", case[1] })
      assert.are.equal(2, r.code, r.out)
      assert.are.equal("", r.out)
      assert.truthy(r.err:find(case[2]), r.err)
    end)
  end
end)

-- A sweep of n items, each a job that prints its number, with options
-- opts (Lua source of a table's fields).
local function sweep(n, opts)
  return ([[
    local list = {}
    for i = 1, %d do list[i] = i end
    pool{jobs = 4, %s}:map(function(i) return shell("echo " .. i, {output = "null"}) end, list)
  ]]):format(n, opts)
end

describe("the job log", function()
  it("on a full disk is an error naming the file, exit nonzero, never a silent stop", function()
    with_full_disk("64k", function(dir)
      local jl = dir .. "/jl"
      local r = h.script(sweep(2000, ("joblog = %q"):format(jl)))
      assert.are_not.equal(0, r.code)
      assert.truthy(r.err:find("joblog: cannot write " .. lit(jl) .. ": No space left on device"), r.err)
    end)
  end)

  it("ignores a torn last line on resume and starts the next line afresh", function()
    local dir = h.tmpdir()
    local jl, ran = dir .. "/jl", dir .. "/ran"
    local src = ([[pool{jobs = 1, joblog = %q, resume = true}:map(function(i)
      return shell("echo " .. i .. " >> %s")
    end, {1, 2, 3})]]):format(jl, ran)
    assert.are.equal(0, h.script(src).code)
    local text = h.slurp(jl)
    -- tide killed while writing item 3's line: cut in the middle of its command
    h.spit(jl, text:sub(1, #text - 8))
    for _ = 1, 3 do
      local r = h.script(src)
      assert.are.equal(0, r.code, r.err)
    end
    assert.are.equal("1\n2\n3\n3\n", h.slurp(ran)) -- item 3 once more, then never again
    local lines = 0
    for l in io.lines(jl) do
      lines = lines + 1
      assert.truthy(select(9, l:match(("([^\t]*)\t"):rep(8) .. "(.*)")) or l:find("\t#torn$"), l)
    end
    assert.are.equal(5, lines) -- header, 1, 2, the torn 3, 3
    os.execute("rm -rf " .. q(dir))
  end)

  it("keys resume on env values without collisions ('a b', 'a\\nb', 'a\\tb')", function()
    local dir = h.tmpdir()
    local jl = dir .. "/jl"
    local src = ([[local rs = pool{jobs = 1, joblog = %q, resume = true}:map(function(v)
      return shell("printf '%%s|' \"$V\"", {env = {V = v}})
    end, {"a b", "a\nb", "a\tb"})
    for _, r in ipairs(rs) do io.write(tostring(r.resumed), " ") end]]):format(jl)
    local r = h.script(src)
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("a b|a\nb|a\tb|nil nil nil ", r.out)
    r = h.script(src)
    assert.are.equal("true true true ", r.out)
    os.execute("rm -rf " .. q(dir))
  end)

  it("named two ways ('jl' and './jl') is one file: every line kept, no NUL bytes", function()
    local dir = h.tmpdir()
    local r = h.script([[
      local a = pool{jobs = 4, joblog = "jl"}
      local b = pool{jobs = 4, joblog = "./jl"}
      local list = {}
      for i = 1, 100 do list[i] = i end
      a:map(function(i) shell("echo a" .. i, {output = "null"}) b:map(function(j)
        shell("echo b" .. i .. "." .. j, {output = "null"}) end, {1}) end, list)
    ]], nil, { cwd = dir })
    assert.are.equal(0, r.code, r.err)
    local text = h.slurp(dir .. "/jl")
    assert.is_nil(text:find("\0", 1, true))
    local n = 0
    for _ in text:gmatch("\n") do
      n = n + 1
    end
    assert.are.equal(201, n)
    os.execute("rm -rf " .. q(dir))
  end)
end)

describe("item records", function()
  it("on a full disk are an error naming the file, exit nonzero", function()
    with_full_disk("64k", function(dir)
      local rec = dir .. "/rec"
      local r = h.script(sweep(3000, ("record = %q"):format(rec)))
      assert.are_not.equal(0, r.code)
      assert.truthy(r.err:find("record: cannot write " .. lit(rec) .. ": No space left on device"), r.err)
    end)
  end)

  it("and results directories named two ways are one file each", function()
    local dir = h.tmpdir()
    local r = h.script([[
      for _, names in ipairs({{"rec", "res"}, {"./rec", "./res/"}}) do
        pool{jobs = 2, record = names[1], results = names[2]}:map(function(i)
          return shell("echo " .. i)
        end, {1, 2, 3})
      end
    ]], nil, { cwd = dir })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(6, #h.file_lines(dir .. "/rec"))
    assert.are.equal(6, #h.file_lines(dir .. "/res/results.jsonl"))
    os.execute("rm -rf " .. q(dir))
  end)
end)

describe("strace fault injection", function()
  it("a failed write(2) of the job log is an error, not a silent loss", function()
    if not STRACE then
      pending("needs strace")
      return
    end
    local dir = h.tmpdir()
    local r = h.sh(("cd %s && strace -f -qq -o /dev/null -e trace=write -e inject=write:error=ENOSPC:when=3 "
      .. "%s -e 'pool{jobs = 1, joblog = \"jl\"}:map(function(i) shell(\"true\", {output = \"null\"}) end, {1, 2, 3})'")
      :format(q(dir), q(h.TIDE)))
    assert.are_not.equal(0, r.code)
    assert.truthy(r.err:find("joblog: cannot write jl: No space left on device"), r.err)
    os.execute("rm -rf " .. q(dir))
  end)

  it("a kill in the middle of a long log line: resume runs that job once more, no other", function()
    if not STRACE then
      pending("needs strace")
      return
    end
    local dir = h.tmpdir()
    local long = ("x"):rep(10000) -- a line over 4 KiB: still one write(2)
    local src = h.spit(dir .. "/s.lua", ([[
      pool{jobs = 1, joblog = "jl", resume = true}:map(function(i)
        return shell("echo " .. i .. " >> ran; : %s", {output = "null"})
      end, {1, 2, 3})]]):format(long))
    -- tide's 4th write(2): the wake-up byte, the header, item 1's line, then
    -- item 2's line is never written
    h.sh(("cd %s && strace -f -qq -o /dev/null -e trace=write -e inject=write:signal=SIGKILL:when=4 %s %s")
      :format(q(dir), q(h.TIDE), q(src)))
    local r = h.run({ src }, { cwd = dir })
    assert.are.equal(0, r.code, r.err)
    local ran = {}
    for l in io.lines(dir .. "/ran") do
      ran[#ran + 1] = l
    end
    assert.are.equal(4, #ran) -- the item whose line was lost ran twice
    local seen = {}
    for _, v in ipairs(ran) do
      seen[v] = true
    end
    assert.is_true(seen["1"] and seen["2"] and seen["3"], table.concat(ran, " "))
    for l in io.lines(dir .. "/jl") do
      assert.truthy(l:find("^Seq") or #l > 10000, #l)
    end
    os.execute("rm -rf " .. q(dir))
  end)
end)

describe("ungroup into a closed pipe", function()
  it("stops starting jobs once the reader has gone and ends as SIGPIPE (141)", function()
    local dir = h.tmpdir()
    local r = h.pipe_head(([[
      local l = {}
      for i = 1, 300 do l[i] = i end
      pool{jobs = 2, output = "ungroup"}:map(function(i)
        shell("echo started >> %s/n; echo " .. i .. "; sleep 0.01")
      end, l)
    ]]):format(dir), 1)
    assert.are.equal(141, r.code, r.err)
    assert.truthy(r.out:find("^%d+\n$"), r.out) -- whichever of the first two jobs printed first
    local n = 0
    for _ in io.lines(dir .. "/n") do
      n = n + 1
    end
    assert.is_true(n < 20, n .. " jobs started after head exited")
    os.execute("rm -rf " .. q(dir))
  end)
end)

describe("private directories", function()
  local function make(base)
    return h.run({ "-e", ([[math.randomseed(1)
      local d = require("tide.backend.private").make(%q, "tide-t-", "test files")
      local m = io.popen("stat -c %%a " .. d) io.write(m:read("a"), d, "\n") m:close() os.remove(d)]]):format(base) })
  end

  it("are new, 0700 and unpredictable even after math.randomseed", function()
    local a, b = make("/tmp"), make("/tmp")
    assert.are.equal(0, a.code, a.err)
    assert.truthy(a.out:find("^700\n/tmp/tide%-t%-"), a.out)
    assert.are_not.equal(a.out, b.out)
  end)

  it("are refused under a directory of another user, or one others may write to", function()
    if not ROOT then
      pending("needs root to give a directory away")
      return
    end
    local dir = h.tmpdir()
    os.execute(("mkdir %s/other %s/open && chown nobody %s/other && chmod 777 %s/open && ln -s other %s/link")
      :format(dir, dir, dir, dir, dir))
    for _, case in ipairs({ { "other", "it belongs to another user" }, { "link", "it belongs to another user" },
      { "open", "others may write to it" } }) do
      local r = make(dir .. "/" .. case[1])
      assert.are.equal(2, r.code, r.out)
      local want = "will not keep test files in " .. lit(dir .. "/" .. case[1]) .. ": " .. case[2]
      assert.truthy(r.err:find(want), r.err)
    end
    os.execute("rm -rf " .. q(dir))
  end)

  it("remote status files are created with O_EXCL|O_NOFOLLOW: a planted symlink is not followed", function()
    local dir = h.tmpdir()
    os.execute(("ln -s %s/target %s/st"):format(dir, dir))
    -- the far-end wrapper as ssh and srun run it, here run locally: a job killed by a signal writes its status
    local r = h.run({ "-e", ([[local w = require("tide.backend.remote").words("kill -9 $$", nil, %q, 1)
      io.write(tostring(shell(w, {capture = true}).code))]]):format(dir .. "/st") })
    assert.are.equal("255", r.out, r.err)
    assert.is_nil(io.open(dir .. "/target"))
    os.execute("rm -rf " .. q(dir))
  end)

  it("remote status names come from the kernel, not math.random", function()
    local r = h.run({ "-e", [[local remote = require("tide.backend.remote")
      math.randomseed(7) local a = remote.status_name() math.randomseed(7) print(a ~= remote.status_name(), a)]] })
    assert.truthy(r.out:find("^true\tTMP/tide%-%x+%-1%.status\n"), r.out)
  end)
end)
