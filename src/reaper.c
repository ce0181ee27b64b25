/*
 * reaper.c (layer 7): nothing a job starts outlives tide, not even a process
 * that left the job's session with setsid (a daemon, `setsid cmd &`).
 *
 * Killing a job's process group reaches everything that stayed in it.  For
 * the rest tide is a child subreaper: orphans are re-parented to tide
 * rather than to init, so tide can find them among its own children (in
 * /proc/self/task/<tid>/children), reap them when they exit, and kill them
 * when tide ends.  Children that are running jobs are left to proc.c.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "tide.h"

#define REAP_INTERVAL_MS 1000
#define MAX_ROUNDS 100

static uv_timer_t timer;
static int enabled;

/* Calls fn on each child of tide that is not a running job. */
static int each_orphan(void (*fn)(pid_t)) {
  int n = 0;
  DIR *d = opendir("/proc/self/task");
  if (d == NULL) return 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[300];
    snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
    FILE *f = fopen(path, "re");
    if (f == NULL) continue;
    long pid;
    while (fscanf(f, "%ld", &pid) == 1) {
      if (tide_job_owns((pid_t)pid)) continue;
      n++;
      if (fn) fn((pid_t)pid);
    }
    fclose(f);
  }
  closedir(d);
  return n;
}

static void reap(pid_t pid) {
  while (waitpid(pid, NULL, WNOHANG) < 0 && errno == EINTR) {}
}

static void kill_and_reap(pid_t pid) {
  kill(-pid, SIGKILL); /* it may lead a group or session of its own */
  kill(pid, SIGKILL);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
}

static void on_timer(uv_timer_t *t) {
  (void)t;
  each_orphan(reap);
}

void tide_reaper_init(void) {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return;
  enabled = 1;
  uv_timer_init(tide_loop(), &timer);
  uv_timer_start(&timer, on_timer, REAP_INTERVAL_MS, REAP_INTERVAL_MS);
  uv_unref((uv_handle_t *)&timer); /* never keeps tide alive */
}

/* Kills every orphan; each death may orphan its own children, so repeat
 * until none is left. */
void tide_reaper_kill_all(void) {
  if (!enabled) return;
  for (int round = 0; round < MAX_ROUNDS; round++)
    if (each_orphan(kill_and_reap) == 0) break;
}
