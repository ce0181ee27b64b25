/*
 * proc.c (layer 6): one process per job, in its own session and process
 * group: starting it with its pipes, watching its exit, routing what it
 * writes, and stopping it.  The Lua object and core.spawn's options are
 * lcore_job.c's.
 *
 * No SIGCHLD handler and no waitpid(-1): a job's exit is seen on its own
 * descriptors.  A job completes when its leader has exited and both output
 * pipes reached EOF.  A grandchild holding a pipe open gets
 * tide_conf.drain_ms, then the whole group is killed: nothing a job
 * started outlives the job.  The leader stays a zombie until then, so its
 * pid (the group id) cannot be reused under us.
 *
 * The per-job cost is counted in system calls (docs/performance.md, "System
 * calls per job"): a grouped job with no output costs tide about 11, where
 * libuv handles cost 30.  So:
 * - The pipes and pidfds are not libuv handles but members of an epoll set
 *   of tide's own, which the loop watches as one uv_poll_t.  (uv_poll_init
 *   probes a descriptor with an epoll add and delete, sets it non-blocking
 *   again and tries a delete that fails; uv_pipe_open does an fcntl and an
 *   ioctl; libuv adds and deletes each one in its epoll and reads once
 *   more to see EOF.)  Pipes are edge-triggered: an empty pipe whose
 *   writers are gone reports EPOLLHUP alone, its EOF, so a job with no
 *   output reads nothing.
 * - A pipe that reached EOF is reused by the next job (pipe_get()).
 * - Most jobs end their output by exiting, so the end of both pipes is the
 *   cue to look for the exit (a waitid that leaves the zombie); a pidfd is
 *   opened only for a job without pipes, one that runs on after closing
 *   them, or one still running after TIDE_LAZY_WATCH_MS.
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
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tide.h"

/* The mechanism constants, set from Lua by core.configure. */
tide_config tide_conf = {
    .kill_grace_ms = 2000, /* SIGTERM to SIGKILL */
    .drain_ms = 100,       /* a grandchild holding a pipe after the exit */
    .file_output = TIDE_FILES_AUTO,
};

/* A job with output pipes has its exit watched (a pidfd: three system
 * calls) only once it has run this long; before that, the end of both
 * pipes is the sign to look, which is enough for most jobs.  A leader that
 * exits while something it started holds its output is seen this much
 * later, then gets tide_conf.drain_ms as before. */
#define TIDE_LAZY_WATCH_MS 100

/* A watched stream stops being read while this much more than max_line
 * waits for Lua to take it: the job then blocks on a full pipe, as it
 * would writing to a slow reader, and tide's memory stays bounded even if
 * a per-line callback takes its time. */
#define TIDE_PEND_SLACK 65536

/* File-backed grouped output.  A grouped stream (kept whole, nothing
 * else) can go to an unlinked temporary file instead of a pipe: the job
 * writes into the page cache, tide reads nothing while it runs and copies
 * the file to its output in the kernel when the job ends (buf.c).  For a
 * job with little or no output that costs more than a reused pipe (an
 * openat, an fstat and an fstatfs, a close, and the exit then needs a
 * pidfd when both streams are files, against one openat and one close),
 * so with file_output = "auto" a stream goes to a file only while the
 * last grouped job's same stream printed TIDE_FILE_MIN or more
 * (docs/performance.md has the counts).  The file is the job's own, never
 * reused: a writer that escaped the group cannot reach another job, and
 * what it writes after the end is past the size taken then.  "auto" keeps
 * one stream on its pipe; with both in files ("always", for tests) the
 * exit is the leader's alone: a background child writing after it gets no
 * drain bound. */
#define TIDE_FILE_MIN (256u << 10)

/* With fewer free blocks than this in the spill directory when a
 * file-backed job ends, a write of the job's may have failed for want of
 * room (a write fails with ENOSPC only when not one more block can be had):
 * the job fails, as a spill that failed does.  The job's own writes fail,
 * not tide's, so this is the one sign tide gets. */
#define TIDE_FILE_ROOM 4

