/*
 * signal.c (layer 1, the lowest): SIGINT, SIGTERM and SIGHUP end tide, and
 * every job with it; and the names of signals, so results say "SIGKILL".
 *
 * The handler only records the signal and wakes whoever can act on it: the
 * loop (through a uv_async_t, if tide is waiting for jobs) and the Lua VM
 * (through a one-shot hook, as lua.c does, if a script is busy computing).
 * Either way tide_die() then runs outside any handler or libuv callback.
 * We do not use uv_signal_t: its callback only runs inside uv_run, so a
 * script busy in Lua code could never be interrupted.
 *
 * tide_die() does not exit: it raises a Lua error that unwinds to the host
 * (main.c), which stops the jobs, closes the Lua state so that __gc and
 * __close run, and only then exits with 128 + sig.  Closing the state from
 * inside a running Lua call would free what that call still uses.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "tide.h"

static volatile sig_atomic_t pending, count, dying;
static sigset_t changed;
static lua_State *volatile mainL;
static lua_State *volatile runningL; /* the task being resumed, if any */
static uv_async_t *volatile wakep;

/* ---- signal names: results say "SIGKILL", not 9 ---- */

static const struct {
  int sig;
  const char *name;
} signames[] = {
    {SIGHUP, "SIGHUP"},       {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"},
    {SIGILL, "SIGILL"},       {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},
    {SIGBUS, "SIGBUS"},       {SIGFPE, "SIGFPE"},   {SIGKILL, "SIGKILL"},
    {SIGUSR1, "SIGUSR1"},     {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
    {SIGPIPE, "SIGPIPE"},     {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"},
    {SIGCHLD, "SIGCHLD"},     {SIGCONT, "SIGCONT"}, {SIGSTOP, "SIGSTOP"},
    {SIGTSTP, "SIGTSTP"},     {SIGTTIN, "SIGTTIN"}, {SIGTTOU, "SIGTTOU"},
    {SIGURG, "SIGURG"},       {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"},
    {SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"}, {SIGWINCH, "SIGWINCH"},
    {SIGIO, "SIGIO"},         {SIGPWR, "SIGPWR"},   {SIGSYS, "SIGSYS"},
};

const char *tide_signame(int sig) {
  for (size_t i = 0; i < sizeof signames / sizeof signames[0]; i++)
    if (signames[i].sig == sig) return signames[i].name;
  return NULL;
}

/* "SIGTERM" or "TERM" -> its number, or -1. */
int tide_signum(const char *name) {
  for (size_t i = 0; i < sizeof signames / sizeof signames[0]; i++)
    if (strcmp(signames[i].name, name) == 0 ||
        strcmp(signames[i].name + 3, name) == 0)
      return signames[i].sig;
  return -1;
}

/* ---- tide's own signals ---- */

static void on_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  if (pending) tide_die(L, pending);
}

static void on_signal(int sig) {
  if (!pending) pending = sig;
  count++;
  uv_async_t *w = wakep;
  if (w) uv_async_send(w);
  lua_State *co = runningL, *L = mainL;
  if (co)
    lua_sethook(co, on_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  if (L) lua_sethook(L, on_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/*
 * core.resume(co) -> true, values... | false, error: coroutine.resume for
 * the driver, which also records the running task so that a signal can
 * interrupt a task busy in Lua code (hooks are per coroutine).  A task
 * that tide_die() ended passes the death on to the driver.
 */
int tide_resume(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  luaL_argexpected(L, co != NULL, 1, "coroutine");
  lua_State *prev = runningL;
  int nres;
  int nargs = lua_gettop(L) - 1;
  luaL_argcheck(L, lua_checkstack(co, nargs), 1, "too many arguments");
  lua_xmove(L, co, nargs);
  runningL = co;
  int status = lua_resume(co, L, nargs, &nres);
  runningL = prev;
  if (status == LUA_OK || status == LUA_YIELD) {
    luaL_checkstack(L, nres + 1, "too many results to resume");
    lua_pushboolean(L, 1);
    lua_xmove(co, L, nres);
    return nres + 1;
  }
  lua_xmove(co, L, 1);
  if (dying) return lua_error(L);
  lua_pushboolean(L, 0);
  lua_insert(L, -2);
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

/* The host is about to close the Lua state: from now on a signal must not
 * interrupt the __gc and __close code that runs then (it only counts, for
 * tide_teardown's second Ctrl-C). */
void tide_signal_detach(void) {
  lua_State *L = mainL;
  mainL = NULL;
  runningL = NULL;
  wakep = NULL;
  if (L) lua_sethook(L, NULL, 0, 0);
}

int tide_signal_pending(void) { return pending; }
const sigset_t *tide_signals_changed(void) { return &changed; }
int tide_signal_count(void) { return count; }
int tide_dying(void) { return dying; }

int tide_die(lua_State *L, int sig) {
  if (!dying) dying = sig;
  pending = dying; /* cuts short every blocking write from now on */
  const char *name = tide_signame(dying);
  if (name)
    lua_pushfstring(L, "stopped by %s", name);
  else
    lua_pushfstring(L, "stopped by signal %d", (int)dying);
  return lua_error(L);
}
