-- gnu_parallel_doc_spec.lua: docs/gnu-parallel.md agrees with the code.
-- Every option of GNU parallel's (lua/tide/cli/init.lua's GNU table) has
-- one row; every option tide takes (OPTIONS) is marked as taken; none it
-- lacks is; and tide really refuses the ones marked "not implemented".
local h = require("tests.helper")

-- name -> "gnu", "option", "not_yet", from the code.
local function code_tables()
  local r = h.run({ "-e", [[
    local cli = require("tide.cli")
    for k in pairs(cli.GNU) do print("gnu", k) end
    for k in pairs(cli.OPTIONS) do print("option", k) end
    for k in pairs(cli.NOT_YET) do print("not_yet", k) end
  ]] })
  assert.are.equal(0, r.code, r.err)
  local t = { gnu = {}, option = {}, not_yet = {} }
  for kind, name in r.out:gmatch("(%S+)\t(%S+)") do
    t[kind][name] = true
  end
  return t
end

-- The page's rows: option -> status, for the GNU table; and the set of
-- tide's own options.
local function page()
  local text = h.slurp("docs/gnu-parallel.md")
  local own_part, gnu_part = text:match("\n## tide's own options\n(.-)\n## Every GNU parallel option\n(.*)$")
  assert.truthy(own_part and gnu_part, "the page's two sections")
  local rows, own = {}, {}
  for name, status in gnu_part:gmatch("\n| `([^`]+)` | ([^|]-) |") do
    assert.is_nil(rows[name], name .. " has two rows")
    rows[name] = status
  end
  for name in own_part:gmatch("\n| `(%-%-?[%w-]+)[^`]*` |") do
    own[name] = true
  end
  return rows, own
end

local LUA_OPTIONS = { ["-e"] = true, ["-l"] = true, ["-E"] = true, ["-W"] = true, ["-h"] = true }

describe("docs/gnu-parallel.md", function()
  local code, rows, own
  setup(function()
    code = code_tables()
    rows, own = page()
  end)

  it("has one row for every option of GNU parallel's, and no other", function()
    for name in pairs(code.gnu) do
      assert.truthy(rows[name], name .. " has no row")
    end
    for name in pairs(rows) do
      assert.truthy(code.gnu[name], name .. " is not an option of GNU parallel's")
    end
  end)

  it("marks every option tide takes as taken, and only those", function()
    for name, status in pairs(rows) do
      if status == "same" or status == "differs" then
        assert.truthy(code.option[name] and not code.not_yet[name], name .. " is marked " .. status)
      elseif status == "not implemented yet" then
        assert.truthy(code.not_yet[name], name .. " is marked " .. status)
      elseif status == "lua's option" then
        assert.truthy(LUA_OPTIONS[name] and not code.option[name], name .. " is marked " .. status)
      else
        assert.are.equal("not implemented", status, name)
        assert.falsy(code.option[name], name .. " is taken by tide but marked not implemented")
      end
    end
    for name in pairs(code.option) do
      assert.truthy(rows[name] or own[name], name .. " is missing from the page")
    end
  end)

  it("lists tide's own options, which GNU parallel does not have", function()
    for name in pairs(own) do
      assert.truthy(code.option[name], name .. " is not an option of tide's")
      assert.falsy(code.gnu[name], name .. " is GNU parallel's")
    end
  end)

  it("is right that tide refuses the options marked not implemented", function()
    local script = { "e=$(mktemp); for o in" }
    local n = 0
    for name, status in pairs(rows) do
      if status == "not implemented" or status == "not implemented yet" then
        script[#script + 1] = h.quote(name)
        n = n + 1
      end
    end
    -- one shell runs them all: tide OPT echo ::: a, exit status and message
    script[#script + 1] = [[; do "$TIDE" "$o" echo ::: a </dev/null >/dev/null 2>"$e"; c=$?
      if [ $c -ne 255 ] || ! grep -qF -e "$o" "$e"; then echo "$o $c $(cat "$e")"; fi; done; rm -f "$e"]]
    local r = h.sh(table.concat(script, " "), { env = { TIDE = h.TIDE } })
    assert.truthy(n > 200)
    assert.are.equal("", r.out)
  end)
end)
