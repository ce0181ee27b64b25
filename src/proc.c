/*
 * proc.c (layer 6): one process per job, in its own session and process
 * group: starting it with its pipes, watching its exit, routing what it
 * writes, and stopping it.  The Lua object and core.spawn's options are
 * lcore_job.c's.
 *
 * The child's exit is watched with a pidfd polled by the loop, so no
 * SIGCHLD handler and no waitpid(-1) are needed.  A job completes when its
 * leader has exited and both output pipes reached EOF.  A grandchild
 * holding a pipe open gets tide_conf.drain_ms, then the whole group is
 * killed: nothing a job started outlives the job.  The leader stays a
 * zombie until then, so its pid (the group id) cannot be reused under us.
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
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tide.h"

/* The mechanism constants, set from Lua by core.configure. */
tide_config tide_conf = {
    .kill_grace_ms = 2000, /* SIGTERM to SIGKILL */
    .drain_ms = 100,       /* a grandchild holding a pipe after the exit */
};

/* A watched stream stops being read while this much more than max_line
 * waits for Lua to take it: the job then blocks on a full pipe, as it
 * would writing to a slow reader, and tide's memory stays bounded even if
 * a per-line callback takes its time. */
#define TIDE_PEND_SLACK 65536

static tide_job *running;
static int nrunning;
static int devnull = -1;
static uv_signal_t sigchld; /* only for jobs without a pidfd */
static int sigchld_ready, no_pidfd, nby_sigchld;
/* One read buffer for every pipe: libuv calls alloc_cb, read and read_cb
 * back to back for one stream, and everything runs on the loop thread. */
static char scratch[65536];

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

void tide_jobs_each(void (*fn)(pid_t, void *), void *ud) {
  for (tide_job *j = running; j; j = j->next)
    fn(j->pid, ud);
}

void tide_jobs_kill(int sig) {
  for (tide_job *j = running; j; j = j->next)
    kill(-j->pid, sig);
}

/* At exit (os.exit): SIGKILL every job's group and wait until the group is
 * empty, reaping the members that became tide's children (it is a
 * subreaper), so that whatever left a group is an orphan of tide's by the
 * time the reaper looks.  Bounded: a process stuck in the kernel may
 * outlast the wait. */
void tide_jobs_kill_wait(void) {
  tide_jobs_kill(SIGKILL);
  for (tide_job *j = running; j; j = j->next)
    if (!j->finished)
      while (waitpid(j->pid, &j->status, 0) < 0 && errno == EINTR) {}
  for (int ms = 0; ms < 2000; ms++) {
    int alive = 0;
    for (tide_job *j = running; j; j = j->next) {
      while (waitpid(-j->pid, NULL, WNOHANG) > 0) {}
      if (kill(-j->pid, 0) == 0) alive = 1;
    }
    if (!alive) break;
    usleep(1000);
  }
}

/* ---- completion ---- */

static void close_handle(uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, tide_obj_close_cb);
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
  if (j->watch) tide_lines_add(&j->pend[k], p, n);
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
  for (int k = TIDE_OUT; k <= TIDE_ERR; k++) {
    if (!j->reading[k]) continue;
    drain(j, k);
    j->reading[k] = 0;
    close_handle((uv_handle_t *)&j->pipe[k]);
  }
  tee_close(j, TIDE_OUT);
  tee_close(j, TIDE_ERR);
  if (j->timer_init) close_handle((uv_handle_t *)&j->timer);
  /* Input the job never read: cancel the write (its callback frees it). */
  if (j->in_data || j->hold_in) close_handle((uv_handle_t *)&j->in);
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
  if (j->reading[TIDE_OUT] || j->reading[TIDE_ERR])
    arm_timer(j, tide_conf.drain_ms);
  else
    finish(j);
}

