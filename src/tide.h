/*
 * tide.h: the internal C API shared by the files in src/.
 *
 * C provides mechanisms only: one libuv loop, processes with pipes, timers,
 * signals and bounded output buffers.  Everything that decides *what* to run
 * and *when* lives in lua/.  libuv callbacks never call into Lua: they record
 * state and queue finished objects (and news: new output of a watched job),
 * which tide_step() hands to the Lua driver.
 *
 * The files form layers, listed here bottom-up (scripts/check-layers holds
 * the same list and checks it); a file calls only into its own layer or
 * lower ones:
 *   1 signal.c        signals, signal names, tide_die
 *   2 out.c           writing, tagged lines, the status line, errors for Lua
 *   3 buf.c lines.c   bounded buffers; line splitting of watched output
 *   4 queue.c         the loop, objects, completion and news queues
 *   5 spawn.c         starting one process
 *   6 proc.c          jobs: process lifetime, exit watching, pipes
 *   7 reaper.c timer.c  orphans; timers
 *   8 loop.c          loop set-up, the driver step, teardown
 *   9 lcore_job.c lcore_store.c glob.c frame.c   tide.core bindings
 *  10 core.c          the tide.core module
 *  11 preload.c main.c module.c  the hosts: the executable, tide.so
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

/* ---- signal.c: SIGINT/SIGTERM/SIGHUP, signal names, dying ---- */

void tide_signal_init(lua_State *L, uv_async_t *wake);
/* Signals no longer interrupt Lua (the host is closing the state). */
void tide_signal_detach(void);
int tide_signal_pending(void);
int tide_signal_count(void);
/* The signals whose disposition tide changed: jobs get them back. */
const sigset_t *tide_signals_changed(void);
int tide_resume(lua_State *L);
/* Ends tide as sig would: raises an error that unwinds to the host, which
 * stops the jobs, closes the Lua state and exits with 128 + sig.  Every
 * later core.step/core.resume raises again, so a pcall cannot stop it. */
int tide_die(lua_State *L, int sig);
/* The signal tide_die was called with, or 0. */
int tide_dying(void);
const char *tide_signame(int sig);
int tide_signum(const char *name);

/* ---- out.c: tide's own writes, the status line, errors for Lua ---- */

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

/* Erases the status line (core.status) if it is on screen and a write to
 * fd (1 or 2) would land on it. */
void tide_status_hide(int fd);
int tide_status_shown(void);
/* Writes s (the line, drawn over the old one) to stderr; it stays on
 * screen unless final.  0 or a negative errno. */
int tide_status_write(const char *s, size_t n, int final);

/* The one failure result for Lua: pushes nil, "ENAME: message (what):
 * 'name'" (the part in parentheses only with what and name) and "ENAME";
 * err is an errno or a negative one.  Returns 3. */
int tide_pusherr(lua_State *L, int err, const char *what, const char *name);
/* The Lua result of a write of tide's own (job:write, core.write, the
 * store): true, or tide_pusherr's; a write cut short by a signal for tide
 * ends it (tide_die). */
int tide_write_result(lua_State *L, int rc);

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
  /* The first spill failure (an errno), and the bytes dropped since: a
   * buffer never cuts output silently, its owner reports the loss. */
  int err;
  uint64_t lost;
} tide_buf;

void tide_buf_init(tide_buf *b);
/* Append; returns 0 or a negative errno when spilling failed (then, and
 * after, what did not fit in memory is dropped and counted in b->lost). */
int tide_buf_add(tide_buf *b, const char *p, size_t n);
uint64_t tide_buf_size(const tide_buf *b);
/* Write everything to fd (blocking); 0 or a negative errno (-EPIPE...). */
int tide_buf_write_to(const tide_buf *b, int fd);
/* Writes the content of b from off, len bytes, through o. */
int tide_buf_write_range(const tide_buf *b, uint64_t off, uint64_t len,
                         tide_out *o);
/* Appends the whole content of from to to; 0 or a negative errno. */
int tide_buf_copy(tide_buf *to, const tide_buf *from);
/* Push the whole content as one Lua string. */
void tide_buf_push(lua_State *L, const tide_buf *b);
/* Push only the last max bytes. */
void tide_buf_push_tail(lua_State *L, const tide_buf *b, uint64_t max);
/* Frees the content; the limit and a spill failure stay. */
void tide_buf_free(tide_buf *b);
/* Where spill files go: $TMPDIR, else /tmp. */
const char *tide_spill_dir(void);
/* An unlinked read-write file there (open flags added: O_APPEND); the
 * descriptor or a negative errno. */
int tide_spill_open(int flags);

/* ---- lines.c: what a watched stream holds until Lua takes it ---- */

/* The bytes not taken yet: data[start, len). */
typedef struct tide_lines {
  char *data;
  size_t start, len, cap;
  int midline; /* what was written so far ended inside a line */
  int paused;  /* reading stopped until Lua takes some */
} tide_lines;

