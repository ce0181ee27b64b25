/*
 * main.c (host, the top layer): the tide host, modelled on Lua's own lua.c.
 *
 * Everything runs in protected mode (pmain); every chunk gets a traceback
 * message handler; errors are reported as "tide: message".  On top of lua.c
 * it owns the libuv loop, takes -j, and leaves the exit status to the Lua
 * half (tide.host), which knows how many jobs failed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "tide.h"

#define EXIT_SCRIPT_ERROR 2

static const char *progname = "tide";

static void print_usage(const char *badoption) {
  if (badoption) {
    if (badoption[1] == 'e' || badoption[1] == 'l' || badoption[1] == 'j')
      fprintf(stderr, "%s: '%s' needs argument\n", progname, badoption);
    else
      fprintf(stderr, "%s: unrecognized option '%s'\n", progname, badoption);
  }
  fprintf(
      badoption ? stderr : stdout,
      "usage: %s [options] [script [args]]\n"
      "       %s [GNU parallel options] [command] ::: args  (one-liner)\n"
      "Runs a Lua 5.4 script with pool(n):map(fn, list) and shell(cmd).\n"
      "Available options are:\n"
      "  -e stat   execute string 'stat'\n"
      "  -l mod    require library 'mod' into global 'mod'\n"
      "  -j N      default pool size (default: number of CPUs)\n"
      "  -v        show version information\n"
      "  -E        ignore environment variables (LUA_INIT, LUA_PATH...)\n"
      "  -W        turn warnings on\n"
      "  --progress     the status line on stderr, even if not a terminal\n"
      "  --no-progress  no status line (default: when stderr is a terminal)\n"
      "  -h        show this help (--help: also the one-liner options)\n"
      "  --        stop handling options\n"
      "  -         stop handling options and run the script on stdin\n"
      "Exit status: 0 all jobs succeeded, 1 some job failed, 2 script "
      "error,\n128+N stopped by signal N.\n",
      progname, progname);
}

static void l_message(const char *msg) {
  fflush(stdout);
  tide_status_hide(2);
  fprintf(stderr, "%s: %s\n", progname, msg);
  fflush(stderr);
}

/* A death by signal (tide_die) unwinds through here silently: the exit
 * status says it all. */
static int report(lua_State *L, int status) {
  if (status != LUA_OK && tide_dying()) {
    lua_pop(L, 1);
  } else if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL) msg = "(error object is not a string)";
    l_message(msg);
    lua_pop(L, 1);
  }
  return status;
}

/* Adds a traceback to the error, as lua.c does.  Which of its frames a
 * user sees is policy: tide.util.user_traceback drops tide's own, once
 * the Lua half is loaded (a failure there keeps the whole traceback). */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg =
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  int tb = lua_gettop(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "tide.util") == LUA_TTABLE &&
      lua_getfield(L, -1, "user_traceback") == LUA_TFUNCTION) {
    lua_pushvalue(L, tb);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_isstring(L, -1)) return 1;
  }
  lua_settop(L, tb);
  return 1;
}

static int docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  int status = lua_pcall(L, narg, nres, base);
  lua_remove(L, base);
  return status;
}

static void print_version(void) {
  printf("tide %s (%s, libuv %s)\n", TIDE_VERSION, LUA_RELEASE,
         uv_version_string());
  fflush(stdout);
}

