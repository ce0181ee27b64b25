-- luarocks make (in a clone, no network): builds tide with CMake and
-- installs the module tide.so in the tree's Lua 5.4 cpath and the tide
-- executable in its bin directory.  Needs cmake, a C compiler and the
-- libuv and Lua 5.4 headers (Debian: libuv1-dev liblua5.4-dev).
-- tests/package_spec.lua runs it in a temporary tree.
rockspec_format = "3.0"
package = "tide"
version = "scm-0"
source = {
  url = ".", -- luarocks make builds the clone it runs in
}
description = {
  summary = "Run jobs in parallel from Lua: a process pool with job control",
  detailed = [[
pool(n):map(fn, list) and shell(cmd) run many jobs N at a time, with
timeouts, retries, job logs, resume, item records and a sweep library;
`require "tide"` from any Lua 5.4, and the tide executable, which also
takes GNU parallel's command line.]],
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    CMAKE_INSTALL_BINDIR = "$(BINDIR)",
    TIDE_LUA_CMOD_DIR = "$(LIBDIR)",
    TIDE_WERROR = "OFF",
  },
}
