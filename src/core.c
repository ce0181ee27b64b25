/*
 * core.c: the tide.core module, the whole C surface the Lua half builds on.
 * Each function is a mechanism; none decides policy.
 */
#include <signal.h>
#include <string.h>

#include <lauxlib.h>

#include "tide.h"

static int core_now(lua_State *L) {
  lua_pushnumber(L, (double)uv_hrtime() / 1e9);
  return 1;
}

static int core_cpus(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)uv_available_parallelism());
  return 1;
}

static int core_running(lua_State *L) {
  lua_pushinteger(L, tide_jobs_running());
  return 1;
}

/* core.die(signal number): end tide as that signal would, jobs and all. */
static int core_die(lua_State *L) {
  int sig = (int)luaL_checkinteger(L, 1);
  luaL_argcheck(L, sig > 0 && sig < 65, 1, "not a signal number");
  tide_die(sig);
  return 0;
}

static int core_signame(lua_State *L) {
  const char *name = tide_signame((int)luaL_checkinteger(L, 1));
  if (name == NULL) return 0;
  lua_pushstring(L, name);
  return 1;
}

int luaopen_tide_core(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"spawn", tide_job_spawn}, {"step", tide_step}, {"timer", tide_timer_new},
      {"now", core_now},         {"cpus", core_cpus}, {"running", core_running},
      {"die", core_die},         {"glob", tide_glob}, {"resume", tide_resume},
      {"signame", core_signame}, {NULL, NULL}};
  tide_job_register(L);
  tide_timer_register(L);
  luaL_newlib(L, funcs);
  lua_pushinteger(L, SIGPIPE);
  lua_setfield(L, -2, "SIGPIPE");
  lua_pushliteral(L, TIDE_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
