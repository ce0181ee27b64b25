-- fmt, argv and quote: commands built from items.  Hostile values are
-- checked by running the command and comparing the argv the program got.
local h = require("tests.helper")

local function run(src, opts)
  local r = h.script(src, {}, opts)
  assert.are.equal(0, r.code, r.err)
  return r.out
end

local error_of = h.error_of

-- In the scripts below: HOSTILE, values that break naive quoting, and
-- PRINTER, a command printing each argument it got as "length:bytes\n"
-- (dash's ${#a} counts bytes; LC_ALL=C makes any sh do so).
local PRELUDE = [==[
HOSTILE = {
  "it's", '"dq"', "$(touch PWNED)", "`touch PWNED`", "a\nb", "*", "-n", "--", "", "\xff\xfe",
  " lead", "trail ", "a  b\tc", "x=y", "if", "~", "$HOME", "${HOME}", "a;b", "a|b&c", ">out",
  "<in", "\\", "!", "#c", "'", "''", "{}", "{x}", "%s", "\r\n", "-", "--lr=1", "é",
}
PRINTER = [[sh -c 'for a do printf "%s:%s\n" "${#a}" "$a"; done' sh]]
function expect(...)
  local out = {}
  for _, v in ipairs({ ... }) do out[#out + 1] = #v .. ":" .. v .. "\n" end
  return table.concat(out)
end
OPTS = { capture = true, env = { LC_ALL = "C" } }
]==]

describe("fmt", function()
  it("fills fields by name, index and number, and applies path modifiers", function()
    local out = run([[
      print(fmt("prog --lr {lr} --depth {depth} run{#}", { lr = 0.01, depth = 3 }, 7))
      print(fmt("{1} {2} {} {1}", { "a", "b" }), fmt("x {} {1}", "plain"), fmt("{}", 2.5))
      local f = { f = "/data/run 1/model.tar.gz" }
      print(fmt("{f.}|{f/}|{f//}|{f/.}", f))
      print(fmt("{.}|{/}|{//}|{/.}", "a.b/c"))
      for _, p in ipairs({ "file", "/file", "dir/", ".bashrc", "d/.x.conf", "a.", "/", "a//b//" }) do
        io.write(fmt("{.}|{/}|{//}|{/.}", p), "  ")
      end
      print()
      print(fmt("{flag} {n}", { flag = true, n = math.maxinteger }))
    ]])
    assert.are.equal("prog --lr 0.01 --depth 3 run7\na b a b a\tx plain plain\t2.5\n"
      .. "'/data/run 1/model.tar'|model.tar.gz|'/data/run 1'|model.tar\n"
      .. "a.b/c|c|a.b|c\n"
      .. "file|file|.|file  /file|file|/|file  dir/|''|.|''  .bashrc|.bashrc|.|.bashrc  "
      .. "d/.x|.x.conf|d|.x  a|a.|.|a  /|''|/|''  a//b//|''|a|''  \n"
      .. "true 9223372036854775807\n", out)
  end)

  it("leaves non-placeholder braces alone and writes {{name}} as {name}", function()
    local out = run([[
      print(fmt("awk '{print $1}' {f} {{f}} {{}} ${{HOME}} {a,b} { x; } {f.txt}", { f = "data" }))
      local r = shell(fmt("printf 'a b\n' | awk '{print $2}' && echo {x}", { x = "ok" }), { capture = true })
      print(r.stdout)
    ]])
    assert.are.equal("awk '{print $1}' data {f} {} ${HOME} {a,b} { x; } {f.txt}\nb\nok\n\n", out)
  end)

  it("quotes only when needed, so plain commands still run without a shell", function()
    local out = run([[
      print(fmt("prog --lr {lr} --out {out}", { lr = 1e-3, out = "runs/a-b_c.txt" }))
      print(fmt("{} {}", { "a b", "it's" }))
      print(quote("plain"), quote(""), quote("if"), quote("a=b"), quote("--x=1"), quote(5))
      print(quote == require("tide").quote)
    ]])
    assert.are.equal("prog --lr 0.001 --out runs/a-b_c.txt\n'a b' 'it'\\''s' 'a b' 'it'\\''s'\n"
      .. "plain\t''\t'if'\t'a=b'\t--x=1\t5\ntrue\n", out)
  end)

  it("makes every hostile value arrive as exactly one argument", function()
    local dir = h.tmpdir()
    local out = run(PRELUDE .. [[
      local bad = 0
      local function check(what, r, want)
        if r.stdout ~= want then
          bad = bad + 1
          print(what, ("%q"):format(r.cmd), ("%q"):format(r.stdout), r.stderr)
        end
      end
      for _, v in ipairs(HOSTILE) do
        check("fmt {}", shell(fmt(PRINTER .. " {} x", v), OPTS), expect(v, "x"))
        check("fmt {a}", shell(fmt(PRINTER .. " --in={a} {b}", { a = v, b = v }), OPTS), expect("--in=" .. v, v))
        check("fmt {/}", shell(fmt(PRINTER .. " {/}", "dir/" .. v), OPTS), expect((v:gsub("^.*/", ""))))
        check("argv", shell(argv("printf %s\\0 {} x", v), OPTS), v .. "\0x\0")
        check("argv table", shell(argv({ "sh", "-c", 'for a do printf "%s:%s\\n" "${#a}" "$a"; done', "sh",
          "{}", "pre{}post" }, v), OPTS), expect(v, "pre" .. v .. "post"))
      end
      -- all of them at once, as an array item, through a pool, with {#}
      local rs = pool(4):map(function(v, i)
        return shell(fmt(PRINTER .. " {} {#}", v, i), OPTS).stdout == expect(v, tostring(i))
      end, HOSTILE)
      local all = shell(fmt(PRINTER .. " {}", HOSTILE), OPTS)
      check("array", all, expect(table.unpack(HOSTILE)))
      local n = 0
      for _, ok in ipairs(rs) do n = n + (ok and 1 or 0) end
      print(bad, n == #HOSTILE, #collect(glob("*")))
    ]], { cwd = dir })
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal("0\ttrue\t0\n", out)
  end)

  it("keeps a value in command position a plain word: no assignment, no keyword", function()
    local r = h.script([[
      for _, v in ipairs({ "a=b", "if", "do", "x=1", "in" }) do
        local r = shell(fmt("{} arg", v), { capture = true })
        io.write(r.code, " ", r.stderr:match("not found") and "nf" or r.stderr, " ")
      end
      print()
    ]])
    assert.are.equal("127 nf 127 nf 127 nf 127 nf 127 nf \n", r.out)
    assert.are.equal(1, r.code) -- the jobs failed, as they should
  end)

  it("names a missing field and other misuse", function()
    assert.are.equal("tide: script.lua:1: bad argument #2 to 'fmt' (the item has no field 'lr' for {lr})",
      error_of("fmt('prog --lr {lr}', { depth = 1 })"))
    assert.are.equal("tide: script.lua:1: bad argument #2 to 'fmt' (the item has no field 2 for {2/})",
      error_of("fmt('{1} {2/}', { 'a' })"))
    assert.are.equal("tide: script.lua:1: bad argument #3 to 'fmt' ({#} needs the item's number: "
      .. "fmt(template, item, i))", error_of("fmt('run {#}', 'x')"))
    assert.are.equal("tide: script.lua:1: bad argument #2 to 'fmt' ({x} contains a NUL byte, which no "
      .. "argument can hold)", error_of("fmt('{x}', { x = 'a\\0b' })"))
    assert.are.equal("tide: script.lua:1: bad argument #2 to 'fmt' ({x} is a table, not a string or a number)",
      error_of("fmt('{x}', { x = {} })"))
    assert.are.equal("tide: script.lua:1: bad argument #2 to 'fmt' ({} needs a plain value or an array item; "
      .. "name a field, as in {name})", error_of("fmt('{}', { a = 1 })"))
    assert.are.equal("tide: script.lua:1: bad argument #2 to 'fmt' ({name} needs a table item, got a string)",
      error_of("fmt('{name}', 'x')"))
    assert.are.equal("tide: script.lua:1: bad argument #1 to 'fmt' (template string expected, got nil)",
      error_of("fmt(nil, {})"))
    assert.are.equal("tide: script.lua:1: bad argument #1 to 'quote' (string expected, got table)",
      error_of("quote({})"))
  end)
end)

describe("argv", function()
  it("splits the template into words first, then fills each word in", function()
    local out = run([[
      local function show(t) print(#t, table.concat(t, "|")) end
      show(argv("prog  --lr={lr}\t{name} -o {out/.}.log", { lr = 0.5, name = "a b", out = "x/y z.txt" }))
      show(argv("prog {} end", { "one", "t w o", "" }))
      show(argv("prog {}", ""))
      show(argv({ "prog", "--msg", "hello {who}", 3 }, { who = "you all" }))
      show(argv("run {#}", nil, 4))
    ]])
    assert.are.equal("5\tprog|--lr=0.5|a b|-o|y z.log\n5\tprog|one|t w o||end\n2\tprog|\n"
      .. "4\tprog|--msg|hello you all|3\n2\trun|4\n", out)
  end)

  it("rejects an array item's {} inside a longer word", function()
    assert.are.equal("tide: script.lua:1: bad argument #2 to 'argv' ({} of an array item must be a word of its "
      .. "own, to give one argument per element)", error_of("argv('prog --x={}', { 1, 2 })"))
  end)
end)