static int big[2]; /* the last grouped job's stream k was big */

static tide_job *running;
static int nrunning;
static int devnull = -1;
static uv_signal_t sigchld; /* only for jobs without a pidfd */
static int ep = -1;         /* tide's epoll set: pipes and pidfds */
static uv_poll_t ep_poll;   /* ep in the loop, referenced while ep holds
                               something, so idle jobs keep tide alive */
static int nwatched;        /* descriptors in ep */
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

/* ---- tide's epoll set ---- */

/* An output pipe: its read end, non-blocking, in ep edge-triggered.  A
 * pipe that reached EOF had no writer left anywhere and nothing in it, so
 * it is kept for the next job, which gets a new write end opened through
 * /proc: a job costs no pipe2, epoll_ctl or close of a read end.  A pipe
 * closed before EOF (the drain bound) may still have writers and is never
 * reused, so no stray writer can reach another job's output. */
typedef struct tide_pipe {
  int fd;
  tide_job *job; /* NULL while free */
  int k;
  struct tide_pipe *next; /* free list */
} tide_pipe;

#define TIDE_FREE_PIPES 64
static tide_pipe *free_pipes;
static int nfree_pipes;

/* The low bit of an event's pointer: the pidfd of a job, else a pipe. */
#define EV_EXIT 1u

static void ep_ref(tide_job *j) {
  if (nwatched++ == 0) uv_ref((uv_handle_t *)&ep_poll);
  j->obj.open_handles++;
}

static void ep_unref(tide_job *j) {
  if (--nwatched == 0) uv_unref((uv_handle_t *)&ep_poll);
  j->obj.open_handles--;
}

static int ep_add_pidfd(tide_job *j) {
  struct epoll_event ev;
  ev.events = EPOLLIN;
  ev.data.u64 = (uint64_t)(uintptr_t)j | EV_EXIT;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, j->pidfd, &ev) != 0) return errno;
  ep_ref(j);
  return 0;
}

/* Taken out of ep before the close: whatever else might share its file,
 * ep never reports a pidfd whose job is gone.  (This path is only taken
 * by jobs whose exit is watched, so it costs the common job nothing.) */
static void close_pidfd(tide_job *j) {
  epoll_ctl(ep, EPOLL_CTL_DEL, j->pidfd, NULL);
  close(j->pidfd);
  j->pidfd = -1;
  ep_unref(j);
}

static int pipe_arm(tide_pipe *p, int op) {
  struct epoll_event ev;
  ev.events = EPOLLIN | EPOLLET;
  ev.data.ptr = p;
  return epoll_ctl(ep, op, p->fd, &ev) == 0 ? 0 : errno;
}

/* A pipe for stream k of j: its read end goes to j, its write end (a
 * blocking one, for the job) to *wfd.  0 or an errno. */
static int pipe_get(tide_job *j, int k, int *wfd) {
  tide_pipe *p;
  while ((p = free_pipes) != NULL) {
    char path[40];
    snprintf(path, sizeof path, "/proc/self/fd/%d", p->fd);
    free_pipes = p->next;
    nfree_pipes--;
    if ((*wfd = open(path, O_WRONLY | O_CLOEXEC)) >= 0) goto got;
    epoll_ctl(ep, EPOLL_CTL_DEL, p->fd, NULL); /* no /proc: make pipes */
    close(p->fd);
    free(p);
  }
  int fds[2], err;
  if ((p = malloc(sizeof *p)) == NULL) return ENOMEM;
  if (pipe2(fds, O_CLOEXEC) != 0) {
    err = errno;
    free(p);
    return err;
  }
  p->fd = fds[0];
  if (fcntl(p->fd, F_SETFL, O_NONBLOCK) != 0 ||
      (err = pipe_arm(p, EPOLL_CTL_ADD)) != 0) {
    err = errno;
    close(fds[0]);
    close(fds[1]);
    free(p);
    return err;
  }
  *wfd = fds[1];
got:
  p->job = j;
  p->k = k;
  j->pipe[k] = p;
  j->reading[k] = 1;
  ep_ref(j);
  return 0;
}