int tide_lines_add(tide_lines *pd, const char *p, size_t n);
void tide_lines_free(tide_lines *pd);
/* Where what may be taken now ends (see lines.c). */
size_t tide_lines_end(const tide_lines *pd, size_t max_line, int final,
                      int raw);
/* Pushes lines, partial, noeol (job:lines) and returns 3, or pushes
 * nothing and returns 0 (no line yet) or -1 (nothing at all); *end is
 * where what was taken ends. */
int tide_lines_push(lua_State *L, const tide_lines *pd, size_t max, int final,
                    size_t *end);

/* ---- queue.c: the loop, objects and their queues ---- */

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
/* Queue o for the driver; called from libuv callbacks. */
void tide_complete(tide_obj *o);
/* Tell the driver that o, still running, has news (new output); queued at
 * most once until the driver has seen it.  Called from libuv callbacks. */
void tide_news(tide_obj *o);
/* Take o off the news queue (it is being freed). */
void tide_news_forget(tide_obj *o);
/* Whether either queue holds something; take their heads one by one. */
int tide_queued(void);
tide_obj *tide_take_done(void);
tide_obj *tide_take_news(void);
/* Pin the userdata on top of the stack until o is delivered. */
void tide_obj_pin(lua_State *L, tide_obj *o);
/* Handle close callback shared by every object: frees when nothing is left. */
void tide_obj_close_cb(uv_handle_t *h);
void tide_obj_release(tide_obj *o);
int tide_obj_gc(lua_State *L, const char *mt);
void tide_obj_class(lua_State *L, const char *mt, const luaL_Reg *methods,
                    lua_CFunction gc);

/* ---- spawn.c: starting a process in a session of its own ---- */

typedef struct tide_spawn_opts {
  const char *const *argv; /* argv[0] is searched in PATH without a '/' */
  char *const *envp;       /* NULL: tide's environment */
  const char *cwd;         /* NULL: tide's */
  int fd[3];               /* the job's stdin, stdout and stderr */
} tide_spawn_opts;

/* 0, or the errno of what failed (vfork, or the exec itself). */
int tide_spawn(const tide_spawn_opts *o, pid_t *pid);
/* The environment of a job: tide's, changed by the table at index env (0:
 * none) and by the "NAME=value" strings, or lists of them, at indices
 * extra..top; NULL if out of memory.  Valid until the next call: spawn
 * with it at once.  Pointers into environ, never copies of it: building it
 * costs a test or two per variable. */
char **tide_spawn_env(lua_State *L, int env, int extra, int top);
/* 0, or the first index in extra..top that is not nil, a "NAME=value"
 * string or a list of them. */
int tide_spawn_env_check(lua_State *L, int extra, int top);

/* ---- proc.c: jobs ---- */

/* Mechanism constants, one home; core.configure sets them from Lua. */
typedef struct tide_config {
  uint64_t kill_grace_ms; /* SIGTERM to SIGKILL: teardown, job:terminate() */
  uint64_t drain_ms;      /* how long pipes may stay open after the exit */
  int file_output;        /* TIDE_FILES_*: grouped output through files */
} tide_config;
extern tide_config tide_conf;

/* When a grouped stream goes to a file instead of a pipe (proc.c). */
enum { TIDE_FILES_NEVER, TIDE_FILES_AUTO, TIDE_FILES_ALWAYS };

enum { TIDE_OUT, TIDE_ERR };
/* Where a stream goes.  TIDE_DISP_FILE: only to a results file, so the
 * job writes it there itself, with no pipe in between; TIDE_DISP_SPILL:
 * grouped, to a temporary file (j->file) rather than a pipe. */
enum {
  TIDE_DISP_PIPE,
  TIDE_DISP_INHERIT,
  TIDE_DISP_NULL,
  TIDE_DISP_FILE,
  TIDE_DISP_SPILL
};

typedef struct tide_job {
  tide_obj obj;
  pid_t pid; /* 0 until started */
  int pidfd; /* readable = the leader exited; in proc.c's epoll */
  struct tide_pipe *pipe[2]; /* output pipes being read (proc.c) */
  int file[2];    /* the file a grouped stream goes to instead, or -1 */
  int grouped[2]; /* the stream is kept whole and nothing else */
  uv_pipe_t in;
  uv_timer_t timer; /* kill grace while running, drain bound after exit */
  uv_write_t wreq;
  char *in_data;
  tide_buf buf[2];
  tide_lines pend[2];
  int tee[2];     /* results file descriptor, or -1 */
  int tee_err[2]; /* errno of a failed write to it */
  int routed;     /* any of keep = false, watch, tee: deliver() decides */
  int keep, watch;
  size_t max_line;
  int reading[2];
  int timer_init, exited, finished, by_sigchld;
  int watching; /* the exit is watched (pidfd or SIGCHLD), not inferred */
  int hold_in;  /* stdin stays open until the job ends */
  int virt;     /* runs elsewhere: Lua feeds and settles it (core.virtual) */
  int disp[2];  /* a virtual job's TIDE_DISP_* per stream */
  int status;   /* wait status */
  struct rusage ru;
  uint64_t t0, t1;
  struct tide_job *prev, *next; /* running list */
} tide_job;

