/*
 * loop.c: the one libuv loop, the completion queue and the driver step.
 *
 * libuv callbacks only record state: a finished job or a fired timer is put
 * on the completion queue.  tide_step() runs the loop once and hands the
 * queue to the Lua driver, which resumes the tasks waiting on those objects.
 * So Lua never runs inside a callback and uv_run is never re-entered.
 *
 * A second queue carries news: a job whose output is watched (line mode,
 * per-line callbacks) is queued when new output arrives, once until the
 * driver has taken the queue, however many reads that turn made.  The
 * driver then lets the waiting task take the complete lines (job.c splits
 * them), so a job printing a million lines costs one Lua wake-up per loop
 * turn, not one per line or per read.  Jobs nobody watches never touch it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <lauxlib.h>

#include "tide.h"

/* What uv_loop_init and our async handle open: epoll, libuv's global and
 * per-loop signal pipes, the async eventfd. */
#define LOOP_FDS 6

static uv_loop_t loop;
static uv_async_t wake; /* lets the signal handler interrupt uv_run */
static tide_obj *done_head, *done_tail;
static tide_obj *news_head, *news_tail;

uv_loop_t *tide_loop(void) { return &loop; }

/* libuv aborts when it cannot make its signal pipes; a process started
 * with almost no free descriptors must get a message instead. */
static int enough_descriptors(void) {
  int fds[LOOP_FDS], n, rc = 0;
  for (n = 0; n < LOOP_FDS; n++)
    if ((fds[n] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
      rc = -errno;
      break;
    }
  while (n > 0)
    close(fds[--n]);
  return rc;
}

int tide_loop_init(lua_State *L) {
  int rc = enough_descriptors();
  if (rc == 0) rc = uv_loop_init(&loop);
  if (rc == 0) rc = uv_async_init(&loop, &wake, NULL);
  if (rc != 0) return rc;
  uv_unref((uv_handle_t *)&wake); /* never keeps the loop alive */
  tide_signal_init(L, &wake);
  tide_reaper_init();
  return 0;
}

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

/*
 * Runs the loop until something completes, then returns an array of the
 * completed objects, and a second array of the objects with news when
 * there are any; returns nothing when nothing is left that could ever
 * complete, which the driver reports as a deadlock.
 */
int tide_step(lua_State *L) {
  int alive = 1;
  if (done_head == NULL && news_head == NULL)
    alive = uv_run(&loop, UV_RUN_ONCE);
  if (tide_signal_pending()) tide_die(tide_signal_pending());
  if (done_head == NULL && news_head == NULL && !alive && !uv_loop_alive(&loop))
    return 0;
  int nres = 1;
  if (news_head) {
    /* Before the completions: an object is pinned until its completion is
     * handed over, so its ref is still valid here. */
    lua_newtable(L);
    lua_Integer n = 0;
    while (news_head) {
      tide_obj *o = news_head;
      news_head = o->next_news;
      o->news_queued = 0;
      lua_rawgeti(L, LUA_REGISTRYINDEX, o->ref);
      lua_rawseti(L, -2, ++n);
    }
    news_tail = NULL;
    nres = 2;
  }
  lua_newtable(L);
  lua_Integer n = 0;
  while (done_head) {
    tide_obj *o = done_head;
    done_head = o->next_done;
    lua_rawgeti(L, LUA_REGISTRYINDEX, o->ref);
    luaL_unref(L, LUA_REGISTRYINDEX, o->ref);
    o->ref = LUA_NOREF;
    lua_rawseti(L, -2, ++n);
  }
  done_tail = NULL;
  if (nres == 2) lua_insert(L, -2); /* completions first, then news */
  return nres;
}

void tide_teardown(unsigned grace_ms) {
  if (tide_jobs_running() == 0) {
    tide_reaper_kill_all();
    return;
  }
  tide_jobs_terminate(grace_ms);
  int seen = tide_signal_count();
  while (tide_jobs_running() > 0) {
    uv_run(&loop, UV_RUN_ONCE);
    if (tide_signal_count() != seen) { /* a second Ctrl-C: no more grace */
      seen = tide_signal_count();
      tide_jobs_kill(SIGKILL);
    }
  }
  tide_reaper_kill_all();
}

static void close_any(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, tide_obj_close_cb);
}

/* After lua_close: every object's userdata is gone, so closing the handles
 * that are left frees the objects too; then the loop can close. */
void tide_loop_close(void) {
  uv_walk(&loop, close_any, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}