/* Stream k of j is done with its pipe: kept for another job if clean
 * (EOF was read: no writer, nothing left), else closed. */
static void pipe_put(tide_job *j, int k, int clean) {
  tide_pipe *p = j->pipe[k];
  j->pipe[k] = NULL;
  j->reading[k] = 0;
  ep_unref(j);
  p->job = NULL;
  if (clean && nfree_pipes < TIDE_FREE_PIPES && !j->pend[k].paused) {
    p->next = free_pipes;
    free_pipes = p;
    nfree_pipes++;
    return;
  }
  if (!j->pend[k].paused)                      /* else no longer in ep */
    epoll_ctl(ep, EPOLL_CTL_DEL, p->fd, NULL); /* see close_pidfd() */
  close(p->fd);
  free(p);
}

/* ---- completion ---- */

static void close_handle(uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, tide_obj_close_cb);
}

static void tee_close(tide_job *j, int k) {
  if (j->tee[k] >= 0) close(j->tee[k]);
  j->tee[k] = -1;
}

static void files_close(tide_job *j) {
  for (int k = TIDE_OUT; k <= TIDE_ERR; k++) {
    if (j->file[k] >= 0) close(j->file[k]);
    j->file[k] = -1;
  }
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
  for (;;) {
    ssize_t n = read(j->pipe[k]->fd, scratch, sizeof scratch);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (j->routed)
      deliver(j, k, scratch, (size_t)n);
    else
      tide_buf_add(&j->buf[k], scratch, (size_t)n);
  }
}

/* The file stream k went to becomes the buffer's spill file, up to its
 * size now: bytes a stray writer adds later are never read. */
static void adopt_file(tide_job *j, int k) {
  tide_buf *b = &j->buf[k];
  int fd = j->file[k];
  struct stat st;
  struct statfs sf;
  j->file[k] = -1;
  if (fstat(fd, &st) != 0) {
    b->err = errno;
    close(fd);
    return;
  }
  b->spill_fd = fd;
  b->spilled = (uint64_t)st.st_size;
  if (fstatfs(fd, &sf) == 0 && sf.f_bavail < TIDE_FILE_ROOM) b->err = ENOSPC;
}

static void finish(tide_job *j) {
  if (j->finished) return;
  j->finished = 1;
  kill(-j->pid, SIGKILL); /* whatever the job left behind in its group */
  while (wait4(j->pid, &j->status, 0, &j->ru) < 0 && errno == EINTR) {}
  for (int k = TIDE_OUT; k <= TIDE_ERR; k++) {
    if (j->reading[k]) {
      drain(j, k);
      pipe_put(j, k, 0);
    }
    if (j->file[k] >= 0) adopt_file(j, k);
    if (j->grouped[k])
      big[k] = j->buf[k].err == 0 && tide_buf_size(&j->buf[k]) >= TIDE_FILE_MIN;
  }
  tee_close(j, TIDE_OUT);
  tee_close(j, TIDE_ERR);
  if (j->timer_init) close_handle((uv_handle_t *)&j->timer);
  /* Input the job never read: cancel the write (its callback frees it). */
  if (j->in_data || j->hold_in) close_handle((uv_handle_t *)&j->in);
  unlink_running(j);
  tide_complete(&j->obj);
}

static void watch(tide_job *j);

static void on_timer(uv_timer_t *t) {
  tide_job *j = (tide_job *)t->data;
  if (j->exited)
    finish(j); /* drain bound reached */
  else if (!j->watching)
    watch(j); /* a job that runs on: watch its exit after all */
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
  j->watching = 1;
  if (j->timer_init) uv_timer_stop(&j->timer); /* the lazy watch */
  if (!no_pidfd) {
    j->pidfd = (int)syscall(SYS_pidfd_open, j->pid, 0);
    if (j->pidfd >= 0) {
      if (ep_add_pidfd(j) == 0) return;
      close(j->pidfd);
      j->pidfd = -1;
    } else if (errno == ENOSYS) {
      no_pidfd = 1;
    }
  }
  watch_by_sigchld(j);
}

