/*
 * glob.c (bindings): core.glob(pattern), pathname expansion as the shell does
 * it, by glob(3).  A mechanism only: matches come back in the order the file
 * system lists them; files.lua sorts them and makes them a sequence.
 */
#include <errno.h>
#include <glob.h>
#include <string.h>

#include <lauxlib.h>

#include "tide.h"

/* Builds the array in protected mode: a memory error while pushing must not
 * leak the glob_t, which only the caller can free. */
static int glob_push(lua_State *L) {
  const glob_t *g = lua_touserdata(L, 1);
  lua_createtable(L, (int)g->gl_pathc, 0);
  for (size_t i = 0; i < g->gl_pathc; i++) {
    lua_pushstring(L, g->gl_pathv[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* core.glob(pattern) -> array of paths, empty when nothing matches.
 * Braces and ~ expand as in bash; unreadable directories are skipped, as
 * the shell skips them. */
int tide_glob(lua_State *L) {
  size_t len;
  const char *pattern = luaL_checklstring(L, 1, &len);
  luaL_argcheck(L, strlen(pattern) == len, 1, "contains a NUL byte");
  glob_t g;
  memset(&g, 0, sizeof g);
  errno = 0;
  int rc = glob(pattern, GLOB_NOSORT | GLOB_BRACE | GLOB_TILDE_CHECK, NULL, &g);
  if (rc == GLOB_NOMATCH) {
    globfree(&g);
    lua_newtable(L);
    return 1;
  }
  if (rc != 0) {
    int e = errno ? errno : EIO;
    globfree(&g);
    if (rc == GLOB_NOSPACE) return luaL_error(L, "not enough memory");
    return tide_pusherr(L, e, "glob", pattern);
  }
  lua_pushcfunction(L, glob_push);
  lua_pushlightuserdata(L, &g);
  int status = lua_pcall(L, 1, 1, 0);
  globfree(&g);
  if (status != LUA_OK) return lua_error(L);
  return 1;
}
