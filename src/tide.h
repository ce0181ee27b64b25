/*
 * tide.h: the internal C API shared by the files in src/.
 *
 * C provides mechanisms only: one libuv loop, processes with pipes, timers,
 * signals and bounded output buffers.  Everything that decides *what* to run
 * and *when* lives in lua/.  libuv callbacks never call into Lua: they record
 * state and queue finished objects, which tide_step() hands to the Lua driver.
 */
#ifndef TIDE_H
#define TIDE_H

#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#define TIDE_VERSION "0.1.0"

/* ---- buf.c: a bounded output buffer that spills to an unlinked file ---- */

typedef struct tide_buf {
  char *data;
  size_t len, cap;
  int spill_fd;     /* -1 until the in-memory part first overflows */
  uint64_t spilled; /* bytes already in the spill file */
} tide_buf;

void tide_buf_init(tide_buf *b);
/* Append; returns 0 or a negative errno when spilling failed. */
int tide_buf_add(tide_buf *b, const char *p, size_t n);
uint64_t tide_buf_size(const tide_buf *b);
/* Write everything to fd (blocking); 0 or a negative errno (-EPIPE...). */
int tide_buf_write_to(const tide_buf *b, int fd);
/* Push the whole content as one Lua string. */
void tide_buf_push(lua_State *L, const tide_buf *b);
void tide_buf_free(tide_buf *b);

/* ---- loop.c: the loop, the completion queue and the driver step ---- */

/* Anything that completes in C and is handed to Lua by tide_step(). */
typedef struct tide_obj {
  struct tide_obj *next_done; /* completion queue link */
  int ref;                    /* registry ref pinning the userdata; LUA_NOREF
                                 once handed to Lua */
  int open_handles;           /* libuv handles not yet closed */
  int ud_gone;                /* the userdata was collected */
  void (*free)(struct tide_obj *);
} tide_obj;

uv_loop_t *tide_loop(void);
int tide_loop_init(lua_State *L);
/* Queue o for the driver; called from libuv callbacks. */
void tide_complete(tide_obj *o);
/* Pin the userdata on top of the stack until o is delivered. */
void tide_obj_pin(lua_State *L, tide_obj *o);
/* Handle close callback shared by every object: frees when nothing is left. */
void tide_obj_close_cb(uv_handle_t *h);
void tide_obj_release(tide_obj *o);
int tide_obj_gc(lua_State *L, const char *mt);
void tide_obj_class(lua_State *L, const char *mt, const luaL_Reg *methods,
                    lua_CFunction gc);
int tide_step(lua_State *L);
/* Terminate every running job (SIGTERM, SIGKILL after grace_ms), wait for
 * all of them, then return.  Used at exit and on signals. */
void tide_teardown(unsigned grace_ms);
void tide_loop_close(void);

/* ---- signal.c: SIGINT/SIGTERM/SIGHUP and the broken-pipe exit ---- */

void tide_signal_init(lua_State *L, uv_async_t *wake);
int tide_signal_pending(void);
int tide_signal_count(void);
/* The signals whose disposition tide changed: jobs get them back. */
const sigset_t *tide_signals_changed(void);
int tide_resume(lua_State *L);
/* Terminate all jobs and exit with 128 + sig.  Never returns. */
void tide_die(int sig);

/* ---- spawn.c: starting a process in a session of its own ---- */

typedef struct tide_spawn_opts {
  const char *const *argv; /* argv[0] is searched in PATH without a '/' */
  char *const *envp;       /* NULL: tide's environment */
  const char *cwd;         /* NULL: tide's */
  int fd[3];               /* the job's stdin, stdout and stderr */
} tide_spawn_opts;

/* 0, or the errno of what failed (vfork, or the exec itself). */
int tide_spawn(const tide_spawn_opts *o, pid_t *pid);
char **tide_spawn_env(lua_State *L, int env);
void tide_spawn_env_free(char **envp);

/* ---- job.c: processes ---- */

typedef struct tide_job tide_job;
int tide_job_spawn(lua_State *L);
void tide_job_register(lua_State *L);
/* Running jobs, for teardown and signal forwarding. */
int tide_jobs_running(void);
void tide_jobs_terminate(unsigned grace_ms);
void tide_jobs_kill(int sig);
const char *tide_signame(int sig);

/* True if pid is the leader of a job that has not finished. */
int tide_job_owns(pid_t pid);

/* ---- reaper.c: orphans of jobs, re-parented to tide ---- */

void tide_reaper_init(void);
void tide_reaper_kill_all(void);

/* ---- timer.c ---- */

int tide_timer_new(lua_State *L);
void tide_timer_register(lua_State *L);

/* ---- glob.c: core.glob(pattern), matches in file system order ---- */

int tide_glob(lua_State *L);

/* ---- core.c: the tide.core module; preload.c: embedded Lua ---- */

int luaopen_tide_core(lua_State *L);
void tide_preload(lua_State *L, const char *devdir);

#endif
