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
}

static int write_all(int fd, const char *p, size_t n) {
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
  int rc = write_all(b->spill_fd, b->data, b->len);
  if (rc == 0) rc = write_all(b->spill_fd, p, n);
  if (rc < 0) return rc;
  b->spilled += b->len + n;
  b->len = 0;
  return 0;
}

int tide_buf_add(tide_buf *b, const char *p, size_t n) {
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

uint64_t tide_buf_size(const tide_buf *b) { return b->spilled + b->len; }

/* Calls fn on the whole content in order: spill file first, then memory. */
static int each_chunk(const tide_buf *b,
                      int (*fn)(void *, const char *, size_t), void *ud) {
  char chunk[65536];
  for (uint64_t off = 0; off < b->spilled;) {
    ssize_t r = pread(b->spill_fd, chunk, sizeof chunk, (off_t)off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return r < 0 ? -errno : -EIO;
    int rc = fn(ud, chunk, (size_t)r);
    if (rc < 0) return rc;
    off += (uint64_t)r;
  }
  return b->len ? fn(ud, b->data, b->len) : 0;
}

static int chunk_to_fd(void *ud, const char *p, size_t n) {
  return write_all(*(int *)ud, p, n);
}

int tide_buf_write_to(const tide_buf *b, int fd) {
  return each_chunk(b, chunk_to_fd, &fd);
}

static int chunk_to_luabuf(void *ud, const char *p, size_t n) {
  luaL_addlstring(ud, p, n);
  return 0;
}

void tide_buf_push(lua_State *L, const tide_buf *b) {
  if (b->spilled == 0) {
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
  free(b->data);
  if (b->spill_fd >= 0) close(b->spill_fd);
  tide_buf_init(b);
}
