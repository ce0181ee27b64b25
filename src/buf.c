/*
 * buf.c: bounded output buffers.
 *
 * A job may print gigabytes; tide must read all of it (a full pipe blocks the
 * child forever) without holding it in memory.  The first TIDE_BUF_BOUND bytes
 * stay in memory; past that, the memory part is moved to an unlinked
 * temporary file, so the kernel frees it whatever way tide ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "tide.h"

#define TIDE_BUF_BOUND (1u << 20)

void tide_buf_init(tide_buf *b) {
  b->data = NULL;
  b->len = b->cap = 0;
  b->spill_fd = -1;
  b->spilled = 0;
  b->limit = 0;
  b->ring = NULL;
  b->ring_start = b->ring_len = 0;
  b->omitted = 0;
}

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

static int open_spill(void) {
  const char *dir = getenv("TMPDIR");
  if (dir == NULL || *dir == '\0') dir = "/tmp";
  int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  /* O_TMPFILE needs filesystem support; fall back to create-and-unlink. */
  char path[4096];
  snprintf(path, sizeof path, "%s/tide-XXXXXX", dir);
  fd = mkostemp(path, O_CLOEXEC);
  if (fd < 0) return -errno;
  unlink(path);
  return fd;
}

static int spill(tide_buf *b, const char *p, size_t n) {
  if (b->spill_fd < 0) {
    int fd = open_spill();
    if (fd < 0) return fd;
    b->spill_fd = fd;
  }
  int rc = tide_write_all(b->spill_fd, b->data, b->len);
  if (rc == 0) rc = tide_write_all(b->spill_fd, p, n);
  if (rc < 0) return rc;
  b->spilled += b->len + n;
  b->len = 0;
  return 0;
}

static int add_limited(tide_buf *b, const char *p, size_t n);

int tide_buf_add(tide_buf *b, const char *p, size_t n) {
  if (b->limit) return add_limited(b, p, n);
  if (b->len + n > TIDE_BUF_BOUND) return spill(b, p, n);
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n)
      cap *= 2;
    if (cap > TIDE_BUF_BOUND) cap = TIDE_BUF_BOUND;
    char *d = realloc(b->data, cap);
    if (d == NULL) return spill(b, p, n);
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

/* The head keeps the first half of the limit (rounded up), the ring the
 * last half; once the head is full every new byte goes through the ring,
 * pushing out its oldest. */
static int add_limited(tide_buf *b, const char *p, size_t n) {
  uint64_t ring_cap = b->limit / 2, head_cap = b->limit - ring_cap;
  uint64_t have = b->spilled + b->len;
  int rc = 0;
  if (have < head_cap) {
    size_t take = head_cap - have < n ? (size_t)(head_cap - have) : n;
    uint64_t limit = b->limit;
    b->limit = 0;
    rc = tide_buf_add(b, p, take);
    b->limit = limit;
    p += take;
    n -= take;
  }
  if (n == 0) return rc;
  if (ring_cap == 0 ||
      (b->ring == NULL && (b->ring = malloc((size_t)ring_cap)) == NULL)) {
    b->omitted += n;
    return rc;
  }
  size_t cap = (size_t)ring_cap;
  if (n >= cap) { /* only the last cap bytes of p survive */
    b->omitted += b->ring_len + (n - cap);
    memcpy(b->ring, p + (n - cap), cap);
    b->ring_start = 0;
    b->ring_len = cap;
    return rc;
  }
  size_t w = (b->ring_start + b->ring_len) % cap;
  size_t first = cap - w < n ? cap - w : n;
  memcpy(b->ring + w, p, first);
  memcpy(b->ring, p + first, n - first);
  b->ring_len += n;
  if (b->ring_len > cap) {
    size_t drop = b->ring_len - cap;
    b->omitted += drop;
    b->ring_start = (b->ring_start + drop) % cap;
    b->ring_len = cap;
  }
  return rc;
}

uint64_t tide_buf_size(const tide_buf *b) {
  return b->spilled + b->len + b->ring_len;
}

/* Calls fn on the content from off, len bytes, in order: spill file
 * first, then memory, then the ring of a limited buffer. */
