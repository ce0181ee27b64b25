/*
 * job.c: one process per job, in its own session and process group, and
 * the Lua object that stands for it.
 *
 * The child's exit is watched with a pidfd polled by the loop, so no
 * SIGCHLD handler and no waitpid(-1) are needed.  A job completes when its
 * leader has exited and both output pipes reached EOF.  A grandchild
 * holding a pipe open gets TIDE_DRAIN_MS, then the whole group is killed:
 * nothing a job started outlives the job.  The leader stays a zombie until
 * then, so its pid (the group id) cannot be reused under us.
 *
 * What happens to the bytes read from a job is chosen by Lua at spawn
 * (deliver()): kept whole in a bounded buffer (grouped output, capture),
 * copied to a results file as they come (tee), and/or watched: queued for
 * line splitting, with news sent to the driver, so Lua can print complete
 * lines as they come or hand them to a callback.  A job with none of these
 * options takes the same path as before they existed.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lauxlib.h>

#include "tide.h"

#define TIDE_DRAIN_MS 100
#define JOB_MT "tide.job"
#define TIDE_MAX_LINE (1u << 20) /* default max_line */
/* A watched stream stops being read while this much more than max_line
 * waits for Lua to take it: the job then blocks on a full pipe, as it
 * would writing to a slow reader, and tide's memory stays bounded even if
 * a per-line callback takes its time. */
#define TIDE_PEND_SLACK 65536

enum { OUT, ERR };
/* DISP_FILE: the stream only goes to a results file, so the job writes it
 * there itself, with no pipe in between. */
enum { DISP_PIPE, DISP_INHERIT, DISP_NULL, DISP_FILE };

/* The bytes of a watched stream that Lua has not taken yet: data[start,
 * len).  Lines are split only when Lua takes them, so a read costs a
 * memcpy, however many lines it holds. */
typedef struct pending {
  char *data;
  size_t start, len, cap;
  int midline; /* what was written so far ended inside a line */
  int paused;  /* reading stopped until Lua takes some */
} pending;

struct tide_job {
  tide_obj obj;
  pid_t pid; /* 0 when the program could not be started */
  int pidfd;
  uv_poll_t poll; /* pidfd readable = the leader exited */
  uv_pipe_t pipe[2];
  uv_pipe_t in;
  uv_timer_t timer; /* kill grace while running, drain bound after exit */
  uv_write_t wreq;
  char *in_data;
  tide_buf buf[2];
  pending pend[2];
  int tee[2];     /* results file descriptor, or -1 */
  int tee_err[2]; /* errno of a failed write to it */
  int routed;     /* any of keep = false, watch, tee: deliver() decides */
  int keep, watch;
  size_t max_line;
  int reading[2];
  int timer_init, exited, finished, by_sigchld;
  int hold_in; /* stdin stays open until the job ends (see tide_job_spawn) */
  int status; /* wait status, or exit code << 8 for a failed start */
  struct rusage ru;
  uint64_t t0, t1;
  tide_job *prev, *next; /* running list */
};

static tide_job *running;
static int nrunning;
static int devnull = -1;
static uv_signal_t sigchld; /* only for jobs without a pidfd */
static int sigchld_ready, no_pidfd, nby_sigchld;
/* One read buffer for every pipe: libuv calls alloc_cb, read and read_cb
 * back to back for one stream, and everything runs on the loop thread. */
static char scratch[65536];

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

static int signum(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TNUMBER) return (int)luaL_checkinteger(L, idx);
  const char *name = luaL_optstring(L, idx, "SIGTERM");
  for (size_t i = 0; i < sizeof signames / sizeof signames[0]; i++)
    if (strcmp(signames[i].name, name) == 0 ||
        strcmp(signames[i].name + 3, name) == 0)
      return signames[i].sig;
  return luaL_argerror(L, idx, lua_pushfstring(L, "unknown signal '%s'", name));
}

/* ---- the running list ---- */

int tide_jobs_running(void) { return nrunning; }

int tide_job_owns(pid_t pid) {
  for (tide_job *j = running; j; j = j->next)
    if (j->pid == pid) return 1;
  return 0;
}

static void unlink_running(tide_job *j) {
  if (j->prev)
    j->prev->next = j->next;
  else
    running = j->next;
  if (j->next) j->next->prev = j->prev;
  j->prev = j->next = NULL;
  nrunning--;
}

void tide_jobs_kill(int sig) {
  for (tide_job *j = running; j; j = j->next)
    kill(-j->pid, sig);
}

/* ---- completion ---- */

static void close_handle(tide_job *j, uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, tide_obj_close_cb);
  (void)j;
}