static void on_exit_poll(uv_poll_t *p, int status, int events) {
  tide_job *j = (tide_job *)p->data;
  (void)status;
  (void)events;
  close_handle((uv_handle_t *)&j->poll);
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
  int k = s == (uv_stream_t *)&j->pipe[TIDE_OUT] ? TIDE_OUT : TIDE_ERR;
  if (n > 0) {
    if (!j->routed) {
      tide_buf_add(&j->buf[k], buf->base, (size_t)n);
      return;
    }
    deliver(j, k, buf->base, (size_t)n);
    if (j->watch) {
      tide_lines *pd = &j->pend[k];
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
  close_handle((uv_handle_t *)s);
  if (j->exited && !j->reading[TIDE_OUT] && !j->reading[TIDE_ERR]) finish(j);
}

/* Lua took everything before end: drop it, and read again if reading
 * stopped for want of room. */
void tide_job_consume(tide_job *j, int k, size_t end) {
  tide_lines *pd = &j->pend[k];
  pd->start = end;
  if (pd->start == pd->len) pd->start = pd->len = 0;
  if (pd->paused && j->reading[k] &&
      pd->len - pd->start < j->max_line + TIDE_PEND_SLACK) {
    pd->paused = 0;
    uv_read_start((uv_stream_t *)&j->pipe[k], on_alloc, on_read);
  }
}

static void on_stdin_written(uv_write_t *req, int status) {
  tide_job *j = (tide_job *)req->data;
  (void)status; /* EPIPE: the job did not read its input; that is its call */
  free(j->in_data);
  j->in_data = NULL;
  if (!j->hold_in) close_handle((uv_handle_t *)&j->in);
}

/* ---- the job's memory ---- */

static void job_free(tide_obj *o) {
  tide_job *j = (tide_job *)o;
  tide_news_forget(o);
  tide_job_release(j);
  tee_close(j, TIDE_OUT);
  tee_close(j, TIDE_ERR);
  free(j->in_data);
  free(j);
}

tide_job *tide_job_new(void) {
  tide_job *j = calloc(1, sizeof *j);
  if (j == NULL) return NULL;
  j->obj.ref = LUA_NOREF;
  j->obj.free = job_free;
  j->pidfd = -1;
  tide_buf_init(&j->buf[TIDE_OUT]);
  tide_buf_init(&j->buf[TIDE_ERR]);
  j->tee[TIDE_OUT] = j->tee[TIDE_ERR] = -1;
  j->keep = 1;
  return j;
}

void tide_job_release(tide_job *j) {
  tide_buf_free(&j->buf[TIDE_OUT]);
  tide_buf_free(&j->buf[TIDE_ERR]);
  tide_lines_free(&j->pend[TIDE_OUT]);
  tide_lines_free(&j->pend[TIDE_ERR]);
}

/* ---- stopping ---- */

void tide_job_terminate(tide_job *j, uint64_t grace_ms) {
  if (j->exited || j->pid == 0) return;
  kill(-j->pid, SIGTERM);
  kill(-j->pid, SIGCONT); /* a stopped job must wake up to die */
  arm_timer(j, grace_ms);
}

void tide_job_hangup(tide_job *j, uint64_t grace_ms) {
  if (j->exited || j->pid == 0) return;
  if (j->hold_in) close_handle((uv_handle_t *)&j->in);
  arm_timer(j, grace_ms);
}

void tide_jobs_terminate(uint64_t grace_ms) {
  for (tide_job *j = running; j; j = j->next)
    tide_job_terminate(j, grace_ms);
}

/* ---- starting ---- */

static void close_fds(int *fds, int n) {
  for (int i = 0; i < n; i++)
    if (fds[i] >= 0) close(fds[i]);
}

/* Opens the results file of stream k; 0 or an errno. */
static int open_tee(tide_job *j, int k, const char *path) {
  if (path == NULL) return 0;
  j->tee[k] = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  return j->tee[k] < 0 ? errno : 0;
}

/* Why cwd cannot be the job's directory: checked here, in tide, so that
 * the failure names the directory rather than the program. */
static int check_cwd(const char *cwd) {
  struct stat st;
  if (stat(cwd, &st) != 0) return errno;
  if (!S_ISDIR(st.st_mode)) return ENOTDIR;
  if (access(cwd, X_OK) != 0) return errno;
  return 0;
}

int tide_job_start(tide_job *j, const tide_job_opts *o, tide_job_fail *why) {
  static const char *const tee_names[] = {"tee_stdout", "tee_stderr"};
  int fds[6] = {-1, -1, -1, -1, -1, -1}; /* out r/w, err r/w, in r/w */
  int disp[2] = {o->disp[TIDE_OUT], o->disp[TIDE_ERR]};
  int err = 0;
  why->what = why->name = NULL;

  for (int k = TIDE_OUT; k <= TIDE_ERR; k++) {
    if (disp[k] != TIDE_DISP_PIPE) continue;
    if ((err = open_tee(j, k, o->tee[k])) != 0) {
      why->what = tee_names[k];
      why->name = o->tee[k];
      goto fail;
    }
    if (j->tee[k] >= 0 && !j->keep && !j->watch) disp[k] = TIDE_DISP_FILE;
  }
  j->routed =
      !j->keep || j->watch || j->tee[TIDE_OUT] >= 0 || j->tee[TIDE_ERR] >= 0;
  if (o->cwd && (err = check_cwd(o->cwd)) != 0) {
    why->what = "cwd";
    why->name = o->cwd;
    goto fail;
  }
  if (devnull < 0 && (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
    err = errno;
    goto fail;
  }
  for (int k = TIDE_OUT; k <= TIDE_ERR; k++)
    if (disp[k] == TIDE_DISP_PIPE && pipe2(fds + 2 * k, O_CLOEXEC) != 0) {
      err = errno;
      goto fail;
    }
  if (o->in && pipe2(fds + 4, O_CLOEXEC) != 0) {
    err = errno;
    goto fail;
  }

  tide_spawn_opts so = {
      o->argv, o->envp, o->cwd, {o->in ? fds[4] : devnull, 1, 2}};
  for (int k = TIDE_OUT; k <= TIDE_ERR; k++)
    if (disp[k] != TIDE_DISP_INHERIT)
      so.fd[k + 1] = disp[k] == TIDE_DISP_PIPE   ? fds[2 * k + 1]
                     : disp[k] == TIDE_DISP_FILE ? j->tee[k]
                                                 : devnull;
  if ((err = tide_spawn(&so, &j->pid)) != 0) {
    if (!tide_resource_error(err)) {
      why->what = "cmd";
      why->name = o->argv[0];
    }
    goto fail;
  }

  j->t0 = uv_hrtime();
  watch(j);
  for (int k = TIDE_OUT; k <= TIDE_ERR; k++) {
    if (disp[k] == TIDE_DISP_FILE) tee_close(j, k); /* the job has it */
    if (disp[k] != TIDE_DISP_PIPE) continue;
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
  if (o->in) {
    close(fds[4]);
    fds[4] = -1;
    uv_pipe_init(tide_loop(), &j->in, 0);
    j->in.data = &j->obj;
    j->obj.open_handles++;
    uv_pipe_open(&j->in, fds[5]);
    fds[5] = -1;
    if (o->inlen > 0 && (j->in_data = malloc(o->inlen)) != NULL) {
      memcpy(j->in_data, o->in, o->inlen);
      uv_buf_t b = uv_buf_init(j->in_data, (unsigned)o->inlen);
      j->wreq.data = j;
      uv_write(&j->wreq, (uv_stream_t *)&j->in, &b, 1, on_stdin_written);
    } else if (!j->hold_in) {
      close_handle((uv_handle_t *)&j->in);
    }
  }
  j->next = running;
  if (running) running->prev = j;
  running = j;
  nrunning++;
  return 0;

fail:
  close_fds(fds, 6);
  return err;
}

void tide_job_unstarted(tide_job *j) {
  tee_close(j, TIDE_OUT);
  tee_close(j, TIDE_ERR);
}

int tide_resource_error(int err) {
  return err == EMFILE || err == ENFILE || err == EAGAIN || err == ENOMEM;
}
