/*
 * core.c: the tide.core module, the whole C surface the Lua half builds on.
 * Each function is a mechanism; none decides policy.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "tide.h"

static int core_now(lua_State *L) {
  lua_pushnumber(L, (double)uv_hrtime() / 1e9);
  return 1;
}

/* core.time() -> seconds since the epoch, a float (results files) */
static int core_time(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  lua_pushnumber(L, (double)ts.tv_sec + ts.tv_nsec / 1e9);
  return 1;
}

static int push_errno(lua_State *L, int e, const char *what) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", what, strerror(e));
  lua_pushstring(L, uv_err_name(-e));
  return 3;
}

/* core.mkdir(path) -> true | nil, message, errname; an existing directory
 * is fine. */
static int core_mkdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (mkdir(path, 0777) != 0) {
    int e = errno;
    if (e != EEXIST || stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
      return push_errno(L, e, path);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* core.write(fd, s) -> true | nil, message, errname: s in full, after what
 * stdio holds, so it lands after what the script printed. */
static int core_write(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  fflush(NULL);
  return tide_write_result(L, tide_write_all(fd, s, n));
}

/* core.isatty(fd) -> true, columns (0 if unknown) | false */
static int core_isatty(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  if (!isatty(fd)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  struct winsize ws;
  lua_pushboolean(L, 1);
  lua_pushinteger(L, ioctl(fd, TIOCGWINSZ, &ws) == 0 ? ws.ws_col : 0);
  return 2;
}

/*
 * The status line: one line at the bottom of stderr that tide redraws in
 * place (the policy, what it says and when, is progress.lua's).  C keeps
 * only whether it is on screen, so that every write of tide's to that
 * screen erases it first (tide_write_all) and it is never written
 * through, and so that tide's last words (an error, a signal) leave no
 * half line behind.
 */
static int status_shown;
static int status_stdout = -1; /* stdout shows there too; -1: not known */

/* Whether stdout lands where the status line is: a terminal (the same
 * one, as a rule), or the very file stderr is (2>&1). */
static int stdout_there(void) {
  struct stat a, b;
  if (isatty(1)) return 1;
  return fstat(1, &a) == 0 && fstat(2, &b) == 0 && a.st_dev == b.st_dev &&
         a.st_ino == b.st_ino;
}

void tide_status_hide(int fd) {
  if (!status_shown || (fd != 2 && fd != 1)) return;
  if (fd == 1) {
    if (status_stdout < 0) status_stdout = stdout_there();
    if (!status_stdout) return;
  }
  status_shown = 0;
  (void)!write(2, "\r\033[K", 4);
}

/* core.status(text [, final]): draws text as the status line, over the
 * old one; with final, ends it with a newline (it is then plain output).
 * core.status(false [, fd]): erases it, if a write to fd would land on it.
 * core.status() -> whether it is on screen. */
static int core_status(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_pushboolean(L, status_shown);
    return 1;
  }
  if (!lua_toboolean(L, 1)) {
    tide_status_hide((int)luaL_optinteger(L, 2, 2));
    return 0;
  }
  size_t n;
  const char *text = luaL_checklstring(L, 1, &n);
  int final = lua_toboolean(L, 2);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '\r');
  luaL_addlstring(&b, text, n);
  luaL_addstring(&b, final ? "\033[K\n" : "\033[K");
  luaL_pushresult(&b);
  fflush(stdout); /* what the script printed goes first */
  status_shown = 0;
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  status_shown = tide_write_all(2, s, len) == 0 && !final;
  return 0;
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

/* core.executable(path): true if path is a file we may execute. */
static int core_executable(lua_State *L) {
  struct stat st;
  const char *path = luaL_checkstring(L, 1);
  lua_pushboolean(L, stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
                         access(path, X_OK) == 0);
  return 1;
}

static int core_signame(lua_State *L) {
  const char *name = tide_signame((int)luaL_checkinteger(L, 1));
  if (name == NULL) return 0;
  lua_pushstring(L, name);
  return 1;
}

int luaopen_tide_core(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"spawn", tide_job_spawn}, {"step", tide_step},
      {"timer", tide_timer_new}, {"now", core_now},
      {"cpus", core_cpus},       {"running", core_running},
      {"die", core_die},         {"executable", core_executable},
      {"glob", tide_glob},       {"resume", tide_resume},
      {"signame", core_signame}, {"time", core_time},
      {"mkdir", core_mkdir},     {"write", core_write},
      {"store", tide_store_new}, {"isatty", core_isatty},
      {"status", core_status},   {NULL, NULL}};
  tide_job_register(L);
  tide_timer_register(L);
  tide_store_register(L);
  luaL_newlib(L, funcs);
  lua_pushinteger(L, SIGPIPE);
  lua_setfield(L, -2, "SIGPIPE");
  lua_pushliteral(L, TIDE_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