static int pend_add(pending *pd, const char *p, size_t n) {
  if (pd->cap - pd->len < n && pd->start > 0) {
    memmove(pd->data, pd->data + pd->start, pd->len - pd->start);
    pd->len -= pd->start;
    pd->start = 0;
  }
  if (pd->cap - pd->len < n) {
    size_t cap = pd->cap ? pd->cap : 4096;
    while (cap - pd->len < n)
      cap *= 2;
    char *d = realloc(pd->data, cap);
    if (d == NULL) return -ENOMEM;
    pd->data = d;
    pd->cap = cap;
  }
  memcpy(pd->data + pd->len, p, n);
  pd->len += n;
  return 0;
}

static void pend_free(pending *pd) {
  free(pd->data);
  memset(pd, 0, sizeof *pd);
}

static void tee_close(tide_job *j, int k) {
  if (j->tee[k] >= 0) close(j->tee[k]);
  j->tee[k] = -1;
}

/* Where the bytes of stream k go, as chosen at spawn. */
static void deliver(tide_job *j, int k, const char *p, size_t n) {
  if (j->keep) tide_buf_add(&j->buf[k], p, n);
  if (j->tee[k] >= 0) {
    int rc = tide_write_all(j->tee[k], p, n);
    if (rc < 0 && rc != -EINTR) { /* EINTR: tide is being stopped */
      j->tee_err[k] = -rc;
      tee_close(j, k);
    }
  }
  if (j->watch) pend_add(&j->pend[k], p, n);
}

/* Reads what a pipe still holds without blocking, before it is closed. */
static void drain(tide_job *j, int k) {
  int fd;
  if (uv_fileno((uv_handle_t *)&j->pipe[k], &fd) != 0) return;
  for (;;) {
    ssize_t n = read(fd, scratch, sizeof scratch);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (j->routed)
      deliver(j, k, scratch, (size_t)n);
    else
      tide_buf_add(&j->buf[k], scratch, (size_t)n);
  }
}

static void finish(tide_job *j) {
  if (j->finished) return;
  j->finished = 1;
  kill(-j->pid, SIGKILL); /* whatever the job left behind in its group */
  while (wait4(j->pid, &j->status, 0, &j->ru) < 0 && errno == EINTR) {}
  for (int k = OUT; k <= ERR; k++) {
    if (!j->reading[k]) continue;
    drain(j, k);
    j->reading[k] = 0;
    close_handle(j, (uv_handle_t *)&j->pipe[k]);
  }
  tee_close(j, OUT);
  tee_close(j, ERR);
  if (j->timer_init) close_handle(j, (uv_handle_t *)&j->timer);
  /* Input the job never read: cancel the write (its callback frees it). */
  if (j->in_data || j->hold_in) close_handle(j, (uv_handle_t *)&j->in);
  unlink_running(j);
  tide_complete(&j->obj);
}

static void on_timer(uv_timer_t *t) {
  tide_job *j = (tide_job *)t->data;
  if (j->exited)
    finish(j); /* drain bound reached */
  else
    kill(-j->pid, SIGKILL); /* kill grace over */
}

static void arm_timer(tide_job *j, uint64_t ms) {
  if (!j->timer_init) {
    uv_timer_init(tide_loop(), &j->timer);
    j->timer.data = &j->obj;
    j->obj.open_handles++;
    j->timer_init = 1;
  }
  uv_timer_start(&j->timer, on_timer, ms, 0);
}

static void exited(tide_job *j) {
  j->exited = 1;
  if (j->by_sigchld && --nby_sigchld == 0) uv_unref((uv_handle_t *)&sigchld);
  j->t1 = uv_hrtime();
  if (j->reading[OUT] || j->reading[ERR])
    arm_timer(j, TIDE_DRAIN_MS);
  else
    finish(j);
}

static void on_exit_poll(uv_poll_t *p, int status, int events) {
  tide_job *j = (tide_job *)p->data;
  (void)status;
  (void)events;
  close_handle(j, (uv_handle_t *)&j->poll);
  close(j->pidfd);
  j->pidfd = -1;
  exited(j);
}

/* Without a pidfd (kernels before 5.3, valgrind, or no descriptor left):
 * SIGCHLD says some child exited; waitid(WNOWAIT) tells which, leaving it
 * a zombie until finish(). */
