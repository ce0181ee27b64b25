/*
 * reaper.c (layer 7): nothing a job starts outlives tide, not even a process
 * that left the job's session with setsid (a daemon, `setsid cmd &`).
 *
 * Killing a job's process group reaches everything that stayed in it.  For
 * the rest tide is a child subreaper: orphans are re-parented to tide
 * rather than to init, so tide can find them among its own children (in
 * /proc/self/task/<tid>/children), reap them when they exit, and kill them
 * when tide ends.  Children that are running jobs are left to proc.c.
 *
 * An orphan is also killed while tide runs on, once the job it came from
 * has ended.  Which job that was is not recorded anywhere, but it is known
 * to be one of the jobs running when the orphan started: its creator was
 * a process of one of them (or an orphan itself, already killed with its
 * job).  So an orphan outside tide's own session (the children of
 * os.execute and io.popen stay in it) is killed as soon as every running
 * job started after it did.  Start times are the kernel's (/proc/PID/stat,
 * in clock ticks): a tie keeps the orphan until that job has ended too.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "tide.h"

#define REAP_INTERVAL_MS 250
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

static void kill_and_reap(pid_t pid) {
  kill(-pid, SIGKILL); /* it may lead a group or session of its own */
  kill(pid, SIGKILL);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
}

/* The start time of pid in clock ticks since boot, or 0 if unknown. */
static unsigned long long start_time(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
  FILE *f = fopen(path, "re");
  if (f == NULL) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')'); /* the command name may hold anything */
  unsigned long long t = 0;
  /* after ")": state and 18 more fields, then starttime (field 22) */
  if (p == NULL || sscanf(p + 1,
                          " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u "
                          "%*u %*d %*d %*d %*d %*d %*d %llu",
                          &t) != 1)
    return 0;
  return t;
}

static unsigned long long oldest_job;

static void note_job(pid_t pid, void *ud) {
  (void)ud;
  unsigned long long t = start_time(pid);
  if (t && (oldest_job == 0 || t < oldest_job)) oldest_job = t;
}

/* Reaps an orphan that exited; kills one whose jobs have all ended. */
static void reap_or_kill(pid_t pid) {
  if (waitpid(pid, NULL, WNOHANG) != 0) return; /* reaped, or not ours */
  if (getsid(pid) == getsid(0)) return;         /* os.execute, io.popen */
  unsigned long long t = start_time(pid);
  if (t == 0 || (oldest_job != 0 && oldest_job <= t)) return;
  kill_and_reap(pid);
}

static void on_timer(uv_timer_t *t) {
  (void)t;
  oldest_job = 0;
  tide_jobs_each(note_job, NULL);
  each_orphan(reap_or_kill);
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
