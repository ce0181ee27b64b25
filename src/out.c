/*
 * out.c (layer 2): tide's own writes, and how C reports a failure to Lua.
 *
 * Every byte tide writes (a job's output, the status line, a results
 * file) goes through tide_write_all, which erases the status line first
 * when the write lands on it and gives up as soon as a signal for tide is
 * pending.  tide_out puts a prefix (a tag) before every line.  tide_pusherr
 * is the one shape of an environment failure returned to Lua, luv's:
 * nil, "ENOENT: no such file or directory (cmd): 'x'", "ENOENT".
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>

#include "tide.h"

/* ---- errors for Lua ---- */

int tide_pusherr(lua_State *L, int err, const char *what, const char *name) {
  if (err > 0) err = -err; /* errno or libuv's negative code alike */
  luaL_pushfail(L);
  if (what && name)
    lua_pushfstring(L, "%s: %s (%s): '%s'", uv_err_name(err), uv_strerror(err),
                    what, name);
  else
    lua_pushfstring(L, "%s: %s", uv_err_name(err), uv_strerror(err));
  lua_pushstring(L, uv_err_name(err));
  return 3;
}

int tide_write_result(lua_State *L, int rc) {
  if (rc == -EINTR) /* stuck on a full pipe, and a signal came */
    return tide_die(L, tide_signal_pending());
  if (rc < 0) return tide_pusherr(L, rc, NULL, NULL);
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- the status line ----
 *
 * One line at the bottom of stderr that tide redraws in place (the
 * policy, what it says and when, is progress.lua's).  C keeps only whether
 * it is on screen, so that every write of tide's to that screen erases it
 * first and it is never written through, and so that tide's last words (an
 * error, a signal) leave no half line behind. */

static int status_shown;
static int status_stdout = -1; /* stdout shows there too; -1: not known */

/* Whether stdout lands where the status line is: a terminal (the same
 * one, as a rule), or the very file stderr is (2>&1). */
static int stdout_there(void) {
  struct stat a, b;
  if (isatty(1)) return 1;
  return fstat(1, &a) == 0 && fstat(2, &b) == 0 && a.st_dev == b.st_dev &&
         a.st_ino == b.st_ino;
}

void tide_status_hide(int fd) {
  if (!status_shown || (fd != 2 && fd != 1)) return;
  if (fd == 1) {
    if (status_stdout < 0) status_stdout = stdout_there();
    if (!status_stdout) return;
  }
  status_shown = 0;
  (void)!write(2, "\r\033[K", 4);
}

int tide_status_shown(void) { return status_shown; }

int tide_status_write(const char *s, size_t n, int final) {
  status_shown = 0;
  int rc = tide_write_all(2, s, n);
  status_shown = rc == 0 && !final;
  return rc;
}

/* ---- writing ---- */

int tide_write_all(int fd, const char *p, size_t n) {
  if (fd <= 2) tide_status_hide(fd); /* output goes above the status line */
  while (n > 0) {
    /* A signal for tide must not wait until a full pipe drains: it cuts a
     * blocked write short (no SA_RESTART), and then we stop. */
    if (tide_signal_pending()) return -EINTR;
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* ---- tide_out: lines with a prefix ---- */

void tide_out_init(tide_out *o, int fd, const char *prefix, size_t plen,
                   int at_start) {
  o->fd = fd;
  o->prefix = plen ? prefix : NULL;
  o->plen = plen;
  o->n = 0;
  o->at_start = at_start;
}

static int out_flush(tide_out *o) {
  int rc = o->n ? tide_write_all(o->fd, o->stage, o->n) : 0;
  o->n = 0;
  return rc;
}

/* Copies into the stage, writing it out when full; a piece larger than
 * the stage goes straight out. */
static int out_stage(tide_out *o, const char *p, size_t n) {
  if (n > sizeof o->stage - o->n) {
    int rc = out_flush(o);
    if (rc < 0) return rc;
    if (n > sizeof o->stage) return tide_write_all(o->fd, p, n);
  }
  memcpy(o->stage + o->n, p, n);
  o->n += n;
  return 0;
}

int tide_out_add(tide_out *o, const char *p, size_t n) {
  if (n == 0) return 0;
  if (o->prefix == NULL) {
    int rc = out_flush(o);
    if (rc == 0) rc = tide_write_all(o->fd, p, n);
    o->at_start = p[n - 1] == '\n';
    return rc;
  }
  while (n > 0) {
    const char *nl = memchr(p, '\n', n);
    size_t seg = nl ? (size_t)(nl - p) + 1 : n;
    size_t pre = o->at_start ? o->plen : 0;
    if (pre + seg <= sizeof o->stage - o->n) { /* the usual short line */
      memcpy(o->stage + o->n, o->prefix, pre);
      memcpy(o->stage + o->n + pre, p, seg);
      o->n += pre + seg;
    } else {
      int rc = pre ? out_stage(o, o->prefix, pre) : 0;
      if (rc == 0) rc = out_stage(o, p, seg);
      if (rc < 0) return rc;
    }
    o->at_start = nl != NULL;
    p += seg;
    n -= seg;
  }
  return 0;
}

int tide_out_end(tide_out *o, int newline) {
  if (newline && !o->at_start) {
    int rc = out_stage(o, "\n", 1);
    if (rc < 0) return rc;
    o->at_start = 1;
  }
  return out_flush(o);
}
