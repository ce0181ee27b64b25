/*
 * signal.c: SIGINT, SIGTERM and SIGHUP end tide, and every job with it.
 *
 * The handler only records the signal and wakes whoever can act on it: the
 * loop (through a uv_async_t, if tide is waiting for jobs) and the Lua VM
 * (through a one-shot hook, as lua.c does, if a script is busy computing).
 * Either way tide_die() then runs outside any handler or libuv callback.
 * We do not use uv_signal_t: its callback only runs inside uv_run, so a
 * script busy in Lua code could never be interrupted.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "tide.h"

#define TIDE_KILL_GRACE_MS 2000

static volatile sig_atomic_t pending, count;
static sigset_t changed;
static lua_State *mainL;
static lua_State *volatile runningL; /* the task being resumed, if any */
static uv_async_t *volatile wakep;

static void on_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  if (pending) tide_die(pending);
}

static void on_signal(int sig) {
  if (!pending) pending = sig;
  count++;
  uv_async_t *w = wakep;
  if (w) uv_async_send(w);
  lua_State *co = runningL;
  if (co)
    lua_sethook(co, on_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  lua_sethook(mainL, on_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/*
 * core.resume(co) -> true, values... | false, error: coroutine.resume for
 * the driver, which also records the running task so that a signal can
 * interrupt a task busy in Lua code (hooks are per coroutine).
 */
int tide_resume(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  luaL_argexpected(L, co != NULL, 1, "coroutine");
  lua_State *prev = runningL;
  int nres;
  runningL = co;
  int status = lua_resume(co, L, lua_gettop(L) - 1, &nres);
  runningL = prev;
  if (status == LUA_OK || status == LUA_YIELD) {
    luaL_checkstack(L, nres + 1, "too many results to resume");
    lua_pushboolean(L, 1);
    lua_xmove(co, L, nres);
    return nres + 1;
  }
  lua_pushboolean(L, 0);
  lua_xmove(co, L, 1);
  return 2;
}

void tide_signal_init(lua_State *L, uv_async_t *wake) {
  static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
  struct sigaction sa;
  mainL = L;
  wakep = wake;
  /* Jobs start with every signal at its default, whatever tide inherited:
   * they run in sessions of their own, out of reach of the terminal, and
   * an inherited SIG_IGN would only make them harder to stop. */
  sigemptyset(&changed);
  for (int sig = 1; sig < NSIG; sig++) {
    struct sigaction cur;
    if (sigaction(sig, NULL, &cur) == 0 && cur.sa_handler == SIG_IGN)
      sigaddset(&changed, sig);
  }
  sigaddset(&changed, SIGPIPE);
  sigaddset(&changed, SIGCHLD); /* libuv's handler, when one is used */
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = on_signal; /* no SA_RESTART: blocking reads give up */
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    struct sigaction old;
    /* A signal ignored by whoever started us (nohup, `tide x &` in a
     * script) stays ignored, as shells do. */
    if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
      continue;
    sigaction(sigs[i], &sa, NULL);
    sigaddset(&changed, sigs[i]);
  }
  /* Writing to a closed pipe must give EPIPE, not kill tide: jobs' stdin
   * pipes close under us, and `tide x.lua | head` is handled in tide_die.
   * Jobs get default dispositions back at spawn. */
  signal(SIGPIPE, SIG_IGN);
}

int tide_signal_pending(void) { return pending; }
const sigset_t *tide_signals_changed(void) { return &changed; }
int tide_signal_count(void) { return count; }

void tide_die(int sig) {
  static int dying;
  if (!dying) {
    dying = 1;
    tide_status_hide(2); /* no half-drawn status line after tide */
    pending = sig;
    tide_teardown(TIDE_KILL_GRACE_MS);
  }
  wakep = NULL;
  exit(128 + sig);
}
