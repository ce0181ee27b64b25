/*
 * timer.c (layer 7): one-shot timers the Lua driver can wait on (sleeps,
 * delays, timeouts).  A fired timer is queued like a finished job.
 */
#include <stdlib.h>

#include <lauxlib.h>

#include "tide.h"

#define TIMER_MT "tide.timer"

typedef struct tide_timer {
  tide_obj obj;
  uv_timer_t h;
  int active;
} tide_timer;

static void timer_free(tide_obj *o) { free(o); }

static void on_fire(uv_timer_t *h) {
  tide_timer *t = (tide_timer *)h->data;
  t->active = 0;
  uv_close((uv_handle_t *)h, tide_obj_close_cb);
  tide_complete(&t->obj);
}

/* core.timer(seconds [, weak]) -> timer, which completes after that many
 * seconds.  A weak timer does not keep the loop alive (a redraw tick):
 * it fires only while something else is being waited for. */
int tide_timer_new(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  luaL_argcheck(L, s >= 0, 1, "must not be negative");
  int weak = lua_toboolean(L, 2);
  tide_obj **u = lua_newuserdatauv(L, sizeof *u, 0);
  *u = NULL;
  luaL_setmetatable(L, TIMER_MT);
  tide_timer *t = calloc(1, sizeof *t);
  if (t == NULL) return luaL_error(L, "out of memory");
  *u = &t->obj;
  t->obj.free = timer_free;
  uv_timer_init(tide_loop(), &t->h);
  t->h.data = &t->obj;
  t->obj.open_handles = 1;
  t->active = 1;
  tide_obj_pin(L, &t->obj);
  uv_update_time(tide_loop()); /* from now, not from the last loop turn */
  uv_timer_start(&t->h, on_fire, (uint64_t)(s * 1000 + 0.5), 0);
  if (weak) uv_unref((uv_handle_t *)&t->h);
  return 1;
}

/* timer:cancel(): it will not complete; true if it had not fired yet. */
static int timer_cancel(lua_State *L) {
  tide_obj **u = luaL_checkudata(L, 1, TIMER_MT);
  tide_timer *t = (tide_timer *)*u;
  int was = t && t->active;
  if (was) {
    t->active = 0;
    uv_close((uv_handle_t *)&t->h, tide_obj_close_cb);
    luaL_unref(L, LUA_REGISTRYINDEX, t->obj.ref);
    t->obj.ref = LUA_NOREF;
  }
  lua_pushboolean(L, was);
  return 1;
}

static int timer_gc(lua_State *L) { return tide_obj_gc(L, TIMER_MT); }

void tide_timer_register(lua_State *L) {
  static const luaL_Reg methods[] = {{"cancel", timer_cancel}, {NULL, NULL}};
  tide_obj_class(L, TIMER_MT, methods, timer_gc);
}
