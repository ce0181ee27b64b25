-- module_spec.lua: tide.so, `require "tide"` from a plain lua5.4 (issue
-- #17).  The same scripts run under tide and under lua5.4 print the same;
-- Ctrl-C of a lua5.4 running a map kills its jobs, as under tide.
local h = require("tests.helper")
local q = h.quote

local DIR = h.TIDE:match("^(.*)/[^/]*$")
local MODULE = DIR .. "/tide.so"

local function available()
  local f = io.open(MODULE)
  if f then
    f:close()
  end
  return f ~= nil and not h.SANITIZED and os.execute("command -v lua5.4 >/dev/null") == true
end

-- Runs the script with lua5.4, tide.so first on its cpath.
local function lua(path, opts)
  opts = opts or {}
  local cmd = ("cd %s && LUA_CPATH=%s timeout -s KILL 60 lua5.4 %s </dev/null 2>%s; echo \"$?\""):format(
    q(opts.cwd or "."), q(DIR .. "/?.so;;"), q(path), q(path .. ".err"))
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  local code = tonumber(out:match("(%d+)\n$"))
  return { out = out:gsub("%d+\n$", ""), code = code, err = h.slurp(path .. ".err") }
end

-- The scripts, each run both ways.  They say `require "tide"`, which the
-- host also answers, and print what they found.
local SCRIPTS = {
  ["map and shell"] = [[
    local t = require "tide"
    local r = t.pool(3):map(function(x)
      return t.shell("echo out" .. x .. "; echo err" .. x .. " >&2; exit " .. (x % 2), {capture = true})
    end, {1, 2, 3, 4})
    for i, v in ipairs(r) do print(i, v.ok, v.code, v.stdout, v.stderr) end
  ]],
  ["output in input order"] = [[
    local t = require "tide"
    t.pool{jobs = 4, order = "input"}:map(function(x)
      return t.shell(("sleep 0.0%d; echo %d"):format(5 - x, x))
    end, {1, 2, 3, 4})
  ]],
  ["the sweep library, json and csv"] = [[
    local t = require "tide"
    local rows = t.collect(t.grid{{"a", {1, 2}}, {"b", {"x", "y"}}})
    print(t.json.encode(rows))
    print(t.fmt("run --a {a} --b {b}", rows[4]))
    local r = t.pool(2):map(function(p)
      return t.shell(t.argv({"echo", "{a}{b}"}, p), {capture = true}).stdout
    end, rows)
    print(table.concat(r))
  ]],
  ["timeouts, retries and a failed job's result"] = [[
    local t = require "tide"
    local r = t.shell("sleep 5", {timeout = 0.2})
    print(r.ok, r.timed_out, r.signal)
    r = t.shell("exit 3", {retries = 2})
    print(r.ok, r.code, r.attempts)
    r = t.shell({"no-such-program-tide"})
    print(r.ok, r.code)
  ]],
  ["an error in a task stops the map"] = [[
    local t = require "tide"
    local ok, err = pcall(function()
      return t.pool(2):map(function(x)
        if x == 2 then error("boom") end
        return t.shell("sleep 5")
      end, {1, 2, 3})
    end)
    print(ok, (tostring(err):match("map: item 2 failed: [^\n]*boom")))
  ]],
  ["stop, records and resume"] = [[
    local t = require "tide"
    os.remove("rec.jsonl")
    local res = t.pool{jobs = 1, record = "rec.jsonl"}:map(function(x)
      t.shell("true")
      return x * 10
    end, {1, 2, 3}, {stop_when = function(v) return v >= 20 and "enough" end})
    print(res.stopped, res[1], res[2])
    for _, row in ipairs(t.records("rec.jsonl")) do print(row.item, row.value, row.status) end
  ]],
}

describe("require 'tide' from lua5.4 (tide.so)", function()
  local work
  setup(function()
    work = h.tmpdir()
  end)
  teardown(function()
    os.execute("rm -rf " .. q(work))
  end)

  it("runs the brief's one-liner", function()
    if not available() then
      return pending("tide.so is not built (a sanitized build), or no lua5.4")
    end
    local path = h.spit(work .. "/one.lua", [[
      local t = require "tide"
      print(t.pool(2):map(function(x) return t.shell("echo " .. x).ok end, {1, 2})[1])
    ]])
    local r = lua(path)
    assert.are.equal(0, r.code, r.err)
    -- the jobs' lines in the order they ended, then map's first result
    assert.truthy(r.out == "1\n2\ntrue\n" or r.out == "2\n1\ntrue\n", r.out)
    assert.are.equal("", r.err)
  end)

  for name, src in pairs(SCRIPTS) do
    it("prints what tide prints: " .. name, function()
      if not available() then
        return pending("tide.so is not built (a sanitized build), or no lua5.4")
      end
      local path = h.spit(work .. "/s.lua", src)
      local host = h.run({ path }, { cwd = work })
      local mod = lua(path, { cwd = work })
      assert.are.equal(host.out, mod.out)
      assert.truthy(#host.out > 0)
      assert.are.equal(0, mod.code, mod.err)
    end)
  end

  it("lets a task's Lua error reach lua5.4 as an error", function()
    if not available() then
      return pending("tide.so is not built (a sanitized build), or no lua5.4")
    end
    local path = h.spit(work .. "/e.lua", [[
      local t = require "tide"
      t.pool(2):map(function(x) if x == 2 then error("bad item") end end, {1, 2})
    ]])
    local r = lua(path)
    assert.are.equal(1, r.code)
    assert.truthy(r.err:find("map: item 2 failed: .*bad item"), r.err)
  end)

  it("kills the jobs of a map when lua5.4 gets Ctrl-C, and dies of SIGINT", function()
    if not available() then
      return pending("tide.so is not built (a sanitized build), or no lua5.4")
    end
    local marker = h.mark("module")
    -- helper's signal runner (signals at their defaults), with a lua5.4
    -- that finds tide.so in place of tide
    local wrapper = h.spit(work .. "/lua-with-tide", ("#!/bin/sh\nLUA_CPATH=%s exec lua5.4 \"$@\"\n")
      :format(q(DIR .. "/?.so;;")))
    os.execute("chmod +x " .. q(wrapper))
    local tide = h.TIDE
    h.TIDE = wrapper
    local ok, r = pcall(h.signal_run, ([[
      local t = require "tide"
      t.pool(3):map(function(x)
        return t.shell(("touch ready%%d; exec %s 60"):format(x))
      end, {1, 2, 3})
    ]]):format(h.sleeper(marker)), { ready = 3, signals = { { 0, "INT" } } })
    h.TIDE = tide
    assert(ok, r)
    assert.are.equal(130, r.code, r.err)
    assert.are.equal(0, h.gone(marker, 5))
    assert.truthy(r.err:find("stopped by SIGINT", 1, true))
  end)

  it("kills running jobs at os.exit", function()
    if not available() then
      return pending("tide.so is not built (a sanitized build), or no lua5.4")
    end
    local marker = h.mark("moduleexit")
    local path = h.spit(work .. "/x.lua", ([[
      local t = require "tide"
      t.pool(2):map(function(x)
        if x == 2 then t.sleep(0.3); os.exit(7) end
        return t.shell("exec %s 60")
      end, {1, 2})
    ]]):format(h.sleeper(marker)))
    local r = lua(path)
    assert.are.equal(7, r.code)
    assert.are.equal(0, h.gone(marker, 5))
  end)
end)
