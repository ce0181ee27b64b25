/*
 * lcore_store.c (bindings): core.store(), where order = "input" keeps
 * finished jobs' output until their turn.
 *
 * Holding each job (its buffers, up to 1 MiB in memory and a spill file
 * each) until every earlier item is done would cost memory and a
 * descriptor per held job: ten thousand jobs held behind one slow first
 * item would run out of both.  Instead a held job's output is copied into
 * one store, itself a tide_buf (1 MiB in memory, the rest in one unlinked
 * file), and the job is released at once.  Lua keeps only offsets.
 */
#include <stdio.h>

#include <lauxlib.h>

#include "tide.h"

#define STORE_MT "tide.store"

static tide_buf *checkstore(lua_State *L) {
  return luaL_checkudata(L, 1, STORE_MT);
}

/* Copies from, a job's stream, into the store at idx (job:store): pushes
 * offset, length | nil, message, errname. */
int tide_store_add(lua_State *L, int idx, const tide_buf *from) {
  tide_buf *s = luaL_checkudata(L, idx, STORE_MT);
  uint64_t off = tide_buf_size(s);
  int rc = tide_buf_copy(s, from);
  if (rc < 0) return tide_pusherr(L, rc, "spill", tide_spill_dir());
  lua_pushinteger(L, (lua_Integer)off);
  lua_pushinteger(L, (lua_Integer)(tide_buf_size(s) - off));
  return 2;
}

/* store:write(offset, length, fd [, prefix [, newline]]) -> true | nil,
 * message, errname */
static int store_write(lua_State *L) {
  tide_buf *s = checkstore(L);
  lua_Integer off = luaL_checkinteger(L, 2), len = luaL_checkinteger(L, 3);
  int fd = (int)luaL_checkinteger(L, 4);
  size_t plen = 0;
  const char *prefix = luaL_optlstring(L, 5, NULL, &plen);
  int newline = lua_toboolean(L, 6);
  luaL_argcheck(
      L, off >= 0 && len >= 0 && (uint64_t)(off + len) <= tide_buf_size(s), 2,
      "out of range");
  tide_out o;
  tide_out_init(&o, fd, prefix, plen, 1);
  fflush(NULL);
  int rc = tide_buf_write_range(s, (uint64_t)off, (uint64_t)len, &o);
  if (rc == 0) rc = tide_out_end(&o, newline);
  return tide_write_result(L, rc);
}

/* store:reset(): forget everything (nothing is held any more). */
static int store_reset(lua_State *L) {
  tide_buf *s = checkstore(L);
  tide_buf_free(s);
  s->err = 0; /* a fresh spill file may be writable again */
  s->lost = 0;
  return 0;
}

int tide_store_new(lua_State *L) {
  tide_buf *s = lua_newuserdatauv(L, sizeof *s, 0);
  tide_buf_init(s);
  luaL_setmetatable(L, STORE_MT);
  return 1;
}

void tide_store_register(lua_State *L) {
  static const luaL_Reg methods[] = {{"write", store_write},
                                     {"reset", store_reset},
                                     {"__gc", store_reset},
                                     {NULL, NULL}};
  luaL_newmetatable(L, STORE_MT);
  luaL_setfuncs(L, methods, 0);
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