/* arg table as in lua: script at 0, its arguments at 1.., options below 0. */
static void createargtable(lua_State *L, char **argv, int argc, int script) {
  if (script == argc) script = 0;
  lua_createtable(L, argc - (script + 1), script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

static int dochunk(lua_State *L, int status) {
  if (status == LUA_OK) status = docall(L, 0, 0);
  return report(L, status);
}

static int dostring(lua_State *L, const char *s, const char *name) {
  return dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

static int dolibrary(lua_State *L, char *globname) {
  char *modname = strchr(globname, '=');
  if (modname == NULL)
    modname = globname;
  else
    *modname++ = '\0';
  lua_getglobal(L, "require");
  lua_pushstring(L, modname);
  int status = docall(L, 1, 1);
  if (status == LUA_OK) lua_setglobal(L, globname);
  return report(L, status);
}

static int pushargs(lua_State *L) {
  if (lua_getglobal(L, "arg") != LUA_TTABLE)
    luaL_error(L, "'arg' is not a table");
  int n = (int)luaL_len(L, -1);
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (int i = 1; i <= n; i++)
    lua_rawgeti(L, -i, i);
  lua_remove(L, -n - 1);
  return n;
}

static int handle_script(lua_State *L, char **argv) {
  const char *fname = argv[0];
  if (strcmp(fname, "-") == 0 && strcmp(argv[-1], "--") != 0) fname = NULL;
  int status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    int n = pushargs(L);
    status = docall(L, n, 0);
  }
  return report(L, status);
}

#define has_error 1
#define has_i 2
#define has_v 4
#define has_e 8
#define has_E 16

static int default_jobs;
static int progress = -1; /* --progress 1, --no-progress 0, else -1 */

/* Scans the options, as lua.c's collectargs; *first = script index. */
static int collectargs(char **argv, int *first) {
  int args = 0, i;
  if (argv[0] != NULL) {
    if (argv[0][0]) progname = "tide"; /* always report as tide */
  } else {
    *first = -1;
    return 0;
  }
  for (i = 1; argv[i] != NULL; i++) {
    *first = i;
    if (argv[i][0] != '-') return args;
    if (strcmp(argv[i], "--help") == 0) argv[i] = "-h";
    if (strcmp(argv[i], "--version") == 0) argv[i] = "-v";
    switch (argv[i][1]) {
    case '-':
      if (strcmp(argv[i], "--progress") == 0 ||
          strcmp(argv[i], "--no-progress") == 0) {
        progress = argv[i][2] == 'p';
        break;
      }
      if (argv[i][2] != '\0') return has_error;
      *first = i + 1;
      return args;
    case '\0':
      return args;
    case 'E':
      if (argv[i][2] != '\0') return has_error;
      args |= has_E;
      break;
    case 'W':
      if (argv[i][2] != '\0') return has_error;
      break;
    case 'h':
      if (argv[i][2] != '\0') return has_error;
      args |= has_i; /* reused: help requested */
      break;
    case 'v':
      if (argv[i][2] != '\0') return has_error;
      args |= has_v;
      break;
    case 'e':
      args |= has_e; /* FALLTHROUGH */
    case 'l':
    case 'j':
      if (argv[i][2] == '\0') {
        i++;
        if (argv[i] == NULL || argv[i][0] == '-') return has_error;
      }
      break;
    default:
      return has_error;
    }
  }
  *first = i;
  return args;
}

/* -j N: a whole number of at least 1, or a clear complaint. */
static int parse_jobs(const char *s) {
  char *end;
  long n = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || n < 1 || n > 1000000) {
    fprintf(stderr,
            "%s: bad value for -j: '%s' (positive whole number expected)\n",
            progname, s);
    return -1;
  }
  return (int)n;
}

static int runargs(lua_State *L, char **argv, int n) {
  for (int i = 1; i < n; i++) {
    int option = argv[i][1];
    if (option != 'e' && option != 'l' && option != 'W') continue;
    const char *extra = argv[i] + 2;
    if (*extra == '\0' && option != 'W') extra = argv[++i];
    if (option == 'W') {
      lua_warning(L, "@on", 0);
    } else if (option == 'e') {
      if (dostring(L, extra, "=(command line)") != LUA_OK) return 0;
    } else {
      if (dolibrary(L, (char *)extra) != LUA_OK) return 0;
    }
  }
  return 1;
}

static int handle_luainit(lua_State *L) {
  const char *name = "=LUA_INIT_5_4";
  const char *init = getenv(name + 1);
  if (init == NULL) {
    name = "=LUA_INIT";
    init = getenv(name + 1);
  }
  if (init == NULL) return LUA_OK;
  if (init[0] == '@') return dochunk(L, luaL_loadfile(L, init + 1));
  return dostring(L, init, name);
}

/* Calls tide.host.<fn>(...) with nargs arguments on the stack. */
static int call_host(lua_State *L, const char *fn, int nargs, int nres) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "tide.host");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, fn);
  lua_remove(L, -2);
  lua_insert(L, -nargs - 1);
  return report(L, docall(L, nargs, nres));
}

/* Asks tide.host what argv is, given the name tide was run by (a link
 * named parallel takes GNU parallel's command line); that decision is
 * policy, and lives in Lua.  A one-liner (GNU parallel's command line) runs
 * here and leaves tide's exit status on the stack (*ran).  A script that GNU
 * parallel's options come before gets its index in *script_at: tide.host makes
 * those options its pools' defaults, or refuses one (*ran, with the exit
 * status). */
static int oneliner(lua_State *L, int args, const char *name, int *ran,
                    int *script_at) {
  lua_pushvalue(L, args);
  lua_pushstring(L, name);
  if (call_host(L, "is_oneliner", 2, 1) != LUA_OK) return 0;
  if (lua_isinteger(L, -1)) {
    *script_at = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_pushvalue(L, args);
    lua_pushinteger(L, *script_at);
    if (call_host(L, "script_options", 2, 2) != LUA_OK) return 0;
    *ran = !lua_toboolean(L, -2);
    lua_remove(L, -2);
    if (!*ran) lua_pop(L, 1);
    return 1;
  }
  *ran = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (!*ran) return 1;
  lua_pushvalue(L, args);
  return call_host(L, "oneliner", 1, 1) == LUA_OK;
}