/* Bytes read from stream k. */
static void got(tide_job *j, int k, const char *p, size_t n) {
  if (!j->routed) {
    tide_buf_add(&j->buf[k], p, n);
    return;
  }
  deliver(j, k, p, n);
  if (j->watch) {
    tide_lines *pd = &j->pend[k];
    if (pd->len - pd->start >= j->max_line + TIDE_PEND_SLACK) {
      /* Out of the set, not just masked: EPOLLHUP cannot be masked. */
      epoll_ctl(ep, EPOLL_CTL_DEL, j->pipe[k]->fd, NULL);
      pd->paused = 1;
    }
    tide_news(&j->obj);
  }
}

/* Whether the leader has exited; WNOWAIT keeps it a zombie for finish().
 * A process closes its files before it becomes a zombie, so the end of
 * its output can come first when it is slow on its way out (a loaded
 * machine): then the exit is watched with a pidfd after all. */
static int is_zombie(tide_job *j) {
  siginfo_t si;
  si.si_pid = 0;
  return waitid(P_PID, (id_t)j->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         si.si_pid == j->pid;
}

/* Pipe k is readable, or its writers are gone.  Edge-triggered: read
 * until it is empty (a short read) or, once its writers are gone, until
 * EOF; past a bound the rest is left for the next turn. */
static void on_pipe(tide_job *j, int k, uint32_t events) {
  int clean = 1;
  if (events & (EPOLLIN | EPOLLERR)) {
    for (int i = 0;; i++) {
      if (j->pend[k].paused) return;
      if (i == 16) { /* others wait: be reported again */
        pipe_arm(j->pipe[k], EPOLL_CTL_MOD);
        return;
      }
      ssize_t n = read(j->pipe[k]->fd, scratch, sizeof scratch);
      if (n > 0) {
        got(j, k, scratch, (size_t)n);
        /* Empty now; its end will be an event of its own. */
        if ((size_t)n < sizeof scratch && !(events & EPOLLHUP)) return;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      clean = n == 0;
      break;
    }
  }
  /* EOF: read 0, or EPOLLHUP alone (no writer left, nothing to read) */
  pipe_put(j, k, clean);
  if (j->reading[TIDE_OUT] || j->reading[TIDE_ERR]) return;
  if (j->exited) {
    finish(j);
  } else if (!j->watching) {
    /* Most jobs end their output by exiting: if the leader is a zombie,
     * it has exited; if not, it closed its output and runs on. */
    if (is_zombie(j)) {
      j->watching = 1;
      exited(j);
    } else {
      watch(j);
    }
  }
}

static void on_ep(uv_poll_t *h, int status, int events) {
  (void)h;
  (void)status;
  (void)events;
  struct epoll_event ev[64];
  int n = epoll_wait(ep, ev, 64, 0);
  /* A job an earlier event finished has closed its descriptors, which
   * the checks below see; it is not freed before the driver runs.  Nor
   * is a pipe: only its own event or a finish() with the job's exit
   * already seen (a timer's) closes one that was not clean. */
  for (int i = 0; i < n; i++) {
    if (ev[i].data.u64 & EV_EXIT) {
      tide_job *j = (tide_job *)(uintptr_t)(ev[i].data.u64 & ~(uint64_t)1);
      if (j->pidfd < 0) continue;
      close_pidfd(j);
      exited(j);
    } else {
      tide_pipe *p = ev[i].data.ptr;
      if (p->job && !p->job->pend[p->k].paused)
        on_pipe(p->job, p->k, ev[i].events);
    }
  }
}

/* Makes ep on first use; 0 or an errno. */
static int ep_ready(void) {
  if (ep >= 0) return 0;
  if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0) return errno;
  int rc = uv_poll_init(tide_loop(), &ep_poll, ep);
  if (rc != 0) {
    close(ep);
    ep = -1;
    return -rc;
  }
  ep_poll.data = NULL;
  uv_poll_start(&ep_poll, UV_READABLE, on_ep);
  uv_unref((uv_handle_t *)&ep_poll);
  return 0;
}

void tide_jobs_close(void) {
  for (tide_job *j = running, *next; j; j = next) {
    next = j->next;
    for (int k = TIDE_OUT; k <= TIDE_ERR; k++)
      if (j->reading[k]) pipe_put(j, k, 0);
    files_close(j);
    if (j->pidfd >= 0) close_pidfd(j);
    unlink_running(j);
    tide_obj_release(&j->obj);
  }
  while (free_pipes) {
    tide_pipe *p = free_pipes;
    free_pipes = p->next;
    epoll_ctl(ep, EPOLL_CTL_DEL, p->fd, NULL);
    close(p->fd);
    free(p);
  }
  nfree_pipes = 0;
  if (ep >= 0) close(ep); /* ep_poll was closed with the loop */
  ep = -1;
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
    pipe_arm(j->pipe[k], EPOLL_CTL_ADD); /* reports what came meanwhile */
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
  files_close(j);
  free(j->in_data);
  free(j);
}

tide_job *tide_job_new(void) {
  tide_job *j = calloc(1, sizeof *j);
  if (j == NULL) return NULL;
  j->obj.ref = LUA_NOREF;
  j->obj.free = job_free;
  j->pidfd = -1;
  j->file[TIDE_OUT] = j->file[TIDE_ERR] = -1;
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
  if (!j->watching) watch(j);
  kill(-j->pid, SIGTERM);
  kill(-j->pid, SIGCONT); /* a stopped job must wake up to die */
  arm_timer(j, grace_ms);
}

void tide_job_hangup(tide_job *j, uint64_t grace_ms) {
  if (j->exited || j->pid == 0) return;
  if (!j->watching) watch(j);
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
  for (int k = TIDE_OUT; k <= TIDE_ERR; k++) {
    j->grouped[k] = disp[k] == TIDE_DISP_PIPE && !j->routed &&
                    j->buf[k].limit == 0 && tide_conf.file_output;
    /* "auto" keeps one pipe: its end is the cue to look for the exit,
     * and a background child holding it gets the drain bound. */
    int want =
        tide_conf.file_output == TIDE_FILES_ALWAYS ||
        (big[k] && !(k == TIDE_ERR && disp[TIDE_OUT] == TIDE_DISP_SPILL));
    if (j->grouped[k] && want) {
      /* Appending: the job's seeks cannot overwrite what it wrote. */
      int fd = tide_spill_open(O_APPEND);
      if (fd >= 0) {
        j->file[k] = fd;
        disp[k] = TIDE_DISP_SPILL;
      } /* else a pipe, whose spill reports the failure if it comes */
    }
  }
  if (o->cwd && (err = check_cwd(o->cwd)) != 0) {
    why->what = "cwd";
    why->name = o->cwd;
    goto fail;
  }
  if (devnull < 0 && (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
    err = errno;
    goto fail;
  }
  if ((err = ep_ready()) != 0) goto fail;
  for (int k = TIDE_OUT; k <= TIDE_ERR; k++)
    if (disp[k] == TIDE_DISP_PIPE &&
        (err = pipe_get(j, k, &fds[2 * k + 1])) != 0)
      goto fail_ep;
  if (o->in && pipe2(fds + 4, O_CLOEXEC) != 0) {
    err = errno;
    goto fail;
  }

  tide_spawn_opts so = {
      o->argv, o->envp, o->cwd, {o->in ? fds[4] : devnull, 1, 2}};
  for (int k = TIDE_OUT; k <= TIDE_ERR; k++)
    if (disp[k] != TIDE_DISP_INHERIT)
      so.fd[k + 1] = disp[k] == TIDE_DISP_PIPE    ? fds[2 * k + 1]
                     : disp[k] == TIDE_DISP_FILE  ? j->tee[k]
                     : disp[k] == TIDE_DISP_SPILL ? j->file[k]
                                                  : devnull;
  /* Before the spawn: once vfork returns, a loaded machine may run the
   * job a while before tide runs again, and elapsed would miss that. */
  j->t0 = uv_hrtime();
  if ((err = tide_spawn(&so, &j->pid)) != 0) {
    if (!tide_resource_error(err)) {
      why->what = "cmd";
      why->name = o->argv[0];
    }
    goto fail_ep;
  }

  if (j->reading[TIDE_OUT] || j->reading[TIDE_ERR]) {
    uv_update_time(tide_loop()); /* the loop's clock may be far behind */
    arm_timer(j, TIDE_LAZY_WATCH_MS);
  } else
    watch(j);
  for (int k = TIDE_OUT; k <= TIDE_ERR; k++) {
    if (disp[k] == TIDE_DISP_FILE) tee_close(j, k); /* the job has it */
    if (disp[k] != TIDE_DISP_PIPE) continue;
    close(fds[2 * k + 1]);
    fds[2 * k + 1] = -1;
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

fail_ep:
  close_fds(fds, 6); /* the write ends first: the pipes are clean again */
  for (int i = 0; i < 6; i++)
    fds[i] = -1;
  for (int k = TIDE_OUT; k <= TIDE_ERR; k++)
    if (j->reading[k]) pipe_put(j, k, 1);
fail:
  close_fds(fds, 6);
  return err;
}

void tide_job_unstarted(tide_job *j) {
  tee_close(j, TIDE_OUT);
  tee_close(j, TIDE_ERR);
  files_close(j);
}

int tide_resource_error(int err) {
  return err == EMFILE || err == ENFILE || err == EAGAIN || err == ENOMEM;
}

/* ---- virtual jobs and held input ---- */

int tide_job_virtual(tide_job *j, const tide_job_opts *o, tide_job_fail *why) {
  static const char *const tee_names[] = {"tee_stdout", "tee_stderr"};
  why->what = why->name = NULL;
  j->virt = 1;
  for (int k = TIDE_OUT; k <= TIDE_ERR; k++) {
    j->disp[k] = o->disp[k];
    if (o->disp[k] != TIDE_DISP_PIPE) continue;
    int err = open_tee(j, k, o->tee[k]);
    if (err != 0) {
      why->what = tee_names[k];
      why->name = o->tee[k];
      return err;
    }
  }
  j->routed =
      !j->keep || j->watch || j->tee[TIDE_OUT] >= 0 || j->tee[TIDE_ERR] >= 0;
  j->t0 = uv_hrtime();
  return 0;
}

void tide_job_feed(tide_job *j, int k, const char *p, size_t n) {
  if (j->disp[k] == TIDE_DISP_INHERIT) {
    /* ungrouped: straight out, as the job's own writes would be */
    if (tide_write_all(k + 1, p, n) < 0) {}
  } else if (j->disp[k] == TIDE_DISP_PIPE) {
    if (j->routed)
      deliver(j, k, p, n);
    else
      tide_buf_add(&j->buf[k], p, n);
  }
}

void tide_job_settle(tide_job *j, int status, uint64_t t0, uint64_t t1,
                     const struct rusage *ru) {
  j->status = status;
  j->t0 = t0;
  j->t1 = t1;
  j->ru = *ru;
  j->exited = j->finished = 1;
  tee_close(j, TIDE_OUT);
  tee_close(j, TIDE_ERR);
}

typedef struct held_write {
  uv_write_t req;
  char data[];
} held_write;

static void on_sent(uv_write_t *req, int status) {
  (void)status; /* a closed reader: its end shows as the job's */
  free(req);
}

int tide_job_send(tide_job *j, const char *p, size_t n) {
  if (!j->hold_in || j->finished || uv_is_closing((uv_handle_t *)&j->in))
    return EPIPE;
  held_write *w = malloc(sizeof *w + n);
  if (w == NULL) return ENOMEM;
  memcpy(w->data, p, n);
  uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
  int rc = uv_write(&w->req, (uv_stream_t *)&j->in, &b, 1, on_sent);
  if (rc != 0) {
    free(w);
    return -rc;
  }
  return 0;
}
