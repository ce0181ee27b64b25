-- man_spec.lua: the man page (doc/tide.1) and the bash completion
-- (completions/tide.bash) render, are clean, and name every one-liner option
-- tide has (the OPTIONS table of lua/tide/cli/init.lua), so neither goes
-- stale when an option is added.
local h = require("tests.helper")
local q = h.quote

-- The source tree (ctest runs specs from there).
local ROOT = io.popen("pwd"):read("l")

local sh, have = h.out_of, h.have

-- The one-liner options tide has, from the code itself.
local function options()
  local r = h.run({ "-e", "for k in pairs(require('tide.cli').OPTIONS) do print(k) end" })
  assert.are.equal(0, r.code, r.err)
  local list = {}
  for name in r.out:gmatch("[^\n]+") do
    list[#list + 1] = name
  end
  table.sort(list)
  assert.is_true(#list > 50)
  return list
end

describe("the man page", function()
  it("renders with man -l", function()
    if not have("man") then
      return pending("man is not installed (apt-get install man-db)")
    end
    local out, code = sh("MANWIDTH=80 man -l -P cat doc/tide.1")
    assert.are.equal(0, code, out)
    assert.truthy(out:find("NAME\n       tide %- run jobs in parallel"))
    for _, section in ipairs({ "SYNOPSIS", "ONE%-LINERS", "ENVIRONMENT", "EXIT STATUS", "FILES" }) do
      assert.truthy(out:find("\n" .. section .. "\n"), section)
    end
  end)

  it("gives no warnings under groff -ww", function()
    if not have("groff") then
      return pending("groff is not installed")
    end
    local out, code = sh("groff -ww -man -Tutf8 -z doc/tide.1")
    assert.are.equal(0, code)
    assert.are.equal("", out)
  end)

  it("is clean under mandoc -T lint", function()
    if not have("mandoc") then
      return pending("mandoc is not installed (apt-get install mandoc)")
    end
    local out, code = sh("mandoc -T lint -W style doc/tide.1")
    assert.are.equal("", out)
    assert.are.equal(0, code)
  end)

  it("names every one-liner option and environment variable tide reads", function()
    local src = h.slurp("doc/tide.1"):gsub("\\f[BIRP]", ""):gsub("\\%-", "-")
    for _, name in ipairs(options()) do
      assert.truthy(src:find("[^%w%-]" .. name:gsub("%-", "%%-") .. "[^%w%-]"), name .. " is not in doc/tide.1")
    end
    local vars = sh("grep -rhoE 'getenv\\(\"(TIDE|LUA)_[A-Z_]+' lua src")
    for var in vars:gmatch('getenv%("([%w_]+)') do
      assert.truthy(src:find(var, 1, true), var .. " is not in doc/tide.1")
    end
  end)
end)

describe("the bash completion", function()
  -- What bash completes for the words (the last one is being typed), run
  -- in dir.
  local function complete(words, dir)
    local w = {}
    for i, x in ipairs(words) do
      w[i] = q(x)
    end
    local script = ("source %s/completions/tide.bash; COMP_WORDS=(%s); COMP_CWORD=%d; _tide; "
      .. "printf '%%s\\n' \"${COMPREPLY[@]}\" | sort -u"):format(q(ROOT), table.concat(w, " "), #words - 1)
    local out, code = sh(("cd %s && bash -c %s"):format(q(dir or "."), q(script)))
    assert.are.equal(0, code, out)
    local set = {}
    for x in out:gmatch("[^\n]+") do
      set[x] = true
    end
    return set, out
  end

  local dir
  setup(function()
    dir = h.tmpdir()
    os.execute(("cd %s && touch sweep.lua notes.txt && mkdir sub"):format(q(dir)))
  end)
  teardown(function()
    os.execute("rm -rf " .. q(dir))
  end)

  it("offers tide's options and every one-liner option", function()
    local set, out = complete({ "tide", "-" })
    for _, name in ipairs(options()) do
      assert.is_true(set[name], name .. " is not completed:\n" .. out)
    end
    for _, name in ipairs({ "-e", "-l", "-E", "-W", "--version", "--" }) do
      assert.is_true(set[name], name)
    end
    set = complete({ "tide", "--jo" })
    assert.are.same({ ["--jobs"] = true, ["--joblog"] = true }, set)
  end)

  it("offers scripts and directories for the first word, files for a file option", function()
    local set = complete({ "tide", "" }, dir)
    assert.are.same({ ["sweep.lua"] = true, sub = true }, set)
    set = complete({ "tide", "-j", "4", "--joblog", "" }, dir)
    assert.are.same({ ["sweep.lua"] = true, ["notes.txt"] = true, sub = true }, set)
    set = complete({ "tide", "--workdir", "" }, dir)
    assert.are.same({ sub = true }, set)
    set = complete({ "tide", "-j", "" }, dir)
    assert.are.same({}, set)
  end)

  it("offers files after the command, and commands for a one-liner", function()
    local set = complete({ "tide", "--tag", "gzip", "" }, dir)
    assert.is_true(set["notes.txt"])
    set = complete({ "tide", "gzi" }, dir)
    assert.is_true(set.gzip)
    set = complete({ "tide", "report", "x.jsonl", "-" }, dir)
    assert.is_true(set["-o"] and set["--trace"])
  end)
end)
