-- shell(cmd [, opts]): how jobs start, their result table and options.
local h = require("tests.helper")
local summary = require("tests.summary")

-- Runs src and returns its stdout, asserting exit status `code` (default 0).
local function out_of(src, args, code)
  local r = h.script(src, args, { timeout = 60 })
  assert.are.equal(code or 0, r.code, r.err)
  return r.out, r.err
end

-- Same, with extra variables in tide's own environment.
local function env_out_of(env, src)
  local r = h.script(src, {}, { env = env })
  assert.are.equal(0, r.code, r.err)
  return r.out
end

describe("shell", function()
  it("runs a string through /bin/sh", function()
    local out = out_of([[
      local r = shell("echo one two | tr o 0 > /dev/stdout; x=5; echo $((x * 2)) 2>&1")
      print(r.ok, r.code)
    ]])
    assert.are.equal("0ne tw0\n10\ntrue\t0\n", out)
  end)

  it("runs an argv table directly, with no shell interpretation", function()
    local out = out_of([[
      local r = shell({ "printf", "[%s]\n", "$HOME", "a b", "*", "'q'", "x;y" })
      print(r.ok)
    ]])
    assert.are.equal("[$HOME]\n[a b]\n[*]\n['q']\n[x;y]\ntrue\n", out)
  end)

  it("accepts numbers in an argv table", function()
    local out = out_of([[shell({ "echo", 1, 2.5 })]])
    assert.are.equal("1 2.5\n", out)
  end)

  it("fills the result table: ok, code, signal, cmd, pid, elapsed", function()
    local out = out_of([[
      local r = shell("sleep 0.2")
      print(r.ok, r.code, r.signal, r.cmd, math.type(r.pid), r.pid > 1, math.type(r.elapsed))
      print(r.elapsed >= 0.15 and r.elapsed < 3)
      r = shell("exit 3")
      print(r.ok, r.code, r.signal, r.cmd)
    ]], {}, 1)
    assert.are.equal("true\t0\tnil\tsleep 0.2\tinteger\ttrue\tfloat\ntrue\n"
      .. "false\t3\tnil\texit 3\n", out)
  end)

  it("reports a job killed by a signal with code nil and the signal's name", function()
    local out = out_of([[
      local r = shell("kill -9 $$")
      print(r.ok, r.code, r.signal)
      r = shell("kill -TERM $$")
      print(r.ok, r.code, r.signal)
      r = shell({ "sh", "-c", "kill -USR1 $$" })
      print(r.ok, r.code, r.signal)
    ]], {}, 1)
    assert.are.equal("false\tnil\tSIGKILL\nfalse\tnil\tSIGTERM\nfalse\tnil\tSIGUSR1\n", out)
  end)

  it("sets cmd for an argv table to a shell-quoted join that sh runs the same", function()
    local out = out_of([[
      local argv = { "printf", "%s|", "a b", "it's", "", "$x", "plain" }
      local r = shell(argv, { capture = true })
      print(r.cmd)
      local again = shell(r.cmd, { capture = true })
      print(r.stdout == again.stdout, r.stdout)
    ]])
    assert.are.equal([[printf '%s|' 'a b' 'it'\''s' '' '$x' plain]] .. "\ntrue\ta b|it's||$x|plain|\n", out)
  end)

  it("captures stdout and stderr with capture = true, printing nothing", function()
    local out, err = out_of([[
      local r = shell("echo out1; echo err1 >&2; echo out2", { capture = true })
      io.stderr:write(("[%s][%s]"):format(r.stdout, r.stderr))
    ]])
    assert.are.equal("", out)
    assert.are.equal("[out1\nout2\n][err1\n]", err)
  end)

  it("has no stdout or stderr fields without capture", function()
    local out = out_of([[
      local r = shell("echo shown")
      print(r.stdout, r.stderr)
    ]])
    assert.are.equal("shown\nnil\tnil\n", out)
  end)

  it("adds env variables, removes those set to false, keeps the rest", function()
    local out = env_out_of({ TIDE_KEPT = "kept", TIDE_GONE = "inherited" }, [[
      local r = shell("echo \"$TIDE_A|$TIDE_B|${TIDE_GONE-unset}|$TIDE_KEPT\"",
        { env = { TIDE_A = "x y", TIDE_B = 42, TIDE_GONE = false }, capture = true })
      io.write(r.stdout)
      r = shell({ "printenv", "TIDE_A" }, { env = { TIDE_A = "argv too" }, capture = true })
      io.write(r.stdout)
    ]])
    assert.are.equal("x y|42|unset|kept\nargv too\n", out)
  end)

  it("does not leak one job's env into the next", function()
    local r = h.script([[
      shell("true", { env = { TIDE_LEAK = "yes" } })
      io.write(shell("echo ${TIDE_LEAK-none}", { capture = true }).stdout)
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("none\n", r.out)
  end)

  it("runs in cwd, for sh commands, direct commands and relative program paths", function()
    local dir = h.tmpdir()
    h.spit(dir .. "/prog", "#!/bin/sh\necho prog ran in \"$(pwd -P)\"\n")
    os.execute("chmod +x " .. h.quote(dir .. "/prog"))
    local real = io.popen("cd " .. h.quote(dir) .. " && pwd -P"):read("l")
    local out = out_of([[
      local dir = ...
      io.write(shell("pwd -P; echo", { cwd = dir, capture = true }).stdout)
      io.write(shell({ "pwd", "-P" }, { cwd = dir, capture = true }).stdout)
      io.write(shell("./prog", { cwd = dir, capture = true }).stdout)
    ]], { dir })
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(real .. "\n\n" .. real .. "\nprog ran in " .. real .. "\n", out)
  end)

  it("feeds opts.stdin to the job", function()
    local out = out_of([[
      io.write(shell("tr a-z A-Z", { stdin = "hello\nworld\n", capture = true }).stdout)
      io.write(shell({ "wc", "-c" }, { stdin = "", capture = true }).stdout)
    ]])
    assert.are.equal("HELLO\nWORLD\n0\n", out)
  end)

  it("gives jobs /dev/null as stdin by default, so cat ends at once", function()
    local r = h.script([[
      local r = shell("cat", { capture = true })
      print(r.ok, #r.stdout)
    ]], {}, { stdin = "tide's own stdin must not reach jobs\n", timeout = 10 })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("true\t0\n", r.out)
    assert.is_true(r.secs < 5)
  end)

  it("round-trips a large binary stdin exactly", function()
    local out = out_of([[
      local parts = {}
      for i = 0, 3 * 1024 * 1024 / 256 - 1 do
        parts[#parts + 1] = string.char(table.unpack((function()
          local t = {}
          for b = 0, 255 do t[b + 1] = (b + i) % 256 end
          return t
        end)()))
      end
      local data = table.concat(parts)
      local r = shell("cat", { stdin = data, capture = true })
      print(#data, #r.stdout, r.stdout == data)
    ]])
    assert.are.equal("3145728\t3145728\ttrue\n", out)
  end)

  it("does not fail when the job ignores its stdin", function()
    local out = out_of([[
      local r = shell("true", { stdin = string.rep("x", 1024 * 1024) })
      print(r.ok)
    ]])
    assert.are.equal("true\n", out)
  end)

  it("raises with check = true when the job fails, naming the command", function()
    local r = h.script([[
      local ok = shell("true", { check = true }).ok
      print(ok)
      local ok2, err = pcall(shell, "exit 4", { check = true })
      print(ok2, err)
      shell("sh -c 'exit 5'", { check = true })
      print("not reached")
    ]])
    assert.are.equal(2, r.code)
    assert.truthy(r.out:find("^true\nfalse\t[^\n]*exit 4\n$"), r.out)
    assert.truthy(r.err:find("script.lua:5:", 1, true), r.err)
    assert.truthy(r.err:find("sh -c 'exit 5'", 1, true), r.err)
  end)

  it("blocks the main chunk: two shells in a row run one after the other", function()
    local r = h.script([[
      shell("sleep 0.3")
      shell("sleep 0.3")
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.is_true(r.secs >= 0.55, "shells overlapped: " .. r.secs)
  end)

  for _, case in ipairs({
    { "42", "#1" }, { "nil", "#1" }, { "print", "#1" }, { "{}", "#1" }, { "{ 'echo', {} }", "#1" },
    { "'true', { foo = 1 }", "#2" }, { "'true', { cwd = 5 }", "#2" }, { "'true', 'opts'", "#2" },
    { "'true', { capture = 'yes' }", "#2" }, { "'true', { env = 'A=1' }", "#2" },
    { "'true', { env = { A = {} } }", "#2" }, { "'true', { stdin = 5 }", "#2" },
    { "'true', { check = 1 }", "#2" },
  }) do
    it("rejects shell(" .. case[1] .. ") with bad argument " .. case[2], function()
      local r = h.script(("print(pcall(shell, %s))"):format(case[1]))
      assert.are.equal(0, r.code, r.err)
      assert.truthy(r.out:find("^false\t[^\n]*bad argument " .. case[2] .. " to 'shell' %(.+%)\n$"), r.out)
    end)
  end

  for _, case in ipairs({ { "42", "#1" }, { "{}", "#1" }, { "'true', { foo = 1 }", "#2" },
                          { "'true', { cwd = 5 }", "#2" } }) do
    it("blames the caller's line for shell(" .. case[1] .. ")", function()
      local r = h.script(("local x = 1\nshell(%s)\n"):format(case[1]))
      assert.are.equal(2, r.code)
      assert.truthy(r.err:find("^tide: [^\n]*script%.lua:2: bad argument " .. case[2] .. " to 'shell'"), r.err)
    end)
  end

  it("starts jobs with default signal dispositions, even when tide ignores SIGINT", function()
    local dir = h.tmpdir()
    local src = h.spit(dir .. "/s.lua", [[
      local r = shell("grep SigIgn /proc/self/status", { capture = true })
      local p = shell("yes | head -n 1", { capture = true })
      io.write(r.stdout, p.stdout, "[", p.stderr, "]\n")
    ]])
    -- started with & from sh: SIGINT and SIGQUIT are ignored in tide
    local p = io.popen(("%s %s </dev/null & wait"):format(h.quote(h.TIDE), h.quote(src)))
    local out = p:read("a")
    p:close()
    os.execute("rm -rf " .. h.quote(dir))
    local mask, rest = out:match("^SigIgn:\t(%x+)\n(.*)$")
    assert.truthy(mask, out)
    -- signals 1..31 (glibc's posix_spawn may leave its internal 32 and 33 ignored)
    assert.are.equal(0, tonumber(mask:sub(-8), 16) & 0x7fffffff, "ignored in the job: " .. mask)
    assert.are.equal("y\n[]\n", rest)
  end)

  it("offers require('tide').sleep, pausing only the calling task", function()
    local r = h.script([[
      local tide = require("tide")
      local order = {}
      pool(2):map(function(i)
        if i == 1 then tide.sleep(0.3) end
        order[#order + 1] = i
      end, { 1, 2 })
      tide.sleep(0.1)
      print(table.concat(order, " "))
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("2 1\n", r.out)
    assert.is_true(r.secs >= 0.35 and r.secs < 3, "slept " .. r.secs)
  end)

  it("offers require('tide').quote, which sh reads back as the same word", function()
    local r = h.script([[
      local quote = require("tide").quote
      local words = { "plain", "a b", "it's", "", "$HOME", "*", "new\nline", "--x=1" }
      local q = {}
      for i, w in ipairs(words) do q[i] = quote(w) end
      print(quote("plain"), quote("a b"))
      local r = shell("printf '[%s]' " .. table.concat(q, " "), { capture = true })
      print(r.stdout == "[" .. table.concat(words, "][") .. "]")
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("plain\t'a b'\ntrue\n", r.out)
  end)

  describe("when the program cannot start", function()
    it("gives 127 and names a program that is not found", function()
      local r = h.script([[
        local a = shell("nosuch_prog_tide arg")
        local b = shell({ "nosuch_prog_tide", "arg" }, { capture = true })
        local c = shell("nosuch_prog_tide; true; exit 127", { capture = true })
        print(a.ok, a.code, b.ok, b.code, c.code)
        io.stderr:write("captured: ", b.stderr, "captured: ", c.stderr)
      ]])
      assert.are.equal(1, r.code)
      assert.are.equal("false\t127\tfalse\t127\t127\n", r.out)
      -- what the jobs said, then the summary, which names them again
      local said, tail = r.err:match("^(.-)(tide: 3 of 3 jobs failed\n.*)$")
      local _, n = (said or ""):gsub("nosuch_prog_tide", "")
      assert.are.equal(3, n, r.err)
      assert.truthy(tail:find(summary.pattern(3, 3, 0, { { "exit 127", "nosuch_prog_tide arg" },
        { "exit 127", "nosuch_prog_tide arg" }, { "exit 127", "nosuch_prog_tide; true; exit 127" } }, 3)), r.err)
      assert.truthy(r.err:find("captured: [^\n]*nosuch_prog_tide[^\n]*\ncaptured: [^\n]*nosuch_prog_tide"), r.err)
    end)

    it("gives 126 for a file that is not executable, naming it", function()
      local dir = h.tmpdir()
      h.spit(dir .. "/noexec", "echo hi\n")
      local r = h.script([[
        local dir = ...
        local a = shell(dir .. "/noexec", { capture = true })
        local b = shell({ dir .. "/noexec" }, { capture = true })
        local c = shell(dir, { capture = true })
        print(a.ok, a.code, b.code, c.code)
        io.stderr:write(a.stderr, b.stderr, c.stderr)
      ]], { dir })
      os.execute("rm -rf " .. h.quote(dir))
      assert.are.equal(1, r.code)
      assert.are.equal("false\t126\t126\t126\n", r.out)
      local said, tail = r.err:match("^(.-)(tide: 3 of 3 jobs failed\n.*)$")
      local _, n = (said or ""):gsub("/noexec", "")
      assert.are.equal(2, n, r.err)
      assert.truthy(tail:find(summary.pattern(3, 3, 0, { { "exit 126", dir .. "/noexec" },
        { "exit 126", dir .. "/noexec" }, { "exit 126", dir } }, 3)), r.err)
    end)

    it("gives 127 for a missing cwd, naming the directory", function()
      local r = h.script([[
        local a = shell("echo hi", { cwd = "/nonexistent/tide_dir" })
        local b = shell({ "echo", "hi" }, { cwd = "/nonexistent/tide_dir", capture = true })
        print(a.ok, a.code, b.code, b.stdout)
        io.stderr:write("captured: ", b.stderr)
      ]])
      assert.are.equal(1, r.code)
      assert.are.equal("false\t127\t127\t\n", r.out)
      assert.truthy(r.err:find("^[^\n]*/nonexistent/tide_dir[^\n]*\ncaptured: [^\n]*/nonexistent/tide_dir"), r.err)
      assert.truthy(r.err:find("tide: 2 of 2 jobs failed", 1, true), r.err)
    end)

    it("says why a cwd is bad, not 'command not found'", function()
      local r = h.script([[
        io.stderr:write(shell("echo hi", { cwd = "/nonexistent/tide_dir", capture = true }).stderr)
        io.stderr:write(shell("echo hi", { cwd = "/etc/passwd", capture = true }).stderr)
      ]])
      assert.are.equal(1, r.code)
      assert.falsy(r.err:find("command not found", 1, true), r.err)
      assert.truthy(r.err:find("No such file or directory", 1, true), r.err)
      assert.truthy(r.err:find("Not a directory", 1, true), r.err)
    end)

    it("runs an executable without a #! line through sh, as a shell would", function()
      local dir = h.tmpdir()
      h.spit(dir .. "/nosb", "echo script ran with \"$@\"\n")
      os.execute("chmod +x " .. h.quote(dir .. "/nosb"))
      local out = out_of([[
        local r = shell({ (...) .. "/nosb", "a1" })
        print(r.code)
      ]], { dir })
      os.execute("rm -rf " .. h.quote(dir))
      assert.are.equal("script ran with a1\n0\n", out)
    end)
  end)

  -- A string with no shell syntax runs without /bin/sh; the result must be
  -- the same as through /bin/sh (here forced by a trailing ';').
  describe("running a plain command string directly", function()
    local function both(cmd, opts)
      local r = h.script(([[
        local cmd, opts = %q, %s
        opts.capture = true
        local direct, viash = shell(cmd, opts), shell(cmd .. ";", opts)
        print(direct.code, viash.code)
        io.write(direct.stdout, "--\n", viash.stdout)
      ]]):format(cmd, opts or "{}"))
      local codes, rest = r.out:match("^([^\n]*)\n(.*)$")
      local direct, viash = (rest or ""):match("^(.-)%-%-\n(.*)$")
      return codes, direct, viash, r
    end

    it("gives the same result as sh for ordinary commands", function()
      for _, cmd in ipairs({ "echo hello   world", "printf %s,%s a b", "false", "ls /nonexistent_tide",
                             "test -d /tmp", "nosuch_prog_tide" }) do
        local codes, direct, viash = both(cmd)
        local a, b = codes:match("^(%S+)\t(%S+)$")
        assert.are.equal(b, a, cmd)
        assert.are.equal(viash, direct, cmd)
      end
    end)

    it("looks the program up in the job's PATH from opts.env", function()
      local dir = h.tmpdir()
      h.spit(dir .. "/tide_only_here", "#!/bin/sh\necho found in job PATH\n")
      os.execute("chmod +x " .. h.quote(dir .. "/tide_only_here"))
      local codes, direct, viash = both("tide_only_here",
        ("{ env = { PATH = %q } }"):format(dir .. ":/usr/bin:/bin"))
      os.execute("rm -rf " .. h.quote(dir))
      assert.are.equal("0\t0", codes)
      assert.are.equal("found in job PATH\n", viash)
      assert.are.equal(viash, direct)
    end)

    it("sets PWD to opts.cwd as sh does", function()
      local codes, direct, viash = both("printenv PWD", '{ cwd = "/usr" }')
      assert.are.equal("0\t0", codes)
      assert.are.equal("/usr\n", viash)
      assert.are.equal(viash, direct)
    end)

    it("runs echo with sh's semantics", function()
      local codes, direct, viash = both("echo -e x")
      assert.are.equal("0\t0", codes)
      assert.are.equal(viash, direct)
    end)
  end)

  describe("a job's background children", function()
    it("are killed when the job's main process exits, holding its output or not", function()
      local S = h.sleeper()
      local r = h.script([[
        local S = ...
        local a = shell({ "sh", "-c", S .. " 100 & echo started" }, { capture = true })
        local b = shell({ "sh", "-c", "(" .. S .. " 100 >/dev/null 2>&1 &); echo detached" }, { capture = true })
        local c = shell(S .. " 100 </dev/null >/dev/null 2>&1 & echo plain")
        print(a.ok, a.stdout, b.ok, b.stdout, c.ok)
      ]], { S }, { timeout = 30 })
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("plain\ntrue\tstarted\n\ttrue\tdetached\n\ttrue\n", r.out)
      assert.is_true(r.secs < 5, "waited for background children: " .. r.secs)
      assert.are.equal(0, h.gone(h.MARK))
    end)

    it("are killed even when they started a session of their own", function()
      -- its own marker and a short sleep, so a leak ends by itself
      local mark = h.mark("setsid")
      local S = h.sleeper(mark)
      local r = h.script([[
        local S = ...
        local r = shell({ "sh", "-c", "setsid " .. S .. " 20 </dev/null >/dev/null 2>&1 & sleep 0.2; echo started" })
        print(r.ok)
      ]], { S }, { timeout = 30 })
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("started\ntrue\n", r.out)
      assert.are.equal(0, h.gone(mark), "a job's setsid child outlived tide")
    end)

    it("get a short drain: output written just after the main process exits is kept", function()
      -- a drain of 10 s, not 0.1: a loaded machine may take more than 0.1 s
      -- to start the background sleep; the drain still ends with the pipe
      local r = h.script([[
        require("tide.core").configure({ drain = 10 })
        local r = shell("(sleep 0.02; echo late) & echo early", { capture = true })
        io.write(r.stdout)
      ]])
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("early\nlate\n", r.out)
    end)
  end)
end)
