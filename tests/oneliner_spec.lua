-- oneliner_spec.lua: GNU parallel's command line (issue #7), differential:
-- each one-liner runs through the real GNU parallel and through tide, and
-- their stdout, exit status and the commands they ran must agree.
local h = require("tests.helper")
local q = h.quote

local function have_parallel()
  return os.execute("parallel --version >/dev/null 2>&1") == true
end

-- A work directory with fixtures: tiderec (in PATH) prints its arguments as [a][b] and
-- appends the same line to ./log, so the commands run can be compared even
-- when their output is not.
local WORK = h.tmpdir()
os.execute("mkdir " .. q(WORK .. "/bin"))
h.spit(WORK .. "/bin/tiderec", "#!/bin/sh\nl=''\nfor a in \"$@\"; do l=\"$l[$a]\"; done\n"
  .. "printf '%s\\n' \"$l\"\nprintf '%s\\n' \"$l\" >>\"$LOG\"\n")
os.execute("chmod +x " .. q(WORK .. "/bin/tiderec"))
h.spit(WORK .. "/lines.txt", "one\ntwo words\nthree\n")
h.spit(WORK .. "/nums.txt", "1\n2\n")
h.spit(WORK .. "/null.txt", "a b\0c\nd\0")
h.spit(WORK .. "/cols.tsv", "name\tsize\nx.txt\t10\ny.txt\t20\n")
h.spit(WORK .. "/cmds.txt", "echo first\necho second\n")
local many = {}
for i = 1, 3000 do -- 105 jobs for "at most 101"; all of them for -X
  many[i] = tostring(i)
end
h.spit(WORK .. "/many.txt", table.concat(many, "\n") .. "\n")
h.spit(WORK .. "/some.txt", table.concat(many, "\n", 1, 105) .. "\n")

-- Runs prog (a shell word list) with args in WORK; {code, out, log}.
local function run(prog, args, stdin)
  local words = {}
  for i, a in ipairs(args) do
    words[i] = q(a)
  end
  local log = WORK .. "/log"
  os.remove(log)
  h.spit(log, "")
  h.spit(WORK .. "/stdin", stdin or "")
  local cmd = ("cd %s && PATH=%s:$PATH LOG=%s timeout -s KILL 30 %s %s <stdin >out 2>err; echo $?"):format(
    q(WORK), q(WORK .. "/bin"), q(log), prog, table.concat(words, " "))
  local p = io.popen(cmd)
  local code = p:read("n")
  p:close()
  return { code = code, out = h.slurp(WORK .. "/out"), err = h.slurp(WORK .. "/err"), log = h.slurp(log) }
end

