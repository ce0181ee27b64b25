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
local ALL = table.concat(many, "\n") .. "\n" -- 13893 bytes: many blocks of 1k
-- every byte value, with newlines among them
local bytes = {}
for b = 0, 255 do
  bytes[#bytes + 1] = string.char(b)
end
local BINARY = table.concat(bytes) .. "\n" .. table.concat(bytes, "\n") .. "\0\r\n"

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

-- GNU parallel's result for a case, kept for the suite's second build:
-- scripts/test sets TIDE_GNU_CACHE to a directory both builds share.  The
-- same one-liner on the same fixtures gives GNU's same result, and GNU's
-- start-up (a quarter of a second a run) is most of this spec's time.  An
-- entry holds its whole key, so a name collision only costs a rerun.
local CACHE = os.getenv("TIDE_GNU_CACHE")
local function gnu_result(args, stdin)
  local fresh = function()
    return run("parallel --will-cite", args, stdin)
  end
  if not CACHE or CACHE == "" then
    return fresh()
  end
  local key = table.concat(args, "\0") .. "\0\0" .. (stdin or "")
  local hash = 2166136261 -- FNV-1a, 32 bits
  for i = 1, #key do
    hash = ((hash ~ key:byte(i)) * 16777619) & 0xffffffff
  end
  local path = ("%s/%08x"):format(CACHE, hash)
  local f = io.open(path, "rb")
  if f then
    local got = f:read("a")
    f:close()
    local fields, at = {}, 1
    while at <= #got do
      local len, nl = got:match("^(%d+)\n()", at)
      if not len then
        break
      end
      fields[#fields + 1] = got:sub(nl, nl + tonumber(len) - 1)
      at = nl + tonumber(len)
    end
    if fields[1] == key and #fields == 5 then
      return { code = tonumber(fields[2]), out = fields[3], err = fields[4], log = fields[5] }
    end
  end
  local r = fresh()
  local out = {}
  for _, v in ipairs({ key, tostring(r.code), r.out, r.err, r.log }) do
    out[#out + 1] = #v .. "\n" .. v
  end
  os.execute("mkdir -p " .. q(CACHE))
  h.spit(path, table.concat(out))
  return r
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
  -- --pipe: chunks of stdin to the jobs' stdin, cut where GNU cuts them
  { "--pipe --block 6", { "-k", "--pipe", "--block", "6", "echo [{#}]; cat" },
    stdin = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n", exact = true },
  { "--pipe --block 5: a record across two reads", { "-k", "--pipe", "--block", "5", "echo [{#}]; cat" },
    stdin = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n", exact = true },
  { "--pipe, input of many blocks (--block 1k)", { "-k", "--pipe", "--block", "1k", "echo [{#}]; wc -c" },
    stdin = ALL, exact = true },
  { "--pipe --block 1K is 1024 bytes", { "-k", "--pipe", "--block", "1K", "wc -lc" }, stdin = ALL, exact = true },
  { "--pipe --block 2M (default 1M)", { "-k", "--pipe", "wc -lc" }, stdin = ALL .. ALL, exact = true },
  { "--pipe, a record longer than the block", { "-k", "--pipe", "--block", "3", "echo [{#}]; cat" },
    stdin = "abcdefgh\nij\nklmnopqrstu\nv", exact = true },
  { "--pipe --block 20k, long records, a two-byte --recend", { "-k", "--pipe", "--block", "20k", "--recend", ";;",
    "wc -c" }, stdin = (("x"):rep(9000) .. ";;"):rep(3) .. ("y"):rep(5000) .. ";;" .. ("z"):rep(30000) .. ";;q",
    exact = true },
  { "--pipe -N 7", { "-k", "--pipe", "-N", "7", "echo [{#}]; cat" }, stdin = table.concat(many, "\n", 1, 30),
    exact = true },
  { "--pipe -N 1000 over small blocks", { "-k", "--pipe", "-N", "1000", "--block", "100", "wc -l" }, stdin = ALL,
    exact = true },
  { "--pipe -n 2", { "-k", "--pipe", "-n", "2", "echo [{#}]; cat" }, stdin = "a\nb\nc\nd\ne", exact = true },
  { "--pipe -N1: an empty first record joins the next, as in GNU", { "-k", "--pipe", "-N1", "echo [{#}]; cat" },
    stdin = "\n\na\n\nb\n", exact = true },
  { "--pipe --recend ';'", { "-k", "--pipe", "--recend", ";", "-N1", "cat; echo" }, stdin = "a;b;c;", exact = true },
  { "--pipe --recend '\\t'", { "-k", "--pipe", "--recend", "\\t", "-N1", "cat; echo" }, stdin = "a\tb\tc",
    exact = true },
  { "--pipe --recstart '>' -N1", { "-k", "--pipe", "--recstart", ">", "-N1", "echo J; cat" },
    stdin = ">a\nx\n>b\ny\n>c\n", exact = true },
  { "--pipe --recstart '>' --block 8", { "-k", "--pipe", "--recstart", ">", "--block", "8", "echo J; cat" },
    stdin = ">a\nxxxx\n>b\ny\n>c\nzz\n>d\n", exact = true },
  { "--pipe --recstart and --recend", { "-k", "--pipe", "--recend", "\\n", "--recstart", ">", "-N2", "echo J; cat" },
    stdin = ">a\n>b\nc>d\n>e\n", exact = true },
  { "--pipe: binary bytes arrive intact", { "-k", "--pipe", "--block", "10", "od -An -c; echo {#}" }, stdin = BINARY,
    exact = true },
  { "--pipe: empty input runs no job", { "--pipe", "tiderec" }, stdin = "" },
  { "--pipe: {} is empty, nothing is appended", { "-k", "--pipe", "tiderec", "x{}y" }, stdin = "a\n" },
  { "--pipe -k: jobs that end out of order print in order",
    { "-k", "-j3", "--pipe", "-N1", "read x; sleep 0.$x; echo {#}:$x" }, stdin = "3\n1\n2\n", exact = true },
  { "--pipe without -k: every chunk once", { "-j3", "--pipe", "-N2", "tiderec {#}; cat" },
    stdin = table.concat(many, "\n", 1, 60) .. "\n" }, -- the last line ends: output never joins lines
  { "--pipe with {%}", { "-j1", "--pipe", "-N2", "echo {%} {#}; cat" }, stdin = "a\nb\nc\n", exact = true },
  -- --plus replacement strings
  { "--plus {+/} {+.} {+..} {+...} {..} {...} {/..} {/...}",
    { "-k", "--plus", "tiderec", "{+/}", "{+.}", "{+..}", "{+...}", "{..}", "{...}", "{/..}", "{/...}",
      ":::", "/a/b.c.d.e", "x.tar.gz", "plain", "dir/", "it's a.b c" }, exact = true },
  { "--plus {##} {0#}", { "-k", "--plus", "tiderec", "{##}", "{0#}", "::::", "some.txt" }, exact = true },
  { "--plus {0%} {slot} with -j1", { "-j1", "--plus", "tiderec", "{0%}", "{slot}", ":::", "a", "b" }, exact = true },
  { "--plus {0%} with -j12", { "-j12", "--plus", "tiderec", "{0%}", ":::", "a" } },
  { "--plus {:-x} {:n} {:n:m}", { "-k", "--plus", "tiderec", "{:-def}", "{:2}", "{:1:2}", ":::", "aaa.tar.gz", "",
    "0", "Abaz" }, exact = true },
  { "--plus {#re} {##re} {%re} {%%re}", { "-k", "--plus", "tiderec", "{#a}", "{##a*}", "{%.gz}", "{%%.*}", "{%.*z}",
    ":::", "aaa.tar.gz", "", "a.b.c" }, exact = true },
  { "--plus {/re/s} {//re/s} {/#re/s} {/%re/s}", { "-k", "--plus", "tiderec", "{/a/X}", "{//a/X}", "{/#a/X}",
    "{/%z/X}", "{/[bz]/}", ":::", "aaa.tar.gz", "Abaz" }, exact = true },
  { "--plus {^re} {^^re}", { "-k", "--plus", "tiderec", "{^a}", "{^^a}", "{^^[ab]}", ":::", "aaa.tar.gz", "Abaz" },
    exact = true },
  { "--plus positional {2+.} {1/..} {2:-x}", { "-k", "--plus", "tiderec", "{2+.}", "{1/..}", "{2:-x}", ":::", "a.b",
    ":::", "c.d", "" }, exact = true },
  { "-q --plus: a word is one argument", { "-k", "-q", "--plus", "tiderec", "{+.}", "x {..} y", "{}", "{#}", "{##}",
    "{%.c}", ":::", "a b.c", "d.e.f", "$x'y" }, exact = true },
  { "--plus {choose_k}", { "-k", "--plus", "tiderec", "{#}", "{##}", "{choose_k}", ":::", "a", "b", "c", ":::", "a",
    "b", "c" }, exact = true },
  { "--plus {uniq}", { "-k", "--plus", "tiderec", "{#}", "{uniq}", ":::", "a", "b", ":::", "a", "b" }, exact = true },
  { "--plus leaves {} {.} {#} {%} {1} and awk's braces", { "-j1", "--plus", "tiderec", "{}", "{.}", "{#}", "{%}",
    "{1}", "{print $1}", ":::", "x.y" }, exact = true },
  -- --nice, -v
  { "--nice", { "-k", "--nice", "7", "nice; echo {}", ":::", "1", "2" }, exact = true },
  { "--nice with -q", { "-k", "-q", "--nice", "3", "nice", ":::", "" }, exact = true },
  { "-v", { "-k", "-v", "echo {}", ":::", "a", "b c", "$x" }, exact = true },
  { "-v -q", { "-k", "-v", "-q", "echo", ":::", "a b" }, exact = true },
  { "--verbose (-t): the command on stderr", { "-j1", "--verbose", "echo", ":::", "a", "b c" }, exact = true,
    stderr = true },
  { "-t -q", { "-j1", "-t", "-q", "echo", ":::", "a b" }, exact = true, stderr = true },
  { "-v --tag", { "-k", "-v", "--tag", "echo", ":::", "a", "b" }, exact = true },
  { "-v --dry-run prints each command once", { "-k", "-v", "--dry-run", "echo", ":::", "a" }, exact = true },
  { "-v a failing job", { "-k", "-v", "sh -c 'exit {}'", ":::", "0", "3" }, exact = true },
  { "-v --pipe", { "-k", "-v", "--pipe", "-N1", "cat" }, stdin = "a\nb\n", exact = true },
}

describe("one-liners", function()
  describe("against GNU parallel", function()
    if not have_parallel() then
      pending("GNU parallel is not installed (scripts/setup installs it)")
      return
    end
    for _, c in ipairs(CASES) do
      it(c[1], function()
        local gnu = gnu_result(c[2], c.stdin)
        local tide = run(q(h.TIDE), c[2], c.stdin)
        assert.are.equal(gnu.code, tide.code, "exit status; tide's stderr: " .. tide.err)
        if c.exact then
          assert.are.equal(gnu.out, tide.out)
        else
          assert.are.equal(sorted(gnu.out), sorted(tide.out))
        end
        assert.are.equal(sorted(gnu.log), sorted(tide.log))
        if c.stderr then
          assert.are.equal(gnu.err, tide.err)
        end
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

  -- GNU's CSV (combine_ref): records of fields, quoted ones with "" for ",
  -- across lines.
  local function parse_csv(text, sep)
    local rows, row, field, i = {}, {}, {}, 1
    local quoted = false
    while i <= #text do
      local c = text:sub(i, i)
      if quoted then
        if c == '"' and text:sub(i + 1, i + 1) == '"' then
          field[#field + 1] = '"'
          i = i + 1
        elseif c == '"' then
          quoted = false
        else
          field[#field + 1] = c
        end
      elseif c == '"' then
        quoted = true
      elseif c == sep or c == "\n" then
        row[#row + 1] = table.concat(field)
        field = {}
        if c == "\n" then
          rows[#rows + 1], row = row, {}
        end
      else
        field[#field + 1] = c
      end
      i = i + 1
    end
    return rows
  end

  -- The rows without Starttime and JobRuntime (columns 3 and 4), by Seq.
  local function comparable(rows)
    local head = table.remove(rows, 1)
    table.sort(rows, function(a, b)
      return tonumber(a[1]) < tonumber(b[1])
    end)
    table.insert(rows, 1, head)
    for _, r in ipairs(rows) do
      if r[1] ~= "Seq" then
        r[3], r[4] = "T", "T"
      end
    end
    return rows
  end

  describe("against GNU parallel, outputs to files", function()
    local CMD = { "echo {1} {2}; echo err{1} >&2; exit {3}", ":::", "a", "b c", 'q"x', ":::", "1", ":::", "0", "2" }
    for _, ext in ipairs({ "csv", "tsv" }) do
      it("--results x." .. ext .. " writes GNU's " .. ext .. " columns, stdout and stderr", function()
        if not have_parallel() then
          return pending("GNU parallel is not installed")
        end
        local t = {}
        for _, prog in ipairs({ "parallel --will-cite", q(h.TIDE) }) do
          local args = { "--results", "r." .. ext }
          table.move(CMD, 1, #CMD, 3, args)
          local r = run(prog, args)
          assert.are.equal("", r.out) -- nothing printed: it is all in the file
          t[#t + 1] = { code = r.code, rows = comparable(parse_csv(h.slurp(WORK .. "/r." .. ext), ext == "csv"
            and "," or "\t")) }
        end
        assert.are.equal(t[1].code, t[2].code)
        assert.are.equal(7, #t[1].rows) -- the header and 6 jobs
        assert.are.same(t[1].rows, t[2].rows)
      end)
    end

    it("--results x.json writes GNU's objects, one a line", function()
      if not have_parallel() then
        return pending("GNU parallel is not installed")
      end
      local t = {}
      for _, prog in ipairs({ "parallel --will-cite", q(h.TIDE) }) do
        run(prog, { "--results", "r.json", "echo {1} {2}; echo e >&2; exit {3}", ":::", "b c", "tab\there", 'q"x',
          ":::", "1", ":::", "0", "2" })
        local lines = {}
        for l in h.slurp(WORK .. "/r.json"):gmatch("[^\n]+") do
          lines[#lines + 1] = l:gsub('"Starttime": [%d.]+, "JobRuntime": [%d.]+', "T")
        end
        table.sort(lines)
        t[#t + 1] = table.concat(lines, "\n")
      end
      assert.truthy(t[1]:find('"V": [ "tab\\u0009here","1","2" ]', 1, true), t[1])
      assert.truthy(t[1]:find('"Stdout": "q\\"x 1\\u000a"', 1, true), t[1])
      assert.are.equal(t[1], t[2])
    end)

    it("--results x.csv with --header names the columns", function()
      if not have_parallel() then
        return pending("GNU parallel is not installed")
      end
      local t = {}
      for _, prog in ipairs({ "parallel --will-cite", q(h.TIDE) }) do
        run(prog, { "--results", "h.csv", "--header", ":", "echo", "{a}", ":::", "a", "1", "2", ":::", "b", "x" })
        t[#t + 1] = comparable(parse_csv(h.slurp(WORK .. "/h.csv"), ","))
      end
      assert.are.same({ "Seq", "Host", "Starttime", "JobRuntime", "Send", "Receive", "Exitval", "Signal", "Command",
        "a", "b", "Stdout", "Stderr" }, t[1][1])
      assert.are.same(t[1], t[2])
    end)

    it("--results x.csv -k: the rows in input order, jobs ending out of order", function()
      if not have_parallel() then
        return pending("GNU parallel is not installed")
      end
      local t = {}
      for _, prog in ipairs({ "parallel --will-cite", q(h.TIDE) }) do
        run(prog, { "-k", "-j3", "--results", "k.csv", "sleep 0.{}; echo {}", ":::", "3", "1", "2" })
        local seqs = {}
        for _, row in ipairs(parse_csv(h.slurp(WORK .. "/k.csv"), ",")) do
          seqs[#seqs + 1] = row[1] .. ":" .. row[#row - 1]
        end
        t[#t + 1] = table.concat(seqs, " ")
      end
      assert.are.equal("Seq:Stdout 1:3\n 2:1\n 3:2\n", t[1])
      assert.are.equal(t[1], t[2])
    end)

    it("--results x.csv before a script is refused, never a directory named x.csv", function()
      h.spit(WORK .. "/s.lua", "print(1)")
      local r = run(q(h.TIDE), { "--results", "x.csv", "s.lua" })
      assert.are.equal(255, r.code)
      assert.truthy(r.err:find("--results x.csv", 1, true), r.err)
      assert.is_nil(io.open(WORK .. "/x.csv"))
    end)

    it("--results x.csv that cannot be opened: exit 255", function()
      local r = run(q(h.TIDE), { "--results", "no/such/dir/x.csv", "tiderec", ":::", "a" })
      assert.are.equal(255, r.code)
      assert.truthy(r.err:find("x.csv", 1, true), r.err)
    end)

    it("--files prints the names of files holding each job's stdout, in order with -k", function()
      if not have_parallel() then
        return pending("GNU parallel is not installed")
      end
      local t = {}
      os.execute("mkdir -p " .. q(WORK .. "/tmp"))
      local env = "env TMPDIR=" .. q(WORK .. "/tmp") .. " "
      for _, prog in ipairs({ env .. "parallel --will-cite", env .. q(h.TIDE) }) do
        local r = run(prog, { "-k", "-j3", "--files", "sleep 0.{}; seq {}; echo err >&2", ":::", "3", "1", "2", "0" })
        local contents = {}
        for name in r.out:gmatch("[^\n]+") do
          assert.are.equal(WORK .. "/tmp/", name:sub(1, #WORK + 5)) -- in $TMPDIR
          contents[#contents + 1] = h.slurp(name)
        end
        t[#t + 1] = { code = r.code, err = r.err, contents = contents }
        os.execute("rm -rf " .. q(WORK .. "/tmp") .. "/*")
      end
      assert.are.same({ "1\n2\n3\n", "1\n", "1\n2\n", "" }, t[1].contents)
      assert.are.same(t[1], t[2])
    end)

    it("--files --tmpdir DIR", function()
      os.execute("mkdir -p " .. q(WORK .. "/other"))
      local r = run(q(h.TIDE), { "--files", "--tmpdir", "other", "echo", ":::", "x" })
      assert.are.equal(0, r.code, r.err)
      local name = r.out:match("[^\n]+")
      assert.truthy(name:find("^other/"), name)
      assert.are.equal("x\n", h.slurp(WORK .. "/" .. name))
      os.execute("rm -rf " .. q(WORK .. "/other"))
    end)
  end)

  describe("--pipe over a large input", function()
    it("passes every byte, holding a few blocks, never the input", function()
      if h.SANITIZED or os.execute("test -x /usr/bin/time") ~= true then
        return pending("ASan's quarantine holds freed memory; or no /usr/bin/time")
      end
      -- 100 MiB through 1 MiB blocks, 2 jobs at a time
      local cmd = ("cd %s && yes abcdefghijklmnopqrstuvwxyz | head -c 104857600 | /usr/bin/time -f %%M -o rss "
        .. "%s --pipe -j2 'wc -c' | awk '{n += $1; k++} END {print n, k}'"):format(q(WORK), q(h.TIDE))
      local p = io.popen(cmd)
      local out = p:read("a")
      p:close()
      -- every byte, in about 100 chunks (cut at the lines: 101)
      local total, chunks = out:match("^(%d+) (%d+)\n$")
      assert.are.equal("104857600", total, out)
      assert.truthy(tonumber(chunks) >= 100 and tonumber(chunks) <= 102, out)
      local kb = tonumber(h.slurp(WORK .. "/rss"):match("(%d+)%s*$"))
      assert.truthy(kb and kb < 40 * 1024, "tide's largest resident size: " .. tostring(kb) .. " KiB")
    end)
  end)

  describe("through a link named parallel", function()
    local link = WORK .. "/linkbin/parallel"
    os.execute(("mkdir -p %s && ln -s %s %s"):format(q(WORK .. "/linkbin"), q(h.TIDE), q(link)))

    it("runs each line of stdin as a command, as GNU parallel does", function()
      if not have_parallel() then
        return pending("GNU parallel is not installed")
      end
      local stdin = "tiderec a\ntiderec 'b c'\necho x\n"
      local gnu = run("parallel --will-cite -k", {}, stdin)
      local tide = run(q(link) .. " -k", {}, stdin)
      assert.are.equal("[a]\n[b c]\nx\n", gnu.out)
      assert.are.equal(gnu.out, tide.out)
      assert.are.equal(gnu.log, tide.log)
      assert.are.equal(gnu.code, tide.code)
      -- the same stdin given to tide by its own name is a Lua script
      local own = run(q(h.TIDE), {}, "print('lua')\n")
      assert.are.equal("lua\n", own.out)
    end)

    it("takes GNU parallel's options throughout: -v, report as a command, a .lua word", function()
      h.spit(WORK .. "/report", "#!/bin/sh\necho report ran \"$@\"\n")
      os.execute("chmod +x " .. q(WORK .. "/report"))
      local r = run("env PATH=.:$PATH " .. q(link), { "-k", "-v", "report", ":::", "x" })
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("report x\nreport ran x\n", r.out)
      r = run(q(link), { "echo", ":::", "a.lua" })
      assert.are.equal("a.lua\n", r.out)
      r = run(q(link), { "--version" })
      assert.truthy(r.out:find("not GNU parallel", 1, true), r.out)
    end)
  end)

  describe("bad values", function()
    for _, c in ipairs({
      { "--halt", "bogus" }, { "--timeout", "abc" }, { "--retries", "x" }, { "-j", "x" },
      { "--memfree", "zz" }, { "--delay", "x" }, { "--load", "high" }, { "--header", "x" },
      { "--nice", "high" }, { "--block", "big", "--pipe" }, { "--block", "0", "--pipe" }, { "--block", "1k" },
      { "--recend", ";" },
    }) do
      it("exit 255 naming " .. c[1] .. (c[3] and " " .. c[2] or "") .. ", running nothing", function()
        local r = run(q(h.TIDE), c[3] and { c[1], c[2], c[3], "tiderec" } or { c[1], c[2], "tiderec", ":::", "a" })
        assert.are.equal(255, r.code)
        assert.truthy(r.err:find(c[1], 1, true), r.err)
        assert.are.equal("", r.log)
      end)
    end

    for _, c in ipairs({
      { "--pipe with ::: input", { "--pipe", "tiderec", ":::", "a" }, "--pipe" },
      { "--recstart and --recend both empty", { "--pipe", "--recend", "", "tiderec" }, "--recend" },
      { "--plus, a Perl-only pattern", { "--plus", "tiderec", "{/(a|b)/x}", ":::", "a" }, "Perl" },
      { "--plus {host}", { "--plus", "tiderec", "{host}", ":::", "a" }, "{host}" },
      { "--plus {##} with --pipe", { "--pipe", "--plus", "tiderec", "{##}" }, "{##}" },
      { "--pipe --resume", { "--pipe", "--joblog", "jl", "--resume", "tiderec" }, "--resume" },
    }) do
      it(c[1] .. ": exit 255, running nothing", function()
        local r = run(q(h.TIDE), c[2], "x\n")
        assert.are.equal(255, r.code, r.err)
        assert.truthy(r.err:find(c[3], 1, true), r.err)
        assert.are.equal("", r.log)
      end)
    end

    it("--pipe: stdin that cannot be read is an error, exit 255, not an end of input", function()
      local p = io.popen(("cd %s && %s --pipe cat <. 2>err; echo $?"):format(q(WORK), q(h.TIDE)))
      local code = p:read("n")
      p:close()
      assert.are.equal(255, code)
      assert.are.equal("tide: --pipe: cannot read stdin: Is a directory\n", h.slurp(WORK .. "/err"))
    end)

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
