/*
 * loop.c (layer 8): setting the loop up, the driver step, and teardown.
 *
 * libuv callbacks only record state: a finished job or a fired timer is put
 * on the completion queue (queue.c).  tide_step() runs the loop once and
 * hands the queue to the Lua driver, which resumes the tasks waiting on
 * those objects.  So Lua never runs inside a callback and uv_run is never
 * re-entered.
 *
 * The second queue carries news: a job whose output is watched (line mode,
 * per-line callbacks) is queued when new output arrives, once until the
 * driver has taken the queue, however many reads that turn made.  The
 * driver then lets the waiting task take the complete lines (lines.c splits
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

static uv_async_t wake; /* lets the signal handler interrupt uv_run */

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
  if (rc == 0) rc = uv_loop_init(tide_loop());
  if (rc == 0) rc = uv_async_init(tide_loop(), &wake, NULL);
  if (rc != 0) return rc;
  uv_unref((uv_handle_t *)&wake); /* never keeps the loop alive */
  tide_signal_init(L, &wake);
  tide_reaper_init();
  return 0;
}

/*
 * Runs the loop until something completes, then returns an array of the
 * completed objects, and a second array of the objects with news when
 * there are any; returns nothing when nothing is left that could ever
 * complete, which the driver reports as a deadlock.
 */
int tide_step(lua_State *L) {
  uv_loop_t *loop = tide_loop();
  int alive = 1;
  if (!tide_queued()) alive = uv_run(loop, UV_RUN_ONCE);
  if (tide_signal_pending()) return tide_die(L, tide_signal_pending());
  if (!tide_queued() && !alive && !uv_loop_alive(loop)) return 0;
  int nres = 1;
  tide_obj *o;
  if ((o = tide_take_news()) != NULL) {
    /* Before the completions: an object is pinned until its completion is
     * handed over, so its ref is still valid here. */
    lua_newtable(L);
    lua_Integer n = 0;
    for (; o; o = tide_take_news()) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, o->ref);
      lua_rawseti(L, -2, ++n);
    }
    nres = 2;
  }
  lua_newtable(L);
  lua_Integer n = 0;
  while ((o = tide_take_done()) != NULL) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, o->ref);
    luaL_unref(L, LUA_REGISTRYINDEX, o->ref);
    o->ref = LUA_NOREF;
    lua_rawseti(L, -2, ++n);
  }
  if (nres == 2) lua_insert(L, -2); /* completions first, then news */
  return nres;
}

void tide_teardown(uint64_t grace_ms) {
  if (tide_jobs_running() == 0) {
    tide_reaper_kill_all();
    return;
  }
  tide_jobs_terminate(grace_ms);
  int seen = tide_signal_count();
  while (tide_jobs_running() > 0) {
    uv_run(tide_loop(), UV_RUN_ONCE);
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
  uv_walk(tide_loop(), close_any, NULL);
  uv_run(tide_loop(), UV_RUN_DEFAULT);
  tide_jobs_close();
  uv_loop_close(tide_loop());
}