/* What tide_job_start needs beyond the job's own fields (keep, watch,
 * max_line, hold_in and the buffers' limits, set by the caller). */
typedef struct tide_job_opts {
  const char *const *argv;
  char *const *envp; /* NULL: tide's environment */
  const char *cwd;
  const char *in; /* stdin bytes, or NULL: /dev/null */
  size_t inlen;
  int disp[2];        /* TIDE_DISP_PIPE, _INHERIT or _NULL */
  const char *tee[2]; /* results files of piped streams, or NULL */
} tide_job_opts;

/* What a failed start names: ("cwd", dir), ("cmd", argv[0]),
 * ("tee_stdout", path)..., or NULLs for a resource shortage. */
typedef struct tide_job_fail {
  const char *what, *name;
} tide_job_fail;

tide_job *tide_job_new(void);
/* 0, or an errno and *why; the job is then not running. */
int tide_job_start(tide_job *j, const tide_job_opts *o, tide_job_fail *why);
/* After a failed start: closes what the start left open. */
void tide_job_unstarted(tide_job *j);
int tide_resource_error(int err);
/* A virtual job: its output options applied (tee files opened), no
 * process; 0 or an errno and *why. */
int tide_job_virtual(tide_job *j, const tide_job_opts *o, tide_job_fail *why);
/* Bytes of stream k of a virtual job, routed as a pipe's would be. */
void tide_job_feed(tide_job *j, int k, const char *p, size_t n);
/* A virtual job's end: wait status, start and end (ns, uv_hrtime's clock). */
void tide_job_settle(tide_job *j, int status, uint64_t t0, uint64_t t1,
                     const struct rusage *ru);
/* Queues n bytes for the stdin that hold_stdin keeps open; 0 or an errno
 * (EPIPE once it is closed). */
int tide_job_send(tide_job *j, const char *p, size_t n);
/* Lua took pend[k] up to end; reading resumes if it had paused. */
void tide_job_consume(tide_job *j, int k, size_t end);
/* Drops the buffered output. */
void tide_job_release(tide_job *j);
void tide_job_terminate(tide_job *j, uint64_t grace_ms);
void tide_job_hangup(tide_job *j, uint64_t grace_ms);
/* Running jobs, for teardown and signal forwarding. */
int tide_jobs_running(void);
void tide_jobs_terminate(uint64_t grace_ms);
void tide_jobs_kill(int sig);
/* SIGKILL every job's group and wait until it is gone (at exit). */
void tide_jobs_kill_wait(void);
/* After the loop closed: closes the descriptors of jobs never finished
 * (os.exit), freeing those whose userdata is gone, and proc.c's epoll. */
void tide_jobs_close(void);
/* Calls fn with the leader of every job that has not finished. */
void tide_jobs_each(void (*fn)(pid_t, void *), void *ud);
/* True if pid is the leader of a job that has not finished. */
int tide_job_owns(pid_t pid);

/* ---- reaper.c: orphans of jobs, re-parented to tide ---- */

void tide_reaper_init(void);
void tide_reaper_kill_all(void);

/* ---- timer.c ---- */

int tide_timer_new(lua_State *L);
void tide_timer_register(lua_State *L);

/* ---- reader.c: reading one of tide's own descriptors (tide --worker) ---- */

int tide_reader_new(lua_State *L);
void tide_reader_register(lua_State *L);

/* ---- loop.c: set-up, the driver step, teardown ---- */

int tide_loop_init(lua_State *L);
int tide_step(lua_State *L);
/* Terminate every running job (SIGTERM, SIGKILL after grace_ms), wait for
 * all of them, then return.  Used at exit and on signals. */
void tide_teardown(uint64_t grace_ms);
void tide_loop_close(void);

/* ---- bindings: lcore_job.c, lcore_store.c, glob.c, frame.c ---- */

int tide_job_spawn(lua_State *L);
int tide_job_virtual_new(lua_State *L);
void tide_job_register(lua_State *L);
/* Copies a job's stream into the output store at idx (job:store). */
int tide_store_add(lua_State *L, int idx, const tide_buf *from);
void tide_store_register(lua_State *L);
int tide_store_new(lua_State *L);
/* core.glob(pattern), matches in file system order */
int tide_glob(lua_State *L);
/* core.frame, core.unframe: the frames between tide and its workers */
int tide_frame_encode(lua_State *L);
int tide_frame_decode(lua_State *L);

/* ---- core.c: the tide.core module; preload.c: embedded Lua ---- */

int luaopen_tide_core(lua_State *L);
void tide_preload(lua_State *L, const char *devdir);
/* module.c: tide.so, the host for require "tide" from any Lua 5.4. */
int luaopen_tide(lua_State *L);

#endif