local function sorted(s)
  local t = {}
  for l in s:gmatch("[^\n]*\n?") do
    if l ~= "" then
      t[#t + 1] = l
    end
  end
  table.sort(t)
  return table.concat(t)
end

-- The table.  args: the command line after the program name; stdin;
-- exact: compare stdout in order (else sorted).
local CASES = {
  -- syntax
  { "echo ::: a b c" , { "echo", ":::", "a", "b", "c" } },
  { "two sources", { "tiderec", ":::", "a", "b", ":::", "1", "2" } },
  { "three sources {3} {1}", { "tiderec", "{3}", "{1}", ":::", "a", "b", ":::", "x", ":::", "p", "q" } },
  { ":::: file", { "tiderec", "::::", "lines.txt" } },
  { ":::: - (stdin)", { "tiderec", "::::", "-" }, stdin = "s1\ns2\n" },
  { "no separator: stdin lines", { "tiderec", "x" }, stdin = "l1\nl 2\n" },
  { "stdin without final newline", { "tiderec" }, stdin = "a\nb" },
  { "empty lines are arguments", { "tiderec", "<{}>" }, stdin = "a\n\nb\n" },
  { ":::+ links, stopping at the shortest", { "tiderec", ":::", "a", "b", "c", ":::+", "1", "2" } },
  { "::::+ links a file", { "tiderec", ":::", "a", "b", "::::+", "nums.txt" } },
  { "--link wraps the shorter", { "--link", "tiderec", ":::", "a", "b", "c", ":::", "1", "2" } },
  { ":::: and ::: mixed", { "tiderec", "::::", "nums.txt", ":::", "x", "y" } },
  { "-a file", { "-a", "nums.txt", "tiderec" } },
  { "no command: arguments are commands", { ":::", "echo a", "echo b c" } },
  { "no command, two sources", { ":::", "echo a", "echo b", ":::", "1", "2" } },
  { "no command, :::: file", { "::::", "cmds.txt" } },
  { "empty ::: source", { "echo", ":::" } },
  { "empty stdin", { "echo" }, stdin = "" },
  { "empty source among others", { "tiderec", ":::", "a", "b", "::::", "/dev/null" } },
  { "105 arguments", { "-j4", "echo", "::::", "some.txt" } },
  { "60 arguments from stdin", { "echo", "n{}" }, stdin = table.concat(many, "\n", 1, 60) },
  { "3000 arguments -X -j1", { "-X", "-j1", "echo" , "::::", "many.txt" }, exact = true },
  -- replacement strings
  { "{} twice", { "tiderec", "{}-{}", ":::", "a", "b" } },
  { "{.} {/} {//} {/.}", { "tiderec", "{.}", "{/}", "{//}", "{/.}", ":::", "/x/y.tar.gz", "a/b", "c.d", "e" } },
  { "{#}", { "-j1", "tiderec", "{#}", "{}", ":::", "a", "b", "c" }, exact = true },
  { "{%} with -j1", { "-j1", "tiderec", "{%}", ":::", "a", "b" }, exact = true },
  { "{%} with -j2", { "-j2", "sh", "-c", "echo {%}; sleep 0.2", ":::", "a", "b" } },
  { "$PARALLEL_SEQ and $PARALLEL_JOBSLOT are {#} and {%}",
    { "-j1", "echo $PARALLEL_SEQ $PARALLEL_JOBSLOT {#} {%} {}", ":::", "a", "b", "c" }, exact = true },
  { "$PARALLEL_SEQ with -k -j3; $PARALLEL_JOBSLOT is {%}",
    { "-k", "-j3", "echo $PARALLEL_SEQ {#} $(( {%} == $PARALLEL_JOBSLOT )) {}", ":::", "a", "b", "c", "d", "e" },
    exact = true },
  { "{1} {2} of two sources", { "tiderec", "{2}", "{1}", ":::", "a", "b", ":::", "1", "2" } },
  { "{1.} {2/} {2//} {2/.}", { "tiderec", "{1.}", "{2/}", "{2//}", "{2/.}", ":::", "f.c", ":::", "/d/e.txt" } },
  { "{} of two sources", { "tiderec", "<{}>", ":::", "a", "b", ":::", "1" } },
  { "arguments appended", { "tiderec", "pre", ":::", "a b", "c" } },
  { "text around {}", { "tiderec", "x{}y", ":::", "a", "b c" } },
  { "unknown braces kept", { "tiderec", "{x}", "{}", ":::", "a" } },
  -- quoting: hostile arguments arrive intact
  { "spaces", { "tiderec", ":::", "a b", "  lead", "trail  " } },
  { "quotes", { "tiderec", ":::", "it's", 'say "hi"', "`x`" } },
  { "shell specials", { "tiderec", ":::", "$HOME", "a;b", "a|b", "a&b", "*", "?", "~", "(x)", ">o", "#c" } },
  { "dashes and backslashes", { "tiderec", ":::", "-n", "--x", "a\\b", "\\" } },
  { "tab", { "tiderec", ":::", "a\tb", "\t" } },
  { "utf-8", { "tiderec", ":::", "ä ö", "日本" } },
  { "hostile in {.} and {/}", { "tiderec", "{.}", "{/}", ":::", "d i r/it's a.b c" } },
  { "hostile stdin lines", { "tiderec" }, stdin = "a b\n$x\nq'uote\n*\n" },
  { "-q", { "-q", "tiderec", "a b", ":::", "x y", "$z" } },
  { "-q with {} inside a word", { "-q", "tiderec", "<{}>", ":::", "x y" } },
  { "--shellquote", { "--shellquote", ":::", "a", "b", "c" } },
  -- options
  { "-j1 keeps order", { "-j1", "tiderec", ":::", "c", "a", "b" }, exact = true },
  { "-j 2", { "-j", "2", "tiderec", ":::", "a", "b", "c" } },
  { "-j 50%", { "-j", "50%", "tiderec", ":::", "a", "b" } },
  { "-j +1", { "-j", "+1", "tiderec", ":::", "a", "b" } },
  { "-j -1", { "-j", "-1", "tiderec", ":::", "a", "b" } },
  { "-j0", { "-j0", "tiderec", ":::", "a", "b" } },
  { "--jobs=2", { "--jobs=2", "tiderec", ":::", "a", "b" } },
  { "-n2", { "-j1", "-n2", "tiderec", ":::", "a", "b", "c" }, exact = true },
  { "-N0: one input per job, inserted nowhere", { "-j1", "-N0", "tiderec", "x", ":::", "a", "b", "c" }, exact = true },
  { "-n 2 with {2} {1}", { "-j1", "-n", "2", "tiderec", "{2}", "{1}", ":::", "a", "b", "c" }, exact = true },
  { "-N2 {1}-{2}", { "-j1", "-N2", "tiderec", "{1}-{2}", ":::", "a", "b", "c" }, exact = true },
  { "-m", { "-j1", "-m", "tiderec", "x{}y", ":::", "a", "b", "c" }, exact = true },
  { "-X", { "-j1", "-X", "tiderec", "x{}y", ":::", "a", "b", "c" }, exact = true },
  { "-X -j2 shares out", { "-j2", "-X", "tiderec", ":::", "a", "b", "c", "d", "e" } },
  { "-0", { "-0", "tiderec" }, stdin = "a b\0c\nd\0" },
  { "--null :::: file", { "--null", "tiderec", "::::", "null.txt" } },
  { "-d ,", { "-d", ",", "tiderec" }, stdin = "a,b c,d" },
  { "-d '\\t'", { "-d", "\\t", "tiderec" }, stdin = "a\tb" },
  { "--colsep", { "--colsep", ",", "tiderec", "{2}", "{1}" }, stdin = "a,b\nc,d\n" },
  { "--colsep '\\t' --header :",
    { "--colsep", "\\t", "--header", ":", "tiderec", "{size}", "{name}", "::::", "cols.tsv" } },
  { "--header : on ::: sources", { "--header", ":", "tiderec", "{b}", "{a}", ":::", "a", "1", "2", ":::", "b", "x" } },
  { "--dry-run", { "--dry-run", "-j1", "echo", ":::", "a", "b" }, exact = true },
  { "--dry-run no command", { "--dry-run", "-j1", ":::", "echo a", "ls" }, exact = true },
  { "--workdir", { "--workdir", "/", "-j1", "pwd", ":::", "1" } },
  { "--env", { "--env", "HOME", "tiderec", ":::", "a" } },
  { "--delay", { "--delay", "0.05", "tiderec", ":::", "a", "b" } },
  { "--load", { "--load", "1000", "tiderec", ":::", "a" } },
  { "--memfree", { "--memfree", "1k", "tiderec", ":::", "a" } },
  { "--timeout", { "--timeout", "1", "sleep", ":::", "3", "0" } },
  { "--retries", { "--retries", "3", "sh", "-c", "tiderec {}; exit 1", ":::", "a" } },
  { "--will-cite", { "--will-cite", "tiderec", ":::", "a" } },
  -- exit status
  { "failures are counted", { "sh", "-c", "exit {}", ":::", "0", "1", "2", "0", "3" } },
  { "at most 101", { "-j4", "false", "::::", "some.txt" } },
  { "command not found", { "no-such-command-tide", ":::", "a" } },
  { "--halt now,fail=1 gives the job's status",
    { "-j1", "--halt", "now,fail=1", "sh", "-c", "exit {}", ":::", "0", "7", "3" } },
  { "--halt soon,fail=1", { "-j1", "--halt", "soon,fail=1", "sh", "-c", "tiderec {}; exit {}", ":::", "0", "5", "0" } },
  { "--halt soon,fail=50% gives the percentage", { "-j1", "--halt", "soon,fail=50%", "sh", "-c", "exit {}",
    ":::", "1", "0", "1", "1" } },
  { "a command string with no separator reads stdin", { "-j1", "tiderec {} $HOME" }, stdin = "a\nb\n" },
  { "--halt 2", { "-j1", "--halt", "2", "sh", "-c", "exit {}", ":::", "4", "0" } },
  { "--halt now,success=1", { "-j1", "--halt", "now,success=1", "tiderec", ":::", "a", "b" } },
  -- replacement string, trimming, separators, shuffling
  { "-I", { "-k", "-I", "XX", "tiderec", "pre-XX-post", ":::", "a", "b" }, exact = true },
  { "-I, the string twice", { "-k", "-I", "@@", "tiderec", "@@", "@@.txt", ":::", "a" }, exact = true },
  { "-I with no use of it: appended", { "-k", "-I", "@@", "tiderec", "x", ":::", "a" }, exact = true },
  { "--trim lr", { "-k", "--trim", "lr", "tiderec", ":::", " a ", "  b" }, exact = true },
  { "--trim l", { "-k", "--trim", "l", "tiderec", ":::", " a " }, exact = true },
  { "--trim n", { "-k", "--trim", "n", "tiderec", ":::", " a " }, exact = true },
  { "--arg-sep", { "-k", "--arg-sep", ",,", "tiderec", ",,", "a", "b", ",,", "x" }, exact = true },
  { "--arg-sep makes ::: an argument", { "-k", "--arg-sep", ",,", "tiderec", ":::", ",,", "a" }, exact = true },
  { "--arg-file-sep", { "-k", "--arg-file-sep", "//", "tiderec", "//", "lines.txt" }, exact = true },
  { "--shuf runs every job once", { "--shuf", "tiderec", ":::", "1", "2", "3", "4", "5" } },
  -- output options
  { "-k", { "-k", "-j4", "tiderec", ":::", "c", "a", "b" }, exact = true },
  { "--tag", { "--tag", "-j1", "echo", "x", ":::", "a", "b" }, exact = true },
  { "--tagstring", { "--tagstring", "<{}>", "-j1", "echo", ":::", "a" }, exact = true },
  { "--line-buffer", { "--line-buffer", "tiderec", ":::", "a", "b" } },
  { "-u", { "-u", "tiderec", ":::", "a", "b" } },
  { "--group", { "--group", "tiderec", ":::", "a", "b" } },
}

describe("one-liners", function()
  describe("against GNU parallel", function()
    if not have_parallel() then
      pending("GNU parallel is not installed (scripts/setup installs it)")
      return
    end
    for _, c in ipairs(CASES) do
      it(c[1], function()
        local gnu = run("parallel --will-cite", c[2], c.stdin)
        local tide = run(q(h.TIDE), c[2], c.stdin)
        assert.are.equal(gnu.code, tide.code, "exit status; tide's stderr: " .. tide.err)
        if c.exact then
          assert.are.equal(gnu.out, tide.out)
        else
          assert.are.equal(sorted(gnu.out), sorted(tide.out))
        end
        assert.are.equal(sorted(gnu.log), sorted(tide.log))
      end)
    end
  end)

  describe("the shell jobs run with", function()
    -- GNU parallel's rule: $PARALLEL_SHELL, else the shell it was started
    -- from, else /bin/sh.  Both run here under bash, then with
    -- PARALLEL_SHELL=bash under sh: [[ ]] is bash's.
    local CMD = { "-k", "[[ {} == a* ]] && echo yes {} || echo no {}", ":::", "ab", "ba" }
    for _, via in ipairs({ "bash -c '\"$0\" \"$@\"; exit $?'", "env PARALLEL_SHELL=bash" }) do
      it("is bash when " .. (via:find("PARALLEL") and "PARALLEL_SHELL says so" or "started from bash"), function()
        if not have_parallel() then
          pending("GNU parallel is not installed (scripts/setup installs it)")
          return
        end
        local gnu = run(via .. " parallel --will-cite", CMD)
        local tide = run(via .. " " .. q(h.TIDE), CMD)
        assert.are.equal("yes ab\nno ba\n", gnu.out, gnu.err)
        assert.are.equal(gnu.out, tide.out, tide.err)
        assert.are.equal(gnu.code, tide.code)
      end)
    end
  end)

  describe("options not built yet", function()
    for _, flag in ipairs({ "-v", "--verbose" }) do
      it("refuse " .. flag .. " with exit 255", function()
        local args = { flag }
        for _, a in ipairs({ "tiderec", ":::", "a" }) do
          args[#args + 1] = a
        end
        local r = run(q(h.TIDE), args)
        assert.are.equal(255, r.code)
        assert.truthy(r.err:find(flag, 1, true), r.err)
        assert.truthy(r.err:find("not available yet", 1, true), r.err)
        assert.are.equal("", r.log)
      end)
    end
  end)

  describe("bad values", function()
    for _, c in ipairs({
      { "--halt", "bogus" }, { "--timeout", "abc" }, { "--retries", "x" }, { "-j", "x" },
      { "--memfree", "zz" }, { "--delay", "x" }, { "--load", "high" }, { "--header", "x" },
    }) do
      it("exit 255 naming " .. c[1] .. ", running nothing", function()
        local r = run(q(h.TIDE), { c[1], c[2], "tiderec", ":::", "a" })
        assert.are.equal(255, r.code)
        assert.truthy(r.err:find(c[1], 1, true), r.err)
        assert.are.equal("", r.log)
      end)
    end

    it("a missing input file: exit 255", function()
      local r = run(q(h.TIDE), { "tiderec", "::::", "no-such-file" })
      assert.are.equal(255, r.code)
      assert.truthy(r.err:find("no-such-file", 1, true), r.err)
    end)
  end)

  describe("mode selection", function()
    it("an argument holding a newline stays one argument (GNU splits it)", function()
      local r = run(q(h.TIDE), { "tiderec", ":::", "new\nline" })
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("[new\nline]\n", r.log)
    end)

    it("a missing x.lua is 'cannot open', never a command", function()
      local r = run(q(h.TIDE), { "typo.lua", ":::", "a" })
      assert.are.equal(2, r.code)
      assert.truthy(r.err:find("cannot open typo.lua", 1, true), r.err)
    end)

    it("a missing x.lua after one-liner options is not run either", function()
      local r = run(q(h.TIDE), { "-k", "typo.lua", ":::", "a" })
      assert.truthy(r.code == 255 or r.code == 2, r.code)
      assert.truthy(r.err:find("typo.lua", 1, true) or r.err:find("-k", 1, true), r.err)
    end)

    it("a word that is neither a file nor a program is a missing script", function()
      local r = run(q(h.TIDE), { "no-such-thing-tide" }, "x\n")
      assert.are.equal(2, r.code)
      assert.truthy(r.err:find("cannot open no%-such%-thing%-tide"), r.err)
    end)

    it("a program in PATH with no separator reads stdin", function()
      local r = run(q(h.TIDE), { "-j1", "echo", "got" }, "a\nb\n")
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("got a\ngot b\n", r.out)
    end)

    it("a script still runs, with -j N", function()
      h.spit(WORK .. "/s.lua", "print(pool():map(function() return 1 end, {1, 2}).n)")
      local r = run(q(h.TIDE), { "-j", "2", "s.lua" })
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("2\n", r.out)
    end)

    it("--help lists the one-liner options", function()
      local r = run(q(h.TIDE), { "--help" })
      assert.are.equal(0, r.code)
      for _, o in ipairs({ "usage: tide", ":::", "--halt", "--colsep", "-X", "--joblog" }) do
        assert.truthy(r.out:find(o, 1, true), o)
      end
    end)

    it("an unknown option is an error, exit 255", function()
      local r = run(q(h.TIDE), { "--no-such-option", "echo", ":::", "a" })
      assert.are.equal(255, r.code)
      assert.truthy(r.err:find("--no-such-option", 1, true), r.err)
    end)
  end)

  teardown(function()
    os.execute("rm -rf " .. q(WORK))
  end)
end)
