/*
 * tide.h: the internal C API shared by the files in src/.
 *
 * C provides mechanisms only: one libuv loop, processes with pipes, timers,
 * signals and bounded output buffers.  Everything that decides *what* to run
 * and *when* lives in lua/.  libuv callbacks never call into Lua: they record
 * state and queue finished objects (and news: new output of a watched job),
 * which tide_step() hands to the Lua driver.
 */
#ifndef TIDE_H
#define TIDE_H

#include <signal.h>
#include <stddef.h>
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
  /* With a limit (max_output), only the first half of the limit is kept as
   * above and the last half in a ring; the bytes between are only counted,
   * so a job that prints without end costs a fixed amount. */
  uint64_t limit; /* 0: keep everything */
  char *ring;
  size_t ring_start, ring_len;
  uint64_t omitted;
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
/* write(2) until done; -EINTR as soon as a signal for tide is pending. */
int tide_write_all(int fd, const char *p, size_t n);

/* A writer that puts a prefix (a tag) before every line, staging small
 * lines so that thousands of them cost a few write(2) calls.  at_start
 * says whether the next byte begins a line: it carries over between calls
 * when a job's output is written a piece at a time. */
typedef struct tide_out {
  int fd;
  const char *prefix;
  size_t plen, n;
  int at_start;
  char stage[1 << 16];
} tide_out;

void tide_out_init(tide_out *o, int fd, const char *prefix, size_t plen,
                   int at_start);
int tide_out_add(tide_out *o, const char *p, size_t n);
/* Flushes; first ends an unfinished last line with "\n" if newline. */
int tide_out_end(tide_out *o, int newline);
/* Writes the content of b from off, len bytes, through o. */
int tide_buf_write_range(const tide_buf *b, uint64_t off, uint64_t len,
                         tide_out *o);
/* The buffer of a job's stream (the job at idx, the stream name at idx+1),
 * for the output store (job.c). */
tide_buf *tide_job_buf(lua_State *L, int idx);
void tide_store_register(lua_State *L);
int tide_store_new(lua_State *L);

/* ---- loop.c: the loop, the completion queue and the driver step ---- */

/* Anything that completes in C and is handed to Lua by tide_step(). */
typedef struct tide_obj {
  struct tide_obj *next_done; /* completion queue link */
  struct tide_obj *next_news; /* news queue link (a watched job's output) */
  int news_queued;            /* on the news queue: at most once a turn */
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
/* Tell the driver that o, still running, has news (new output); queued at
 * most once until the driver has seen it.  Called from libuv callbacks. */
void tide_news(tide_obj *o);
/* Take o off the news queue (it is being freed). */
void tide_news_forget(tide_obj *o);
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
/* The Lua result of a write of tide's own (job:write, core.write): true,
 * or nil, message, errname; a write cut short by a signal for tide ends
 * it (tide_die). */
int tide_write_result(lua_State *L, int rc);
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
/* Erases the status line (core.status) if it is on screen and a write to
 * fd (1 or 2) would land on it. */
void tide_status_hide(int fd);
void tide_preload(lua_State *L, const char *devdir);

#endif
