-- package_spec.lua: what tide installs, and the two packages (issue #17):
-- `cmake --install` into a temporary prefix, `cpack -G DEB` unpacked with
-- dpkg -x into a temporary root, and the rockspec's `luarocks make` into a
-- temporary tree with the network cut off.  Each is run from there: the
-- binary, the module (require "tide" from lua5.4), the man page.
local h = require("tests.helper")
local q = h.quote

local BUILD = h.TIDE:match("^(.*)/[^/]*$")
local ROOT = io.popen("pwd"):read("l")

local sh, have = h.out_of, h.have

-- The unsanitized build makes tide.so; the packages are checked from it.
local function usable()
  local f = io.open(BUILD .. "/CPackConfig.cmake")
  if f then
    f:close()
  end
  return f ~= nil and not h.SANITIZED
end

-- Checks an installed tree: prefix holds bin/tide and tide.so in libdir;
-- share (default: prefix/share) the man page, the completion and the docs.
local function check_tree(prefix, libdir, share)
  share = share or prefix .. "/share"
  for _, path in ipairs({ prefix .. "/bin/tide", prefix .. "/" .. libdir .. "/tide.so",
    share .. "/man/man1/tide.1", share .. "/bash-completion/completions/tide",
    share .. "/doc/tide/README.md", share .. "/doc/tide/examples/sweep.lua" }) do
    assert.is_true(os.execute("test -f " .. q(path)) == true, path .. " is not installed")
  end
  local out, code = sh(q(prefix .. "/bin/tide")
    .. " -e 'print(#pool(2):map(function(x) return shell(\"true\") end, {1, 2, 3}))'")
  assert.are.equal(0, code, out)
  assert.are.equal("3\n", out)
  out, code = sh(("cd / && LUA_CPATH=%s lua5.4 -e %s"):format(q(prefix .. "/" .. libdir .. "/?.so"),
    q('local t = require "tide"; print(t.shell("echo from the module", {capture = true}).stdout)')))
  assert.are.equal(0, code, out)
  assert.are.equal("from the module\n\n", out)
  if have("man") then
    out, code = sh("MANWIDTH=80 man -l -P cat " .. q(share .. "/man/man1/tide.1"))
    assert.are.equal(0, code, out)
    assert.truthy(out:find("tide %- run jobs in parallel"))
  end
end

describe("installing tide", function()
  local work
  h.tmpdir_each(function(d)
    work = d
  end)

  it("cmake --install puts the binary, module, man page, completion and docs in the prefix", function()
    if not usable() then
      return pending("a sanitized build makes no tide.so")
    end
    local out, code = sh(("cmake --install %s --prefix %s"):format(q(BUILD), q(work)))
    assert.are.equal(0, code, out)
    check_tree(work, "lib/lua/5.4")
    -- no link named parallel unless asked for: it would hide GNU parallel
    assert.is_false(os.execute("test -e " .. q(work .. "/bin/parallel")) == true, "bin/parallel installed")
  end)

  it("installs a link named parallel only with TIDE_PARALLEL_LINK=ON, and it takes GNU's command line", function()
    if h.SANITIZED then
      return pending("the install script of a sanitized build")
    end
    local out, code = sh(("DESTDIR=%s cmake -DCMAKE_INSTALL_PREFIX=/usr -DTIDE_PARALLEL_LINK=ON -P %s")
      :format(q(work .. "/root"), q(BUILD .. "/cmake_install.cmake")))
    assert.are.equal(0, code, out)
    local link = work .. "/root/usr/bin/parallel"
    assert.are.equal("tide\n", sh("readlink " .. q(link)))
    -- lines on stdin are commands, where tide would read them as Lua
    out, code = sh("printf 'echo one\\necho two\\n' | " .. q(link) .. " -k")
    assert.are.equal(0, code, out)
    assert.are.equal("one\ntwo\n", out)
  end)

  it("cpack -G DEB makes a package that unpacks and runs from a temporary root", function()
    if not usable() or not have("dpkg-deb") then
      return pending("a sanitized build, or no dpkg-deb")
    end
    local out, code = sh(("cd %s && cpack -G DEB -B %s"):format(q(BUILD), q(work .. "/pkg")))
    assert.are.equal(0, code, out)
    local deb = sh("ls " .. q(work .. "/pkg") .. "/tide_*.deb"):match("[^\n]+")
    assert.truthy(deb and deb:find("tide_[%d.]+_%w+%.deb$"), deb)
    local info = sh("dpkg-deb -I " .. q(deb))
    assert.truthy(info:find("Package: tide\n", 1, true), info)
    local depends = info:match("Depends: ([^\n]+)")
    assert.truthy(depends and depends:find("liblua5.4") and depends:find("libuv1"), info)
    out, code = sh(("dpkg -x %s %s"):format(q(deb), q(work .. "/root")))
    assert.are.equal(0, code, out)
    check_tree(work .. "/root/usr", "lib/lua/5.4")
    -- the module's directory is on Debian's lua5.4 cpath
    out = sh("lua5.4 -e 'print(package.cpath)'")
    assert.truthy(out:find("/usr/lib/lua/5.4/?.so", 1, true), out)
    if have("apt-get") then
      -- apt resolves its dependencies from this system's packages (a dry
      -- run: nothing is installed)
      out, code = sh("apt-get install -s " .. q(deb))
      assert.are.equal(0, code, out)
      assert.truthy(out:find("Inst tide", 1, true), out)
    end
  end)

  it("luarocks make in a copy of the clone installs the module and the binary, offline", function()
    if not usable() or not have("luarocks") then
      return pending("a sanitized build, or no luarocks (apt-get install luarocks)")
    end
    -- the tracked and new files of the clone, as a fresh clone would have them
    local out, code = sh(("cd %s && git ls-files -co --exclude-standard | tar -cf - -T - | tar -xf - -C %s")
      :format(q(ROOT), q(work)))
    assert.are.equal(0, code, out)
    local rockspec = sh("cd " .. q(work) .. " && ls tide-*.rockspec"):match("[^\n]+")
    assert.truthy(rockspec, "no rockspec")
    local offline = os.execute("unshare -rn true >/dev/null 2>&1") and "unshare -rn " or ""
    out, code = sh(("cd %s && %sluarocks --lua-version=5.4 --tree=%s make %s"):format(
      q(work), offline, q(work .. "/tree"), q(rockspec)))
    assert.are.equal(0, code, out)
    -- luarocks deploys bin/ and the module; the rest stays in the rock's
    -- directory
    check_tree(work .. "/tree", "lib/lua/5.4", work .. "/tree/lib/luarocks/rocks-5.4/tide/scm-0/share")
    out, code = sh(("eval \"$(luarocks --lua-version=5.4 --tree=%s path)\" && cd / && lua5.4 -e %s"):format(
      q(work .. "/tree"), q('print(package.searchpath("tide", package.cpath))')))
    assert.are.equal(0, code, out)
    assert.are.equal(work .. "/tree/lib/lua/5.4/tide.so\n", out)
  end)

  it("-DTIDE_STATIC=ON links Lua and libuv in: the binary a worker host is sent needs only libc", function()
    if not usable() then
      return pending("a sanitized build: the static build is checked from the normal one")
    end
    local out, code = sh(("cmake -S %s -B %s -DCMAKE_BUILD_TYPE=Release -DTIDE_STATIC=ON >/dev/null && "
      .. "cmake --build %s --target tide -j2 >/dev/null"):format(q(ROOT), q(work .. "/static"), q(work .. "/static")))
    assert.are.equal(0, code, out)
    local bin = work .. "/static/tide"
    local libs = sh("ldd " .. q(bin))
    assert.is_nil(libs:find("liblua", 1, true), libs)
    assert.is_nil(libs:find("libuv", 1, true), libs)
    assert.truthy(libs:find("libc.so", 1, true), libs)
    out, code = sh(q(bin) .. " -e 'print(pool(2):map(function(x) "
      .. "return shell(\"echo \" .. x, {capture = true}) end, {1, 2})[2].stdout)'")
    assert.are.equal(0, code, out)
    assert.are.equal("2\n\n", out)
  end)
end)