static void on_sigchld(uv_signal_t *h, int sig) {
  (void)h;
  (void)sig;
  for (tide_job *j = running, *next; j; j = next) {
    next = j->next;
    siginfo_t si;
    si.si_pid = 0;
    if (j->by_sigchld && !j->exited &&
        waitid(P_PID, (id_t)j->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        si.si_pid == j->pid)
      exited(j);
  }
}

static void watch_by_sigchld(tide_job *j) {
  if (!sigchld_ready) {
    uv_signal_init(tide_loop(), &sigchld);
    uv_signal_start(&sigchld, on_sigchld, SIGCHLD);
    uv_unref((uv_handle_t *)&sigchld);
    sigchld_ready = 1;
  }
  j->by_sigchld = 1;
  if (nby_sigchld++ == 0) uv_ref((uv_handle_t *)&sigchld);
  /* The child may have exited before the handler was there: look now. */
  uv_kill(getpid(), SIGCHLD);
}

/* Starts watching for the leader's exit. */
static void watch(tide_job *j) {
  if (!no_pidfd) {
    j->pidfd = (int)syscall(SYS_pidfd_open, j->pid, 0);
    if (j->pidfd >= 0) {
      if (uv_poll_init(tide_loop(), &j->poll, j->pidfd) == 0) {
        j->poll.data = &j->obj;
        j->obj.open_handles++;
        uv_poll_start(&j->poll, UV_READABLE, on_exit_poll);
        return;
      }
      close(j->pidfd);
      j->pidfd = -1;
    } else if (errno == ENOSYS) {
      no_pidfd = 1;
    }
  }
  watch_by_sigchld(j);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)h;
  (void)hint;
  *buf = uv_buf_init(scratch, sizeof scratch);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  tide_job *j = (tide_job *)s->data;
  int k = s == (uv_stream_t *)&j->pipe[OUT] ? OUT : ERR;
  if (n > 0) {
    if (!j->routed) {
      tide_buf_add(&j->buf[k], buf->base, (size_t)n);
      return;
    }
    deliver(j, k, buf->base, (size_t)n);
    if (j->watch) {
      pending *pd = &j->pend[k];
      if (pd->len - pd->start >= j->max_line + TIDE_PEND_SLACK) {
        uv_read_stop(s);
        pd->paused = 1;
      }
      tide_news(&j->obj);
    }
    return;
  }
  if (n == 0) return; /* EAGAIN */
  j->reading[k] = 0;
  close_handle(j, (uv_handle_t *)s);
  if (j->exited && !j->reading[OUT] && !j->reading[ERR]) finish(j);
}

static void on_stdin_written(uv_write_t *req, int status) {
  tide_job *j = (tide_job *)req->data;
  (void)status; /* EPIPE: the job did not read its input; that is its call */
  free(j->in_data);
  j->in_data = NULL;
  if (!j->hold_in) close_handle(j, (uv_handle_t *)&j->in);
}

/* ---- the Lua object ---- */

static tide_job *checkjob(lua_State *L) {
  tide_obj **u = luaL_checkudata(L, 1, JOB_MT);
  if (*u == NULL) luaL_argerror(L, 1, "job already collected");
  return (tide_job *)*u;
}

static void job_free(tide_obj *o) {
  tide_job *j = (tide_job *)o;
  tide_news_forget(o);
  tide_buf_free(&j->buf[OUT]);
  tide_buf_free(&j->buf[ERR]);
  pend_free(&j->pend[OUT]);
  pend_free(&j->pend[ERR]);
  tee_close(j, OUT);
  tee_close(j, ERR);
  free(j->in_data);
  free(j);
}

static int job_gc(lua_State *L) { return tide_obj_gc(L, JOB_MT); }

/* job:result() -> code|nil, signal name|nil, elapsed seconds */
static int job_result(lua_State *L) {
  tide_job *j = checkjob(L);
  if (!j->finished) return luaL_error(L, "job is still running");
  if (WIFSIGNALED(j->status)) {
    const char *name = tide_signame(WTERMSIG(j->status));
    lua_pushnil(L);
    if (name)
      lua_pushstring(L, name);
    else
      lua_pushfstring(L, "SIG%d", WTERMSIG(j->status));
  } else {
    lua_pushinteger(L, WEXITSTATUS(j->status));
    lua_pushnil(L);
  }
  lua_pushnumber(L, (double)(j->t1 - j->t0) / 1e9);
  return 3;
}

static int job_pid(lua_State *L) {
  tide_job *j = checkjob(L);
  if (j->pid == 0) return 0;
  lua_pushinteger(L, j->pid);
  return 1;
}

/* job:usage() -> user seconds, system seconds, max RSS in KiB */
static int job_usage(lua_State *L) {
  tide_job *j = checkjob(L);
  lua_pushnumber(L, j->ru.ru_utime.tv_sec + j->ru.ru_utime.tv_usec / 1e6);
  lua_pushnumber(L, j->ru.ru_stime.tv_sec + j->ru.ru_stime.tv_usec / 1e6);
  lua_pushinteger(L, j->ru.ru_maxrss);
  return 3;
}

