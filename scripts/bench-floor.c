/*
 * bench-floor.c: the floor for scripts/bench.  Runs a command N times,
 * keeping P copies running, and does nothing else: no capture, no
 * scheduler, no Lua.  The children inherit stdin, stdout and stderr.
 *
 *   bench-floor spawn N P cmd [args...]   posix_spawnp + waitpid
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
    fprintf(stderr, "usage: bench-floor spawn|uv N P cmd [args...]\n");
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