static int each_range(const tide_buf *b, uint64_t off, uint64_t len,
                      int (*fn)(void *, const char *, size_t), void *ud) {
  char chunk[65536];
  uint64_t end = off + len;
  while (off < end && off < b->spilled) {
    uint64_t want = end < b->spilled ? end - off : b->spilled - off;
    ssize_t r =
        pread(b->spill_fd, chunk,
              want < sizeof chunk ? (size_t)want : sizeof chunk, (off_t)off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return r < 0 ? -errno : -EIO;
    int rc = fn(ud, chunk, (size_t)r);
    if (rc < 0) return rc;
    off += (uint64_t)r;
  }
  uint64_t mem_end = b->spilled + b->len;
  if (off < end && off < mem_end) {
    size_t from = (size_t)(off - b->spilled);
    size_t n = (size_t)((end < mem_end ? end : mem_end) - off);
    int rc = fn(ud, b->data + from, n);
    if (rc < 0) return rc;
    off += n;
  }
  if (off < end && b->ring_len) {
    size_t cap = (size_t)(b->limit / 2);
    size_t at = (size_t)(off - mem_end);
    size_t n = (size_t)(end - off);
    size_t s = (b->ring_start + at) % cap;
    size_t first = cap - s < n ? cap - s : n;
    int rc = fn(ud, b->ring + s, first);
    if (rc == 0 && n > first) rc = fn(ud, b->ring, n - first);
    if (rc < 0) return rc;
  }
  return 0;
}

static int each_chunk(const tide_buf *b,
                      int (*fn)(void *, const char *, size_t), void *ud) {
  return each_range(b, 0, tide_buf_size(b), fn, ud);
}

static int chunk_to_fd(void *ud, const char *p, size_t n) {
  return tide_write_all(*(int *)ud, p, n);
}

int tide_buf_write_to(const tide_buf *b, int fd) {
  return each_chunk(b, chunk_to_fd, &fd);
}

static int chunk_to_luabuf(void *ud, const char *p, size_t n) {
  luaL_addlstring(ud, p, n);
  return 0;
}

void tide_buf_push(lua_State *L, const tide_buf *b) {
  if (b->spilled == 0 && b->ring_len == 0) {
    lua_pushlstring(L, b->data ? b->data : "", b->len);
    return;
  }
  luaL_Buffer lb;
  luaL_buffinit(L, &lb);
  int rc = each_chunk(b, chunk_to_luabuf, &lb);
  if (rc < 0) luaL_error(L, "reading spilled output: %s", strerror(-rc));
  luaL_pushresult(&lb);
}

void tide_buf_free(tide_buf *b) {
  uint64_t limit = b->limit;
  free(b->data);
  free(b->ring);
  if (b->spill_fd >= 0) close(b->spill_fd);
  tide_buf_init(b);
  b->limit = limit;
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

static int chunk_to_out(void *ud, const char *p, size_t n) {
  return tide_out_add(ud, p, n);
}

int tide_buf_write_range(const tide_buf *b, uint64_t off, uint64_t len,
                         tide_out *o) {
  return each_range(b, off, len, chunk_to_out, o);
}

/* ---- the output store: where order = "input" keeps finished jobs'
 * output until their turn ----
 *
 * Holding each job (its buffers, up to 1 MiB in memory and a spill file
 * each) until every earlier item is done would cost memory and a
 * descriptor per held job: ten thousand jobs held behind one slow first
 * item would run out of both.  Instead a held job's output is copied into
 * one store, itself a tide_buf (1 MiB in memory, the rest in one unlinked
 * file), and the job is released at once.  Lua keeps only offsets. */

#define STORE_MT "tide.store"

static tide_buf *checkstore(lua_State *L) {
  return luaL_checkudata(L, 1, STORE_MT);
}

static int chunk_to_buf(void *ud, const char *p, size_t n) {
  return tide_buf_add(ud, p, n);
}

static int push_error(lua_State *L, int rc) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", uv_err_name(rc), uv_strerror(rc));
  lua_pushstring(L, uv_err_name(rc));
  return 3;
}

/* store:add(job, stream) -> offset, length | nil, message, errname */
static int store_add(lua_State *L) {
  tide_buf *s = checkstore(L);
  const tide_buf *from = tide_job_buf(L, 2);
  uint64_t off = tide_buf_size(s);
  int rc = each_chunk(from, chunk_to_buf, s);
  if (rc < 0) return push_error(L, rc);
  lua_pushinteger(L, (lua_Integer)off);
  lua_pushinteger(L, (lua_Integer)(tide_buf_size(s) - off));
  return 2;
}

/* store:write(offset, length, fd [, prefix [, newline]]) -> true | nil,
 * message, errname */
static int store_write(lua_State *L) {
  tide_buf *s = checkstore(L);
  lua_Integer off = luaL_checkinteger(L, 2), len = luaL_checkinteger(L, 3);
  int fd = (int)luaL_checkinteger(L, 4);
  size_t plen = 0;
  const char *prefix = luaL_optlstring(L, 5, NULL, &plen);
  int newline = lua_toboolean(L, 6);
  luaL_argcheck(
      L, off >= 0 && len >= 0 && (uint64_t)(off + len) <= tide_buf_size(s), 2,
      "out of range");
  tide_out o;
  tide_out_init(&o, fd, prefix, plen, 1);
  fflush(NULL);
  int rc = tide_buf_write_range(s, (uint64_t)off, (uint64_t)len, &o);
  if (rc == 0) rc = tide_out_end(&o, newline);
  if (rc == -EINTR) tide_die(tide_signal_pending());
  if (rc < 0) return push_error(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

/* store:reset(): forget everything (nothing is held any more). */
static int store_reset(lua_State *L) {
  tide_buf_free(checkstore(L));
  return 0;
}

int tide_store_new(lua_State *L) {
  tide_buf *s = lua_newuserdatauv(L, sizeof *s, 0);
  tide_buf_init(s);
  luaL_setmetatable(L, STORE_MT);
  return 1;
}

void tide_store_register(lua_State *L) {
  static const luaL_Reg methods[] = {{"add", store_add},
                                     {"write", store_write},
                                     {"reset", store_reset},
                                     {"__gc", store_reset},
                                     {NULL, NULL}};
  luaL_newmetatable(L, STORE_MT);
  luaL_setfuncs(L, methods, 0);
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