static int streamarg(lua_State *L, int idx) {
  static const char *const names[] = {"stdout", "stderr", NULL};
  return luaL_checkoption(L, idx, NULL, names);
}

/* job:output("stdout"|"stderr") -> everything the job wrote there */
static int job_output(lua_State *L) {
  tide_job *j = checkjob(L);
  tide_buf_push(L, &j->buf[streamarg(L, 2)]);
  return 1;
}

int tide_write_result(lua_State *L, int rc) {
  if (rc == -EINTR) tide_die(tide_signal_pending()); /* stuck on a full pipe */
  if (rc < 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", uv_err_name(rc), uv_strerror(rc));
    lua_pushstring(L, uv_err_name(rc));
    return 3;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* job:write(stream, fd [, prefix [, newline]]) -> true | nil, message,
 * errname.  Writes a stream to one of tide's own descriptors as one block,
 * with prefix before each line, and a final "\n" if newline and the last
 * line has none; stdio is flushed first so the block lands after what the
 * script printed. */
static int job_write(lua_State *L) {
  tide_job *j = checkjob(L);
  int k = streamarg(L, 2);
  int fd = (int)luaL_checkinteger(L, 3);
  size_t plen = 0;
  const char *prefix = luaL_optlstring(L, 4, NULL, &plen);
  int newline = lua_toboolean(L, 5);
  fflush(NULL);
  if (prefix == NULL && !newline)
    return tide_write_result(L, tide_buf_write_to(&j->buf[k], fd));
  tide_out o;
  tide_out_init(&o, fd, prefix, plen, 1);
  int rc = tide_buf_write_range(&j->buf[k], 0, tide_buf_size(&j->buf[k]), &o);
  if (rc == 0) rc = tide_out_end(&o, newline);
  return tide_write_result(L, rc);
}

/* job:release(): drop the buffered output once it is no longer needed. */
static int job_release(lua_State *L) {
  tide_job *j = checkjob(L);
  if (j->finished) {
    tide_buf_free(&j->buf[OUT]);
    tide_buf_free(&j->buf[ERR]);
    pend_free(&j->pend[OUT]);
    pend_free(&j->pend[ERR]);
  }
  return 0;
}

/* job:clear(stream): empty the kept buffer of one stream (its content was
 * printed while the job runs on). */
static int job_clear(lua_State *L) {
  tide_job *j = checkjob(L);
  tide_buf_free(&j->buf[streamarg(L, 2)]);
  return 0;
}

/* job:keep(stream, s): append s to the kept buffer (the lines a per-line
 * callback let through, printed as one block later). */
static int job_keep(lua_State *L) {
  tide_job *j = checkjob(L);
  int k = streamarg(L, 2);
  size_t n;
  const char *p = luaL_checklstring(L, 3, &n);
  int rc = tide_buf_add(&j->buf[k], p, n);
  if (rc < 0) return tide_write_result(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

/* job:omitted(stream) -> bytes max_output left out of the middle */
static int job_omitted(lua_State *L) {
  tide_job *j = checkjob(L);
  lua_pushinteger(L, (lua_Integer)j->buf[streamarg(L, 2)].omitted);
  return 1;
}

/* job:tee_error(stream) -> nil | why writing the results file failed */
static int job_tee_error(lua_State *L) {
  tide_job *j = checkjob(L);
  int e = j->tee_err[streamarg(L, 2)];
  if (e == 0) return 0;
  lua_pushstring(L, strerror(e));
  return 1;
}

/* ---- watched output: taking complete lines ---- */

static pending *checkpending(lua_State *L, tide_job **jp, int *kp) {
  tide_job *j = checkjob(L);
  int k = streamarg(L, 2);
  if (!j->watch) luaL_error(L, "job output is not watched");
  *jp = j;
  *kp = k;
  return &j->pend[k];
}

/* Where what may be written now ends: after the last complete line; all
 * of it at the end (final) or when raw; and a line longer than max_line
 * goes out in pieces rather than wait without bound. */
static size_t take_end(const tide_job *j, const pending *pd, int final,
                       int raw) {
  if (final || raw) return pd->len;
  const char *base = pd->data + pd->start;
  size_t n = pd->len - pd->start;
  const char *nl = n ? memrchr(base, '\n', n) : NULL;
  size_t end = nl ? (size_t)(nl - pd->data) + 1 : pd->start;
  if (pd->len - end >= j->max_line) end = pd->len;
  return end;
}

/* Lua took everything before end: drop it, and read again if reading
 * stopped for want of room. */
static void consume(tide_job *j, int k, size_t end) {
  pending *pd = &j->pend[k];
  pd->start = end;
  if (pd->start == pd->len) pd->start = pd->len = 0;
  if (pd->paused && j->reading[k] &&
      pd->len - pd->start < j->max_line + TIDE_PEND_SLACK) {
    pd->paused = 0;
    uv_read_start((uv_stream_t *)&j->pipe[k], on_alloc, on_read);
  }
}

/* job:flush(stream, fd [, prefix [, final [, newline [, raw]]]]) -> true |
 * nil, message, errname.  Writes the complete lines read so far to fd, with
 * prefix before each; with final (the job has ended) also an unfinished
 * last line, and then "\n" if newline; with raw every byte read so far. */
static int job_flush(lua_State *L) {
  tide_job *j;
  int k;
  pending *pd = checkpending(L, &j, &k);
  int fd = (int)luaL_checkinteger(L, 3);
  size_t plen = 0;
  const char *prefix = luaL_optlstring(L, 4, NULL, &plen);
  int final = lua_toboolean(L, 5), newline = lua_toboolean(L, 6);
  int raw = lua_toboolean(L, 7);
  size_t end = take_end(j, pd, final, raw);
  if (end == pd->start && !(final && newline && pd->midline)) {
    lua_pushboolean(L, 1);
    return 1;
  }
  tide_out o;
  tide_out_init(&o, fd, prefix, plen, !pd->midline);
  fflush(NULL);
  int rc = tide_out_add(&o, pd->data + pd->start, end - pd->start);
  if (rc == 0) rc = tide_out_end(&o, final && newline);
  pd->midline = !o.at_start;
  consume(j, k, end);
  return tide_write_result(L, rc);
}

/* job:hold(stream [, final]): moves the complete lines read so far (all,
 * with final) into the kept buffer, to be printed later as one block: a
 * line-mode job whose turn has not come (order = "input"). */
static int job_hold(lua_State *L) {
  tide_job *j;
  int k;
  pending *pd = checkpending(L, &j, &k);
  size_t end = take_end(j, pd, lua_toboolean(L, 3), 0);
  if (end > pd->start) {
    int rc = tide_buf_add(&j->buf[k], pd->data + pd->start, end - pd->start);
    pd->midline = pd->data[end - 1] != '\n';
    consume(j, k, end);
    if (rc < 0) return tide_write_result(L, rc);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static void push_line(lua_State *L, const char *p, size_t n, lua_Integer i,
                      int piece, int *partial) {
  lua_pushlstring(L, p, n);
  lua_rawseti(L, -2 - (*partial != 0), i);
  if (!piece) return;
  if (!*partial) {
    lua_newtable(L);
    *partial = 1;
  }
  lua_pushboolean(L, 1);
  lua_rawseti(L, -2, i);
}

/* job:lines(stream [, final]) -> lines, partial, noeol | nothing.  Takes
 * the complete lines read so far, without their "\n"; a line longer than
 * max_line comes in pieces, each but the last listed in the table partial
 * (nil when there are none); with final (the job has ended) also an
 * unfinished last line, and noeol is then true. */
static int job_lines(lua_State *L) {
  tide_job *j;
  int k;
  pending *pd = checkpending(L, &j, &k);
  int final = lua_toboolean(L, 3);
  const char *p = pd->data + pd->start, *e = pd->data + pd->len;
  size_t max = j->max_line;
  lua_Integer n = 0;
  int partial = 0, noeol = 0;
  if (p == e) return 0;
  lua_settop(L, 3);
  lua_newtable(L);
  while (p < e) {
    const char *nl = memchr(p, '\n', (size_t)(e - p));
    size_t len = nl ? (size_t)(nl - p) : (size_t)(e - p);
    if (!nl && !final) { /* an unfinished line: only whole pieces go */
      for (; len >= max; p += max, len -= max)
        push_line(L, p, max, ++n, 1, &partial);
      break;
    }
    for (; len > max; p += max, len -= max)
      push_line(L, p, max, ++n, 1, &partial);
    push_line(L, p, len, ++n, 0, &partial);
    p += len + (nl != NULL);
    noeol = nl == NULL;
  }
  consume(j, k, (size_t)(p - pd->data));
  if (n == 0) return 0;
  if (!partial) lua_pushnil(L);
  lua_pushboolean(L, noeol);
  return 3;
}

/* job:kill([sig]) -> true if the job was still running */
static int job_kill(lua_State *L) {
  tide_job *j = checkjob(L);
  int sig = signum(L, 2);
  lua_pushboolean(L, !j->exited && j->pid > 0 && kill(-j->pid, sig) == 0);
  return 1;
}

static void terminate(tide_job *j, uint64_t grace_ms) {
  if (j->exited || j->pid == 0) return;
  kill(-j->pid, SIGTERM);
  kill(-j->pid, SIGCONT); /* a stopped job must wake up to die */
  arm_timer(j, grace_ms);
}

/* job:terminate(grace): SIGTERM the group now, SIGKILL after grace seconds */
static int job_terminate(lua_State *L) {
  tide_job *j = checkjob(L);
  lua_Number grace = luaL_optnumber(L, 2, 2.0);
  luaL_argcheck(L, grace >= 0, 2, "grace must not be negative");
  terminate(j, (uint64_t)(grace * 1000));
  return 0;
}

/* job:hangup(grace): closes the stdin that hold_stdin kept open, so that
 * the remote side (see lua/tide/remote.lua) stops the job with its own
 * SIGTERM and grace and reports how it ended; SIGKILLs the local group
 * after grace seconds if it is still running. */
static int job_hangup(lua_State *L) {
  tide_job *j = checkjob(L);
  lua_Number grace = luaL_checknumber(L, 2);
  luaL_argcheck(L, grace >= 0, 2, "grace must not be negative");
  if (j->exited || j->pid == 0) return 0;
  if (j->hold_in) close_handle(j, (uv_handle_t *)&j->in);
  arm_timer(j, (uint64_t)(grace * 1000));
  return 0;
}

void tide_jobs_terminate(unsigned grace_ms) {
  for (tide_job *j = running; j; j = j->next)
    terminate(j, grace_ms);
}

/* ---- spawning ---- */

static int disposition(lua_State *L, int opts, const char *field) {
  static const char *const names[] = {"pipe", "inherit", "null", NULL};
  int d = DISP_PIPE;
  if (opts && lua_getfield(L, opts, field) != LUA_TNIL) {
    const char *s = lua_tostring(L, -1);
    d = -1;
    for (int i = 0; s && names[i]; i++)
      if (strcmp(s, names[i]) == 0) d = i;
    if (d < 0) luaL_error(L, "bad spawn option '%s'", field);
  }
  if (opts) lua_pop(L, 1);
  return d;
}

static lua_Integer intopt(lua_State *L, int opts, const char *field,
                          lua_Integer dflt, lua_Integer min) {
  lua_Integer v = dflt;
  if (lua_getfield(L, opts, field) != LUA_TNIL) {
    int ok;
    v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < min) luaL_error(L, "bad spawn option '%s'", field);
  }
  lua_pop(L, 1);
  return v;
}

/* Opens the results file of stream k; 0 or an errno. */
static int open_tee(lua_State *L, tide_job *j, int opts, int k,
                    const char **path) {
  static const char *const fields[] = {"tee_stdout", "tee_stderr"};
  int rc = 0;
  if (lua_getfield(L, opts, fields[k]) == LUA_TSTRING) {
    *path = lua_tostring(L, -1); /* the options table keeps it alive */
    j->tee[k] = open(*path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (j->tee[k] < 0) rc = errno;
  }
  lua_pop(L, 1);
  return rc;
}

/* A program that cannot start completes at once, as a shell would report
 * it: 127 for not found, 126 for not executable, and a message naming it. */
static void fail_start(tide_job *j, int code, const char *what, const char *why,
                       int errdisp) {
  char msg[4200];
  int n = snprintf(msg, sizeof msg, "tide: %s: %s\n", what, why);
  if (n > (int)sizeof msg - 1) n = (int)sizeof msg - 1;
  if (errdisp == DISP_PIPE || errdisp == DISP_FILE)
    deliver(j, ERR, msg, (size_t)n);
  else if (errdisp == DISP_INHERIT) {
    fflush(NULL);
    tide_status_hide(2);
    (void)!write(2, msg, (size_t)n);
  }
  tee_close(j, OUT);
  tee_close(j, ERR);
  j->status = code << 8;
  j->exited = j->finished = 1;
  j->t0 = j->t1 = uv_hrtime();
  tide_complete(&j->obj);
}

static void close_fds(int *fds, int n) {
  for (int i = 0; i < n; i++)
    if (fds[i] >= 0) close(fds[i]);
}

static int is_resource_error(int err) {
  return err == EMFILE || err == ENFILE || err == EAGAIN || err == ENOMEM;
}

/*
 * core.spawn(argv [, opts]) -> job | nil, message, errname
 * opts: cwd, env (table), stdin (string), stdout/stderr ("pipe", "inherit",
 * "null"), and for piped streams: keep (false: do not keep the output),
 * max_output (bytes kept per stream: the first and last half), watch
 * (split lines for job:lines/flush/hold, and send news), max_line (the
 * longest piece a watched line comes in), tee_stdout/tee_stderr (a results
 * file that gets every byte; a stream that goes nowhere else is given to
 * the job itself), hold_stdin (stdin is a pipe that stays open, after the
 * stdin bytes if any, until the job ends: a remote side that waits for
 * its end of file learns that the job's launcher is gone, even when tide
 * itself is killed).  Resource shortages (EMFILE, EAGAIN, ENOMEM) return nil
 * so the scheduler can wait and retry; a program that cannot start is a job
 * that has already failed.
 */
int tide_job_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int opts = lua_istable(L, 2) ? 2 : 0;
  lua_Integer argc = (lua_Integer)lua_rawlen(L, 1);
  luaL_argcheck(L, argc > 0, 1, "empty argv");
  int disp[2] = {disposition(L, opts, "stdout"),
                 disposition(L, opts, "stderr")};
  const char *cwd = NULL, *in = NULL;
  size_t inlen = 0;
  int envidx = 0;
  if (opts) {
    lua_getfield(L, opts, "cwd");
    cwd = lua_tostring(L, -1); /* kept alive by the stack slot */
    lua_getfield(L, opts, "stdin");
    in = lua_tolstring(L, -1, &inlen);
    lua_getfield(L, opts, "env");
    if (lua_istable(L, -1)) envidx = lua_gettop(L);
  }

  int keep = 1, watchit = 0, hold = 0;
  lua_Integer max_line = TIDE_MAX_LINE, max_output = 0;
  if (opts) {
    lua_getfield(L, opts, "keep");
    keep = lua_isnil(L, -1) || lua_toboolean(L, -1);
    lua_getfield(L, opts, "watch");
    watchit = lua_toboolean(L, -1);
    lua_getfield(L, opts, "hold_stdin");
    hold = lua_toboolean(L, -1);
    lua_pop(L, 3);
    if (hold && in == NULL) in = "";
    max_line = intopt(L, opts, "max_line", TIDE_MAX_LINE, 1);
    max_output = intopt(L, opts, "max_output", 0, 0);
  }

  /* Everything that can raise a Lua error happens before any resource is
   * taken, so an error never leaks a descriptor or a child. */
  const char **argv =
      lua_newuserdatauv(L, (size_t)(argc + 1) * sizeof *argv, 0);
  for (lua_Integer i = 0; i < argc; i++) {
    /* Only strings: the table keeps them alive after the pop. */
    if (lua_rawgeti(L, 1, i + 1) != LUA_TSTRING)
      return luaL_argerror(L, 1, "argv items must be strings");
    argv[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  argv[argc] = NULL;
  tide_obj **u = lua_newuserdatauv(L, sizeof *u, 0);
  *u = NULL;
  luaL_setmetatable(L, JOB_MT);
  tide_job *j = calloc(1, sizeof *j);
  if (j == NULL) return luaL_error(L, "out of memory");
  *u = &j->obj;
  j->obj.ref = LUA_NOREF;
  j->obj.free = job_free;
  j->pidfd = -1;
  tide_buf_init(&j->buf[OUT]);
  tide_buf_init(&j->buf[ERR]);
  j->tee[OUT] = j->tee[ERR] = -1;
  j->keep = 1;
  j->max_line = TIDE_MAX_LINE;
  tide_obj_pin(L, &j->obj);

  int fds[6] = {-1, -1, -1, -1, -1, -1}; /* out r/w, err r/w, in r/w */
  int err = 0;
  char **envp = NULL;
  const char *failpath = NULL;

  if (opts) {
    j->keep = keep;
    j->watch = watchit;
    j->max_line = (size_t)max_line;
    j->buf[OUT].limit = j->buf[ERR].limit = (uint64_t)max_output;
    j->hold_in = hold;
    for (int k = OUT; k <= ERR; k++) {
      if (disp[k] != DISP_PIPE) continue;
      const char *path = NULL;
      if ((err = open_tee(L, j, opts, k, &path)) != 0) {
        failpath = path;
        goto fail;
      }
      if (j->tee[k] >= 0 && !j->keep && !j->watch) disp[k] = DISP_FILE;
    }
    j->routed = !j->keep || j->watch || j->tee[OUT] >= 0 || j->tee[ERR] >= 0;
  }

  if (cwd) {
    struct stat st;
    int e = 0;
    if (stat(cwd, &st) != 0)
      e = errno;
    else if (!S_ISDIR(st.st_mode))
      e = ENOTDIR;
    else if (access(cwd, X_OK) != 0)
      e = errno;
    if (e != 0) {
      char what[4096];
      snprintf(what, sizeof what, "cannot change directory to '%s'", cwd);
      fail_start(j, 127, what, strerror(e), disp[ERR]);
      goto done;
    }
  }
  if (devnull < 0 && (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
    err = errno;
    goto fail;
  }
  for (int k = OUT; k <= ERR; k++)
    if (disp[k] == DISP_PIPE && pipe2(fds + 2 * k, O_CLOEXEC) != 0) {
      err = errno;
      goto fail;
    }
  if (in && pipe2(fds + 4, O_CLOEXEC) != 0) {
    err = errno;
    goto fail;
  }
  if (envidx && (envp = tide_spawn_env(L, envidx)) == NULL) {
    err = ENOMEM;
    goto fail;
  }

  tide_spawn_opts so = {argv, envp, cwd, {in ? fds[4] : devnull, 1, 2}};
  for (int k = OUT; k <= ERR; k++)
    if (disp[k] != DISP_INHERIT)
      so.fd[k + 1] = disp[k] == DISP_PIPE   ? fds[2 * k + 1]
                     : disp[k] == DISP_FILE ? j->tee[k]
                                            : devnull;
  err = tide_spawn(&so, &j->pid);
  if (err != 0) {
    if (is_resource_error(err)) goto fail;
    fail_start(j, err == ENOENT ? 127 : 126, argv[0],
               err == ENOENT ? "command not found" : strerror(err), disp[ERR]);
    goto done;
  }

  j->t0 = uv_hrtime();
  watch(j);
  for (int k = OUT; k <= ERR; k++) {
    if (disp[k] == DISP_FILE) tee_close(j, k); /* the job has it */
    if (disp[k] != DISP_PIPE) continue;
    close(fds[2 * k + 1]);
    fds[2 * k + 1] = -1;
    uv_pipe_init(tide_loop(), &j->pipe[k], 0);
    j->pipe[k].data = &j->obj;
    j->obj.open_handles++;
    uv_pipe_open(&j->pipe[k], fds[2 * k]);
    fds[2 * k] = -1;
    uv_read_start((uv_stream_t *)&j->pipe[k], on_alloc, on_read);
    j->reading[k] = 1;
  }
  if (in) {
    close(fds[4]);
    fds[4] = -1;
    uv_pipe_init(tide_loop(), &j->in, 0);
    j->in.data = &j->obj;
    j->obj.open_handles++;
    uv_pipe_open(&j->in, fds[5]);
    fds[5] = -1;
    if (inlen > 0 && (j->in_data = malloc(inlen)) != NULL) {
      memcpy(j->in_data, in, inlen);
      uv_buf_t b = uv_buf_init(j->in_data, (unsigned)inlen);
      j->wreq.data = j;
      uv_write(&j->wreq, (uv_stream_t *)&j->in, &b, 1, on_stdin_written);
    } else if (!j->hold_in) {
      close_handle(j, (uv_handle_t *)&j->in);
    }
  }
  j->next = running;
  if (running) running->prev = j;
  running = j;
  nrunning++;
  goto done;

fail:
  /* The userdata exists but never ran: unpin it and report. */
  close_fds(fds, 6);
  tee_close(j, OUT);
  tee_close(j, ERR);
  tide_spawn_env_free(envp);
  luaL_unref(L, LUA_REGISTRYINDEX, j->obj.ref);
  j->obj.ref = LUA_NOREF;
  lua_pushnil(L);
  if (failpath)
    lua_pushfstring(L, "%s: %s: %s", failpath, uv_err_name(-err),
                    uv_strerror(-err));
  else
    lua_pushfstring(L, "%s: %s", uv_err_name(-err), uv_strerror(-err));
  lua_pushstring(L, uv_err_name(-err));
  return 3;

done:
  close_fds(fds, 6);
  tide_spawn_env_free(envp);
  return 1;
}

void tide_job_register(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"result", job_result},       {"pid", job_pid},
      {"usage", job_usage},         {"output", job_output},
      {"write", job_write},         {"release", job_release},
      {"clear", job_clear},         {"keep", job_keep},
      {"omitted", job_omitted},     {"tee_error", job_tee_error},
      {"flush", job_flush},         {"hold", job_hold},
      {"lines", job_lines},         {"kill", job_kill},
      {"terminate", job_terminate}, {"hangup", job_hangup},
      {NULL, NULL}};
  tide_obj_class(L, JOB_MT, methods, job_gc);
}

tide_buf *tide_job_buf(lua_State *L, int idx) {
  tide_obj **u = luaL_checkudata(L, idx, JOB_MT);
  if (*u == NULL) luaL_argerror(L, idx, "job already collected");
  static const char *const names[] = {"stdout", "stderr", NULL};
  return &((tide_job *)*u)->buf[luaL_checkoption(L, idx + 1, NULL, names)];
}
