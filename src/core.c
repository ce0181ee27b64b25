/*
 * core.c (bindings, top): the tide.core module, the whole C surface the
 * Lua half builds on.  Each function is a mechanism; none decides policy.
 * Failures of the environment come back as tide_pusherr makes them.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
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

/* core.mkdir(path [, mode]) -> true | nil, message, errname; an existing
 * directory is fine (its mode is left alone).  mode, 0777 by default, is
 * taken as mkdir(2) takes it: less the umask. */
static int core_mkdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer mode = luaL_optinteger(L, 2, 0777);
  luaL_argcheck(L, mode >= 0 && mode <= 07777, 2, "not a file mode");
  struct stat st;
  if (mkdir(path, (mode_t)mode) != 0) {
    int e = errno;
    if (e != EEXIST || stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
      return tide_pusherr(L, e, "mkdir", path);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* core.stat(path) -> device, inode, permission bits, owner's uid | nil,
 * message, errname: a file's identity, so that one file named two ways
 * ("jl", "./jl") is one file, and who may change it. */
static int core_stat(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (stat(path, &st) != 0) return tide_pusherr(L, errno, "stat", path);
  lua_pushinteger(L, (lua_Integer)st.st_dev);
  lua_pushinteger(L, (lua_Integer)st.st_ino);
  lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
  lua_pushinteger(L, (lua_Integer)st.st_uid);
  return 4;
}

/* core.mkdtemp(template) -> path | nil, message, errname: a new directory
 * of mode 0700 whose name is template with its trailing XXXXXX replaced by
 * unpredictable characters (mkdtemp(3)): nobody can have made it first. */
static int core_mkdtemp(lua_State *L) {
  size_t n;
  const char *t = luaL_checklstring(L, 1, &n);
  luaL_argcheck(L, n >= 6 && strcmp(t + n - 6, "XXXXXX") == 0, 1,
                "template must end in XXXXXX");
  luaL_Buffer b;
  char *path = luaL_buffinitsize(L, &b, n + 1);
  memcpy(path, t, n + 1);
  if (mkdtemp(path) == NULL) return tide_pusherr(L, errno, "mkdtemp", t);
  luaL_pushresultsize(&b, n);
  return 1;
}

/* core.nonce() -> 32 hex digits from the kernel's random source: names
 * that must not be guessed, whatever math.randomseed the script used. */
static int core_nonce(lua_State *L) {
  unsigned char r[16];
  size_t got = 0;
  while (got < sizeof r) {
    ssize_t n = getrandom(r + got, sizeof r - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return tide_pusherr(L, errno, "getrandom", NULL);
    got += (size_t)n;
  }
  char hex[33];
  for (size_t i = 0; i < sizeof r; i++)
    snprintf(hex + 2 * i, 3, "%02x", r[i]);
  lua_pushlstring(L, hex, 32);
  return 1;
}

/* core.broken(fd) -> true if fd is a pipe or socket whose reader has gone
 * (a write would fail with EPIPE): a job writing straight to tide's stdout
 * meets the EPIPE itself, so tide must ask. */
static int core_broken(lua_State *L) {
  struct pollfd p = {(int)luaL_checkinteger(L, 1), POLLOUT, 0};
  lua_pushboolean(L, poll(&p, 1, 0) == 1 && (p.revents & POLLERR) != 0);
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

/* core.status(text [, final]): draws text as the status line, over the
 * old one; with final, ends it with a newline (it is then plain output).
 * core.status(false [, fd]): erases it, if a write to fd would land on it.
 * core.status() -> whether it is on screen. */
static int core_status(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_pushboolean(L, tide_status_shown());
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
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  tide_status_write(s, len, final);
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
  luaL_argcheck(L, sig > 0 && sig < NSIG, 1, "not a signal number");
  return tide_die(L, sig);
}

/* core.executable(path): true if path is a file we may execute. */
static int core_executable(lua_State *L) {
  struct stat st;
  const char *path = luaL_checkstring(L, 1);
  lua_pushboolean(L, stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
                         access(path, X_OK) == 0);
  return 1;
}

/* core.self() -> the path of the running tide executable (what a worker
 * host runs or is sent), or nothing under another interpreter (tide.so). */
static int core_self(lua_State *L) {
#ifdef TIDE_MODULE
  (void)L;
  return 0;
#else
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf);
  if (n <= 0 || (size_t)n >= sizeof buf) return 0;
  /* replaced or removed since it started: its old path, which then names
   * nothing or another build (a worker host is sent /proc/self/exe) */
  static const char gone[] = " (deleted)";
  size_t len = (size_t)n, glen = sizeof gone - 1;
  if (len > glen && memcmp(buf + len - glen, gone, glen) == 0) len -= glen;
  lua_pushlstring(L, buf, len);
  return 1;
#endif
}

static int core_signame(lua_State *L) {
  const char *name = tide_signame((int)luaL_checkinteger(L, 1));
  if (name == NULL) return 0;
  lua_pushstring(L, name);
  return 1;
}

/* A duration in seconds for core.configure, as milliseconds. */
static uint64_t seconds_field(lua_State *L, const char *field, uint64_t dflt) {
  if (lua_getfield(L, 1, field) == LUA_TNIL) {
    lua_pop(L, 1);
    return dflt;
  }
  int ok;
  lua_Number s = lua_tonumberx(L, -1, &ok);
  /* The upper bound keeps the milliseconds exact and far from overflow;
   * !(s >= 0) also catches NaN. */
  if (!ok || !(s >= 0) || s > 1e9)
    luaL_argerror(
        L, 1, lua_pushfstring(L, "%s must be a number of seconds >= 0", field));
  lua_pop(L, 1);
  return (uint64_t)(s * 1000 + 0.5);
}

/* core.configure{kill_grace = seconds, drain = seconds, file_output =
 * "auto" | "always" | "never"}: the mechanism constants, so the Lua half's
 * own constants are the only ones.  Every field is optional; an unknown
 * one is an error.  file_output: whether grouped output goes through a
 * temporary file instead of a pipe (proc.c); "auto" when the last job's
 * output was big. */
static int core_configure(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
    if (strcmp(k, "kill_grace") != 0 && strcmp(k, "drain") != 0 &&
        strcmp(k, "file_output") != 0)
      luaL_argerror(L, 1,
                    lua_pushfstring(L, "unknown field '%s'",
                                    luaL_tolstring(L, -2, NULL)));
    lua_pop(L, 1);
  }
  tide_config c;
  c.kill_grace_ms = seconds_field(L, "kill_grace", tide_conf.kill_grace_ms);
  c.drain_ms = seconds_field(L, "drain", tide_conf.drain_ms);
  c.file_output = tide_conf.file_output;
  if (lua_getfield(L, 1, "file_output") != LUA_TNIL) {
    static const char *const modes[] = {"never", "auto", "always"};
    const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
    c.file_output = -1;
    for (int i = 0; i < 3; i++)
      if (strcmp(m, modes[i]) == 0) c.file_output = i;
    if (c.file_output < 0)
      luaL_argerror(L, 1, "file_output must be 'auto', 'always' or 'never'");
  }
  lua_pop(L, 1);
  tide_conf = c; /* all or nothing */
  return 0;
}

/* core.errno: errno names to this system's numbers, for the results of
 * Lua's own io functions (which give the number). */
static void push_errno_table(lua_State *L) {
  static const struct {
    const char *name;
    int value;
  } names[] = {
#define E(x) {#x, x}
      E(EPERM),        E(ENOENT),    E(ESRCH),     E(EINTR),
      E(EIO),          E(ENXIO),     E(E2BIG),     E(ENOEXEC),
      E(EBADF),        E(ECHILD),    E(EAGAIN),    E(ENOMEM),
      E(EACCES),       E(EEXIST),    E(EXDEV),     E(ENODEV),
      E(ENOTDIR),      E(EISDIR),    E(EINVAL),    E(ENFILE),
      E(EMFILE),       E(ENOTTY),    E(EFBIG),     E(ENOSPC),
      E(ESPIPE),       E(EROFS),     E(EPIPE),     E(ELOOP),
      E(ENAMETOOLONG), E(ENOTEMPTY), E(ETIMEDOUT), E(ECONNREFUSED),
      E(ECONNRESET),
#undef E
  };
  lua_createtable(L, 0, (int)(sizeof names / sizeof names[0]));
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    lua_pushinteger(L, names[i].value);
    lua_setfield(L, -2, names[i].name);
  }
}

int luaopen_tide_core(lua_State *L) {
  static const luaL_Reg funcs[] = {{"spawn", tide_job_spawn},
                                   {"virtual", tide_job_virtual_new},
                                   {"step", tide_step},
                                   {"timer", tide_timer_new},
                                   {"reader", tide_reader_new},
                                   {"now", core_now},
                                   {"cpus", core_cpus},
                                   {"running", core_running},
                                   {"die", core_die},
                                   {"executable", core_executable},
                                   {"self", core_self},
                                   {"glob", tide_glob},
                                   {"frame", tide_frame_encode},
                                   {"unframe", tide_frame_decode},
                                   {"resume", tide_resume},
                                   {"signame", core_signame},
                                   {"time", core_time},
                                   {"mkdir", core_mkdir},
                                   {"mkdtemp", core_mkdtemp},
                                   {"stat", core_stat},
                                   {"nonce", core_nonce},
                                   {"broken", core_broken},
                                   {"write", core_write},
                                   {"store", tide_store_new},
                                   {"isatty", core_isatty},
                                   {"status", core_status},
                                   {"configure", core_configure},
                                   {NULL, NULL}};
  tide_job_register(L);
  tide_timer_register(L);
  tide_reader_register(L);
  tide_store_register(L);
  luaL_newlib(L, funcs);
  lua_pushinteger(L, SIGPIPE);
  lua_setfield(L, -2, "SIGPIPE");
  lua_pushinteger(L, NSIG); /* signals are numbered below it */
  lua_setfield(L, -2, "NSIG");
  push_errno_table(L);
  lua_setfield(L, -2, "errno");
  lua_pushliteral(L, TIDE_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
