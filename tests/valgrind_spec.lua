-- Runs a workout of the C half under valgrind: memory errors and leaks fail.
-- (valgrind has no pidfd_open, so this also covers the SIGCHLD fallback.)
local h = require("tests.helper")

local has_valgrind = os.execute("command -v valgrind >/dev/null 2>&1")

local workout = [[
  local r = pool(3):map(function(i)
    return shell({"sh", "-c", "head -c $0 /dev/zero; echo e >&2; exit $1", i * 700000, i % 2},
                 {capture = true})
  end, {1, 2, 3, 4})
  assert(#r[2].stdout == 1400000 and r[1].ok == false and r[2].ok == true)
  shell("printf 'grouped\\n'")
  shell({"cat"}, {stdin = "fed\n", env = {X = "1"}, cwd = "/"})
  assert(not shell("nosuch-program-xyz", {capture = true}).ok)
  local ok = pcall(pool(2).map, pool(2), function(i) if i == 2 then error("boom") end
    shell("sleep 5") end, {1, 2})
  assert(not ok)
  require("tide").sleep(0.01)
  assert(shell("true", {timeout = 5, retries = 1}).ok)  -- a deadline cancelled
  assert(shell("sleep 5", {timeout = 0.05}).timed_out)   -- a deadline that fires
  -- output modes: watched lines and pieces, held and stored output, results files
  local dir = os.tmpname()
  os.remove(dir)
  pool{jobs = 3, output = "line", tag = true, order = "input"}:map(function(i)
    return shell(("printf 'a%d\\nb'; sleep 0.0%d; echo c >&2"):format(i, 4 - i))
  end, {1, 2, 3})
  pool{jobs = 3, order = "input", results = dir}:map(function(i)
    return shell(("sleep 0.0%d; head -c %d /dev/zero"):format(4 - i, i * 700000), {newline = true})
  end, {1, 2, 3})
  local seen = 0
  shell("head -c 5000 /dev/zero; echo; echo x >&2", {output = "line", max_line = 1000,
    on_line = function(_, stream) seen = seen + 1 return stream == "stderr" end})
  assert(seen >= 6)
  shell("echo kept; echo dropped", {tag = true, on_line = function(l) return l ~= "dropped" end})
  shell("printf raw", {output = "ungroup", results = dir})
  shell("echo filed", {output = "null", results = dir})
  local c = shell("head -c 3000000 /dev/zero; echo end", {capture = true, max_output = "2M"})
  assert(c.truncated and #c.stdout == 2 * 1048576)
  assert(not shell("nosuch-program-xyz", {output = "line", results = dir}).ok)
  assert(not pcall(shell, "echo x; sleep 5", {on_line = function() error("boom") end}))
  os.execute("rm -rf " .. dir)
  -- jobs on a worker (virtual jobs, frames): tests/fakessh runs it here
  local H = {"2/" .. os.getenv("TIDE_FAKESSH") .. " h1"}
  local w = pool{jobs = 2, hosts = H}:map(function(i)
    return shell("head -c 100000 /dev/zero; exit " .. i % 2, {capture = true})
  end, {1, 2, 3})
  assert(#w[1].stdout == 100000 and w[2].ok and not w[1].ok)
  pool{hosts = H, output = "line", tag = true, order = "input"}:map(function(i)
    return shell("echo w" .. i)
  end, {1, 2})
  assert(shell("sleep 5", {hosts = H, timeout = 0.05}).timed_out)
]]

describe("under valgrind", function()
  if h.SANITIZED or not has_valgrind then
    pending("valgrind not installed or sanitizer build")
    return
  end
  it("has no memory errors or leaks in a workout of jobs, pipes, spills and cancellation", function()
    local dir = h.tmpdir()
    local script = h.spit(dir .. "/w.lua", workout)
    local env = { TIDE_FAKESSH = io.popen("pwd"):read("l") .. "/tests/fakessh" }
    local r = h.run({ script }, { env = env })
    local cmd = ("valgrind -q --error-exitcode=99 --leak-check=full "
      .. "--show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect "
      .. "%s %s >%s/out 2>%s/err; echo $?"):format(h.quote(h.TIDE), script, dir, dir)
    cmd = "TIDE_FAKESSH=" .. h.quote(env.TIDE_FAKESSH) .. " " .. cmd
    local p = io.popen(cmd)
    local code = p:read("n")
    p:close()
    local err = h.slurp(dir .. "/err"):gsub("[^\n]*syscall: 434[^\n]*\n", "")
      :gsub("%-%-%d+%-%-[^\n]*\n", "")
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(1, r.code) -- the workout has failing jobs on purpose
    assert.are.equal(1, code, err)
    assert.is_nil(err:find("==%d+=="), err)
    assert.truthy(err:find("tide: 10 of 29 jobs failed", 1, true), err)
  end)

  it("has no memory errors or leaks as a worker (tide --worker reading a pipe)", function()
    local dir = h.tmpdir()
    -- run 1: sh -c "echo hi; exit 3"; then stdin stays open until its end
    local req = "run 1 7 0 0 0 1 2 2 19\n3sh-cecho hi >&2; exit 3"
    local cmd = ("{ printf '%%s' %s; while ! grep -qa 'end 1 6 ' %s/out 2>/dev/null; do sleep 0.05; done; } | "
      .. "valgrind -q --error-exitcode=99 --leak-check=full "
      .. "--show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect "
      .. "%s --worker >%s/out 2>%s/err; echo $?"):format(h.quote(req), dir, h.quote(h.TIDE), dir, dir)
    local p = io.popen(cmd)
    local code = p:read("n")
    p:close()
    local out = h.slurp(dir .. "/out")
    local err = h.slurp(dir .. "/err"):gsub("[^\n]*syscall: 434[^\n]*\n", ""):gsub("%-%-%d+%-%-[^\n]*\n", "")
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(0, code, err)
    assert.is_nil(err:find("==%d+=="), err)
    assert.truthy(out:find("out 1 2 1 3\n2hi\n", 1, true), out)
    assert.truthy(out:find("end 1 6 1 0 ", 1, true), out)
  end)
end)
