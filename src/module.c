/*
 * module.c (host): tide as a Lua C module, tide.so, for any Lua 5.4:
 *
 *   lua5.4 -e 'local t = require "tide"; t.pool(2):map(...)'
 *
 * The same C and Lua halves as the executable; this file stands in for
 * main.c.  luaopen_tide sets up the one libuv loop and tide's signals
 * (tide_loop_init), registers tide.core and the embedded Lua half in
 * package.preload, and returns require("tide").  What main.c does around
 * the script happens at other times here:
 *
 * - the end of the run (the summary, the report), then teardown (kill the
 *   jobs, wait for them, close the loop) when the Lua state closes, from
 *   the __gc of a sentinel (see module_spawn);
 * - os.exit without closing the state: an exit handler kills the jobs, as
 *   main.c's does;
 * - SIGINT, SIGTERM, SIGHUP: the host's handlers raise "stopped by SIGINT"
 *   (tide_die), which lua.c reports; once the state is closed the process
 *   ends by that signal, so its parent sees 130, as under tide.
 *
 * The loop and the signals are process-wide: one Lua state per process may
 * load tide.
 */
#include <signal.h>
#include <stdlib.h>

#include <lauxlib.h>

#include "tide.h"

#define SENTINEL "tide.module"         /* its metatable */
#define CURRENT "tide.module.sentinel" /* the current one */

static lua_State *owner; /* the main thread of the state tide is loaded in */
static int closed;
static void *current; /* the sentinel whose __gc tears down */

/* Jobs must not outlive the process, even through os.exit or a signal:
 * registered with atexit (run at exit, or when dlclose unloads tide.so). */
static void module_atexit(void) {
  if (!closed && owner != NULL) {
    tide_status_hide(2);
    tide_jobs_kill_wait();
    tide_reaper_kill_all();
  }
  if (tide_dying()) { /* end as the signal would have it, as tide does */
    int sig = tide_dying();
    signal(sig, SIG_DFL);
    raise(sig);
  }
}

/* The state is closing: what tide does after a script that ran to its
 * end (tide.host.finish: the status line's last figures, the summary, the
 * report), then stop the jobs and close the loop, as main.c does.  Only
 * the current sentinel does. */
static int module_gc(lua_State *L) {
  if (closed || lua_touserdata(L, 1) != current) return 0;
  closed = 1;
  if (!tide_dying()) {
    lua_getglobal(L, "require");
    lua_pushliteral(L, "tide.host");
    if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
      lua_getfield(L, -1, "finish");
      if (lua_pcall(L, 0, 0, 0) != LUA_OK)
        lua_writestringerror("tide: %s\n", lua_tostring(L, -1));
    }
    lua_settop(L, 1);
  }
  tide_status_hide(2);
  tide_teardown(tide_conf.kill_grace_ms);
  tide_signal_detach();
  tide_loop_close();
  return 0;
}

/* A new sentinel replaces the old one, which is then garbage. */
static void renew_sentinel(lua_State *L) {
  current = lua_newuserdatauv(L, 0, 0);
  luaL_setmetatable(L, SENTINEL);
  lua_setfield(L, LUA_REGISTRYINDEX, CURRENT);
}

/*
 * core.spawn, then a new sentinel.  main.c tears down before lua_close,
 * while every job's userdata is alive; a module gets control only from
 * lua_close's finalizers, which run newest first.  A job's __gc before
 * the teardown would let a job that ends during the teardown be freed
 * while the completion queue still holds it; so the sentinel is made anew
 * after each job, and is always finalized before every job.
 */
static int module_spawn(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  luaL_checkstack(L, 3, NULL);
  renew_sentinel(L);
  return lua_gettop(L);
}

static int module_core(lua_State *L) {
  luaopen_tide_core(L);
  lua_getfield(L, -1, "spawn");
  lua_pushcclosure(L, module_spawn, 1);
  lua_setfield(L, -2, "spawn");
  return 1;
}

__attribute__((visibility("default"))) int luaopen_tide(lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  lua_State *main = lua_tothread(L, -1);
  lua_pop(L, 1);
  if (owner != NULL && owner != main)
    return luaL_error(L, "tide is already loaded by another Lua state in "
                         "this process (one state per process)");
  if (owner == NULL) {
    int rc = tide_loop_init(main);
    if (rc != 0)
      return luaL_error(L, "cannot create the event loop: %s",
                        uv_strerror(rc));
    owner = main;
    atexit(module_atexit);
    luaL_newmetatable(L, SENTINEL);
    lua_pushcfunction(L, module_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    renew_sentinel(L);
    tide_preload(L, getenv("TIDE_LUADIR"));
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, module_core);
    lua_setfield(L, -2, "tide.core");
    lua_pop(L, 1);
  }
  lua_getglobal(L, "require");
  lua_pushliteral(L, "tide");
  lua_call(L, 1, 1);
  return 1;
}
