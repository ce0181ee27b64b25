-- tide --worker on its own (backend/serve.lua): the frames it reads and
-- writes, its jobs' end when its stdin closes, and bad input.  The ssh
-- and Slurm backends over workers are tests/backend_worker_spec.lua.
local h = require("tests.helper")

-- A request frame (backend/frame.lua): KIND ID N LEN... "\n" STRINGS.
local function frame(kind, id, ...)
  local s, lens = { ... }, {}
  for i, v in ipairs(s) do
    lens[i] = #v
  end
  return ("%s %d %d%s\n%s"):format(kind, id, #s, #s > 0 and " " .. table.concat(lens, " ") or "", table.concat(s))
end

local function run_req(id, argv, stdin)
  local s = { stdin and "i" or "", "", stdin or "", tostring(#argv) }
  for _, a in ipairs(argv) do
    s[#s + 1] = a
  end
  return frame("run", id, table.unpack(s))
end

local function worker(input, opts)
  opts = opts or {}
  opts.stdin = input
  return h.run({ "--worker" }, opts)
end

-- The worker's stdin stays open until it has sent n end frames (a closed
-- stdin stops its jobs): what a coordinator does.
local function served(input, n)
  local dir = h.tmpdir()
  local req = h.spit(dir .. "/req", input)
  local r = h.sh(("{ cat %s; while n=$(grep -ac 'end [0-9]* 6 ' %s/out 2>/dev/null); "
    .. "[ \"${n:-0}\" -lt %d ]; do sleep 0.02; done; } | %s --worker > %s/out; echo $? > %s/code")
    :format(h.quote(req), dir, n, h.quote(h.TIDE), dir, dir))
  r.out, r.code = h.slurp(dir .. "/out"), tonumber(h.slurp(dir .. "/code"))
  os.execute("rm -rf " .. h.quote(dir))
  return r
end

describe("tide --worker", function()
  it("says hello and exits when its stdin ends", function()
    local r = worker("")
    assert.are.equal(0, r.code, r.err)
    assert.matches("^hello 0 5 %d+ %d+ %d+ %d+ 0\n1", r.out) -- no device variables
  end)

  it("says in its hello which devices its environment gives it (Slurm's GRES)", function()
    local r = worker("", { env = { CUDA_VISIBLE_DEVICES = "2,3", ROCR_VISIBLE_DEVICES = "1" } })
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("CUDA_VISIBLE_DEVICES=2,3\nROCR_VISIBLE_DEVICES=1$"), r.out)
  end)

  it("runs a job and sends its output and its end, bytes exact", function()
    local r = served(run_req(7, { "sh", "-c", "printf 'a\\000b'; echo e >&2; exit 3" }, "in"), 1)
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("out 7 2 1 3\n1a\0b", 1, true), r.out)
    assert.truthy(r.out:find("out 7 2 1 2\n2e\n", 1, true), r.out)
    assert.matches("end 7 6 1 0 ", r.out) -- code 3, no signal
    assert.truthy(r.out:find("\n3", 1, true))
  end)

  it("reports a command that cannot start", function()
    local r = served(run_req(1, { "/nonexistent/prog" }) .. run_req(2, { "true" }), 1)
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("ENOENT", 1, true), r.out)
    assert.matches("fail 1 2 ", r.out)
  end)

  it("stops its jobs when its stdin closes: nothing outlives it", function()
    local mark = h.mark("workereof")
    local S = h.sleeper(mark)
    local r = worker(run_req(1, { S, "300" }), { timeout = 30 })
    assert.are.equal(0, r.code, r.err)
    assert.matches("end 1 6 0 7 ", r.out) -- ended by a signal
    assert.truthy(r.out:find("SIGTERM", 1, true), r.out)
    assert.are.equal(0, h.gone(mark, 5))
  end)

  it("refuses what is not a frame, and arguments", function()
    local r = worker("GET / HTTP/1.0\n\n")
    assert.are_not.equal(0, r.code)
    assert.truthy(r.err:find("not a tide worker", 1, true), r.err)
    r = worker(frame("jump", 1))
    assert.are_not.equal(0, r.code)
    assert.truthy(r.err:find('unknown request "jump"', 1, true), r.err)
    r = h.run({ "--worker", "x" })
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("--worker takes no arguments", 1, true), r.err)
  end)
end)

describe("frames (backend/frame.lua)", function()
  it("read the same pushed a byte at a time, in odd pieces, or all at once", function()
    local r = h.script([[
      local frame = require("tide.backend.frame")
      local big = ("x\n\0"):rep(50000)
      local bytes = frame.encode("out", 3, {1, big}) .. frame.encode("end", 3, {0, "", 0.5, 7})
        .. frame.encode("hello", 0, {}) .. frame.encode("run", 12, {"", "a b", "\n"})
      local function read(step)
        local fr, got = frame.reader(), {}
        for i = 1, #bytes, step do
          fr:push(bytes:sub(i, i + step - 1))
          for kind, id, s in fr.next, fr do
            got[#got + 1] = kind .. id .. "=" .. table.concat(s, "|")
          end
        end
        return table.concat(got, ";")
      end
      local want = read(#bytes)
      assert(want == "out3=1|" .. big .. ";end3=0||0.5|7;hello0=;run12=|a b|\n", want:sub(1, 80))
      for _, step in ipairs({1, 7, 4096, 65536}) do
        assert(read(step) == want, step)
      end
      io.write("ok\n")
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("ok\n", r.out)
  end)
end)

describe("a worker under tide (tests/fakessh as its host)", function()
  local fakessh = io.popen("pwd"):read("l") .. "/tests/fakessh"

  it("moves a big binary output to tide byte-exact, in many frames", function()
    local dir = h.tmpdir()
    local data = dir .. "/data"
    os.execute(("head -c 8388608 /dev/urandom > %s; printf 'a\\nb\\000' >> %s"):format(h.quote(data), h.quote(data)))
    local r = h.script(([[
      local f = assert(io.open(%q, "rb"))
      local want = f:read("a")
      f:close()
      local got = shell("cat %s; echo err >&2", {hosts = {"1/%s h1"}, capture = true})
      assert(got.ok, got.stderr)
      assert(got.stderr == "err\n", got.stderr)
      io.write(#got.stdout, " ", tostring(got.stdout == want), "\n")
    ]]):format(data, h.quote(data), fakessh))
    os.execute("rm -rf " .. h.quote(dir))
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("8388612 true\n", r.out)
  end)
end)
