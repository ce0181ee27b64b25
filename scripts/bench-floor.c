/*
 * bench-floor.c: the floor for scripts/bench.  Runs a command N times,
 * keeping P copies running, and does nothing else: no capture, no
 * scheduler, no Lua.  The children inherit stdin, stdout and stderr.
 *
 *   bench-floor spawn N P cmd [args...]   posix_spawnp + waitpid
 *   bench-floor pipes N P cmd [args...]   the same, each job's stdout a
 *                                         pipe read (poll) into a buffer
 *                                         and written out whole when the
 *                                         job ends: grouped output, the
 *                                         floor of W3
 *   bench-floor uv N P cmd [args...]      uv_spawn + a libuv loop
 *                                         (only when built with -DHAVE_UV)
 *
 * With FLOOR_HOLD_MIB=M in the environment it first allocates and touches
 * M MiB, then writes "ready" to stderr, and "done" when the runs are over
 * (scripts/bench times between the two, as it does for tide in W1h).
 *
 * Exit status: 0 all runs succeeded, 1 some failed, 2 usage or spawn error.
 * Built by scripts/bench into a temporary directory; not part of tide.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef HAVE_UV
#include <uv.h>
#endif

extern char **environ;

static int run_spawn(long n, long p, char **argv) {
  long started = 0, done = 0, running = 0, fails = 0;
  while (done < n) {
    while (running < p && started < n) {
      pid_t pid;
      int err = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
      if (err) {
        fprintf(stderr, "bench-floor: posix_spawnp %s: %s\n", argv[0], strerror(err));
        return 2;
      }
      started++;
      running++;
    }
    int st;
    pid_t w = waitpid(-1, &st, 0);
    if (w < 0) {
      if (errno == EINTR) continue;
      perror("bench-floor: waitpid");
      return 2;
    }
    running--;
    done++;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fails++;
  }
  return fails ? 1 : 0;
}

/* One running job of run_pipes: its pipe's read end and what it wrote. */
struct slot {
  pid_t pid;
  int fd;
  char *buf;
  size_t len, cap;
};

static int start_piped(struct slot *s, char **argv) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    perror("bench-floor: pipe2");
    return 2;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  int err = posix_spawnp(&s->pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (err) {
    fprintf(stderr, "bench-floor: posix_spawnp %s: %s\n", argv[0], strerror(err));
    return 2;
  }
  s->fd = fds[0];
  s->len = 0;
  return 0;
}

static int write_all(const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(1, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int run_pipes(long n, long p, char **argv) {
  struct slot *slots = calloc((size_t)p, sizeof *slots);
  struct pollfd *pfd = calloc((size_t)p, sizeof *pfd);
  long started = 0, done = 0, fails = 0;
  if (!slots || !pfd) return 2;
  for (long i = 0; i < p; i++) slots[i].fd = -1;
  while (done < n) {
    for (long i = 0; i < p && started < n; i++)
      if (slots[i].fd < 0) {
        if (start_piped(&slots[i], argv)) return 2;
        started++;
      }
    for (long i = 0; i < p; i++) {
      pfd[i].fd = slots[i].fd;
      pfd[i].events = POLLIN;
    }
    if (poll(pfd, (nfds_t)p, -1) < 0) {
      if (errno == EINTR) continue;
      perror("bench-floor: poll");
      return 2;
    }
    for (long i = 0; i < p; i++) {
      struct slot *s = &slots[i];
      if (s->fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      if (s->cap - s->len < 65536) {
        s->cap = s->cap ? s->cap * 2 : 65536 * 2;
        if (!(s->buf = realloc(s->buf, s->cap))) return 2;
      }
      ssize_t r = read(s->fd, s->buf + s->len, s->cap - s->len);
      if (r < 0 && errno == EINTR) continue;
      if (r > 0) {
        s->len += (size_t)r;
        continue;
      }
      close(s->fd); /* EOF: the job is over; its output goes out whole */
      s->fd = -1;
      int st;
      while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR) {}
      if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fails++;
      if (write_all(s->buf, s->len) != 0) return 2;
      done++;
    }
  }
  for (long i = 0; i < p; i++) free(slots[i].buf);
  free(slots);
  free(pfd);
  return fails ? 1 : 0;
}

#ifdef HAVE_UV
static uv_loop_t *loop;
static long uv_total, uv_started, uv_fails;
static uv_process_options_t uv_opts;
static uv_stdio_container_t uv_stdio[3];

static void on_close(uv_handle_t *h) { free(h); }

static void start_one(void);

static void on_exit_cb(uv_process_t *proc, int64_t status, int sig) {
  if (status != 0 || sig != 0) uv_fails++;
  uv_close((uv_handle_t *)proc, on_close);
  if (uv_started < uv_total) start_one();
}

static void start_one(void) {
  uv_process_t *proc = malloc(sizeof *proc);
  if (!proc) {
    perror("bench-floor: malloc");
    exit(2);
  }
  int r = uv_spawn(loop, proc, &uv_opts);
  if (r) {
    fprintf(stderr, "bench-floor: uv_spawn %s: %s\n", uv_opts.file, uv_strerror(r));
    exit(2);
  }
  uv_started++;
}

static int run_uv(long n, long p, char **argv) {
  loop = uv_default_loop();
  uv_total = n;
  for (int i = 0; i < 3; i++) {
    uv_stdio[i].flags = UV_INHERIT_FD;
    uv_stdio[i].data.fd = i;
  }
  uv_opts.file = argv[0];
  uv_opts.args = argv;
  uv_opts.exit_cb = on_exit_cb;
  uv_opts.stdio = uv_stdio;
  uv_opts.stdio_count = 3;
  for (long i = 0; i < p && uv_started < n; i++) start_one();
  uv_run(loop, UV_RUN_DEFAULT);
  return uv_fails ? 1 : 0;
}
#endif

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: bench-floor spawn|pipes|uv N P cmd [args...]\n");
    return 2;
  }
  long n = atol(argv[2]), p = atol(argv[3]);
  if (n < 0 || p < 1) {
    fprintf(stderr, "bench-floor: bad N or P\n");
    return 2;
  }
  const char *hold = getenv("FLOOR_HOLD_MIB");
  char *mem = NULL;
  if (hold && atol(hold) > 0) {
    size_t size = (size_t)atol(hold) << 20;
    mem = malloc(size);
    if (!mem) {
      perror("bench-floor: malloc");
      return 2;
    }
    for (size_t i = 0; i < size; i += 4096) mem[i] = (char)(i >> 12);
    fputs("ready\n", stderr);
  }
  int rc;
  if (strcmp(argv[1], "spawn") == 0) {
    rc = run_spawn(n, p, argv + 4);
  } else if (strcmp(argv[1], "pipes") == 0) {
    rc = run_pipes(n, p, argv + 4);
#ifdef HAVE_UV
  } else if (strcmp(argv[1], "uv") == 0) {
    rc = run_uv(n, p, argv + 4);
#endif
  } else {
    fprintf(stderr, "bench-floor: unknown or unavailable mode '%s'\n", argv[1]);
    return 2;
  }
  if (mem) {
    fputs("done\n", stderr);
    free(mem);
  }
  return rc;
}