static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  /* tide's arguments as given, before collectargs rewrites --help */
  lua_createtable(L, argc, 0);
  for (int i = 1; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  int argtable = lua_gettop(L);
  int script = argc;
  int args = collectargs(argv, &script);
  luaL_checkversion(L);
  lua_pushinteger(L, EXIT_SCRIPT_ERROR); /* the result unless changed */
  if (args != has_error && (args & has_E)) {
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_openlibs(L);
  tide_preload(L, getenv("TIDE_LUADIR"));
  lua_gc(L, LUA_GCRESTART);
  lua_gc(L, LUA_GCGEN, 0, 0);
  int ran = 0, script_at = 0;
  if (!oneliner(L, argtable, argv[0], &ran, &script_at) || ran) return 1;
  if (script_at > 0) {
    /* GNU parallel's options, already taken by tide.host, then the script */
    script = script_at;
    args = 0;
  }
  if (args == has_error) {
    print_usage(argv[script]);
    return 1;
  }
  for (int i = 1; i < script && script_at == 0; i++) {
    if (argv[i][1] != 'j') continue;
    const char *v = argv[i][2] ? argv[i] + 2 : argv[i + 1];
    if ((default_jobs = parse_jobs(v)) < 0) return 1;
  }
  if (args & has_i) {
    print_usage(NULL);
    lua_pushinteger(L, 0);
    return 1;
  }
  if (args & has_v) print_version();
  createargtable(L, argv, argc, script);
  lua_pushinteger(L, default_jobs);
  if (progress < 0)
    lua_pushnil(L);
  else
    lua_pushboolean(L, progress);
  if (call_host(L, "setup", 2, 0) != LUA_OK) return 1;
  if (!(args & has_E) && handle_luainit(L) != LUA_OK) return 1;
  if (script_at == 0 && !runargs(L, argv, script)) return 1;
  if (script < argc) {
    if (handle_script(L, argv + script) != LUA_OK) return 1;
  } else if (!(args & (has_e | has_v))) {
    if (isatty(0)) {
      print_usage(NULL);
      return 1;
    }
    if (dochunk(L, luaL_loadfile(L, NULL)) != LUA_OK) return 1;
  }
  if (call_host(L, "finish", 0, 1) != LUA_OK) return 1;
  return 1;
}

/* os.exit() leaves without unwinding: no job may outlive tide even then.
 * The jobs must be dead before the orphan scan: a setsid grandchild is
 * tide's to find only once every process above it in its job has gone. */
static void kill_jobs_at_exit(void) {
  tide_status_hide(2);
  tide_jobs_kill_wait();
  tide_reaper_kill_all();
}

/* A descriptor 0, 1 or 2 that is closed at start would be taken by the
 * next open (libuv's signal pipe, a job's pipe, a log file), so printing
 * would write into it and libuv would refuse to close it: /dev/null takes
 * its place, as lua.c's stdio would have it behave. */
static void open_stdio(void) {
  for (int fd = 0; fd <= 2; fd++)
    if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
      int n = open("/dev/null", O_RDWR);
      if (n >= 0 && n != fd) { /* a lower one failed to open */
        dup2(n, fd);
        close(n);
      }
    }
}

/* Descriptors tide inherited must not reach its jobs: every one above 2
 * becomes close-on-exec.  Not 0-2 (uv_disable_stdio_inheritance marks them
 * too), which os.execute and io.popen children need, as under lua. */
static void cloexec_above_stdio(void) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) {
    for (int fd = 3; fd < 1024; fd++)
      fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
    return;
  }
  int self = dirfd(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    int fd = atoi(e->d_name);
    if (fd > 2 && fd != self) {
      int flags = fcntl(fd, F_GETFD);
      if (flags >= 0) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    }
  }
  closedir(d);
}

int main(int argc, char **argv) {
  open_stdio();
  cloexec_above_stdio();
  atexit(kill_jobs_at_exit);
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    l_message("cannot create state: not enough memory");
    return EXIT_SCRIPT_ERROR;
  }
  int rc = tide_loop_init(L);
  if (rc != 0) {
    fprintf(stderr, "%s: cannot create the event loop: %s\n", progname,
            uv_strerror(rc));
    lua_close(L);
    return EXIT_SCRIPT_ERROR;
  }
  lua_gc(L, LUA_GCSTOP);
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  int status = lua_pcall(L, 2, 1, 0);
  int code = EXIT_SCRIPT_ERROR;
  if (status != LUA_OK)
    report(L, status);
  else if (lua_isinteger(L, -1))
    code = (int)lua_tointeger(L, -1);
  /* A signal (or core.die) ended the script: tide goes as the signal would
   * have it go, but only after the jobs and the Lua state, so that __gc
   * and __close clean up (a socket directory, a temporary file). */
  if (tide_dying()) {
    tide_status_hide(2); /* no half-drawn status line after tide */
    code = 128 + tide_dying();
  }
  tide_teardown(tide_conf.kill_grace_ms);
  tide_signal_detach();
  lua_close(L);
  tide_loop_close();
  return code;
}
