/*
 * queue.c (layer 4): the one libuv loop, the objects Lua waits on, and the
 * queues that carry them to the driver.
 *
 * libuv callbacks only record state: a finished job or a fired timer is put
 * on the completion queue, which tide_step() (loop.c) hands to the Lua
 * driver.  A second queue carries news: a job whose output is watched is
 * queued when new output arrives, once until the driver has taken the
 * queue, however many reads that turn made.
 *
 * An object is a malloc'ed tide_obj that a Lua userdata points to, as in
 * luv: it may outlive the userdata until libuv has closed its handles, and
 * it stays pinned in the registry until its completion is handed over.
 */
#include <lauxlib.h>

#include "tide.h"

static uv_loop_t loop;
static tide_obj *done_head, *done_tail;
static tide_obj *news_head, *news_tail;

uv_loop_t *tide_loop(void) { return &loop; }

void tide_complete(tide_obj *o) {
  o->next_done = NULL;
  if (done_tail)
    done_tail->next_done = o;
  else
    done_head = o;
  done_tail = o;
}

void tide_news(tide_obj *o) {
  if (o->news_queued) return;
  o->news_queued = 1;
  o->next_news = NULL;
  if (news_tail)
    news_tail->next_news = o;
  else
    news_head = o;
  news_tail = o;
}

void tide_news_forget(tide_obj *o) {
  if (!o->news_queued) return;
  tide_obj *prev = NULL;
  for (tide_obj *p = news_head; p; prev = p, p = p->next_news) {
    if (p != o) continue;
    if (prev)
      prev->next_news = o->next_news;
    else
      news_head = o->next_news;
    if (news_tail == o) news_tail = prev;
    break;
  }
  o->news_queued = 0;
}

int tide_queued(void) { return done_head != NULL || news_head != NULL; }

tide_obj *tide_take_done(void) {
  tide_obj *o = done_head;
  if (o == NULL) return NULL;
  done_head = o->next_done;
  if (done_head == NULL) done_tail = NULL;
  return o;
}

tide_obj *tide_take_news(void) {
  tide_obj *o = news_head;
  if (o == NULL) return NULL;
  news_head = o->next_news;
  if (news_head == NULL) news_tail = NULL;
  o->news_queued = 0;
  return o;
}

void tide_obj_pin(lua_State *L, tide_obj *o) {
  lua_pushvalue(L, -1);
  o->ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

void tide_obj_release(tide_obj *o) {
  if (o->ud_gone && o->open_handles == 0) o->free(o);
}

/* __gc of every object userdata, which holds a tide_obj pointer: the C
 * side may outlive it until libuv has closed the handles. */
int tide_obj_gc(lua_State *L, const char *mt) {
  tide_obj **u = luaL_checkudata(L, 1, mt);
  if (*u) {
    (*u)->ud_gone = 1;
    tide_obj_release(*u);
    *u = NULL;
  }
  return 0;
}

/* Registers the metatable of an object class: methods and a __gc. */
void tide_obj_class(lua_State *L, const char *mt, const luaL_Reg *methods,
                    lua_CFunction gc) {
  luaL_newmetatable(L, mt);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}

void tide_obj_close_cb(uv_handle_t *h) {
  tide_obj *o = h->data;
  if (o == NULL) return;
  o->open_handles--;
  tide_obj_release(o);
}
