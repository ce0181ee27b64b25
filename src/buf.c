/*
 * buf.c (layer 3): bounded output buffers, and the output store's copy.
 *
 * A job may print gigabytes; tide must read all of it (a full pipe blocks the
 * child forever) without holding it in memory.  The first TIDE_BUF_BOUND bytes
 * stay in memory; past that, the memory part is moved to an unlinked
 * temporary file, so the kernel frees it whatever way tide ends.
 *
 * A spill that fails (a full disk, an unusable $TMPDIR) is remembered in
 * b->err; what arrives after it is counted in b->lost, and the job's
 * owner makes the loss an error the user sees.  Memory keeps what it had.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
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
  b->err = 0;
  b->lost = 0;
}

const char *tide_spill_dir(void) {
  const char *dir = getenv("TMPDIR");
  return dir == NULL || *dir == '\0' ? "/tmp" : dir;
}

int tide_spill_open(int flags) {
  const char *dir = tide_spill_dir();
  int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC | flags, 0600);
  if (fd >= 0) return fd;
  /* O_TMPFILE needs filesystem support; fall back to create-and-unlink. */
  char path[4096];
  snprintf(path, sizeof path, "%s/tide-XXXXXX", dir);
  fd = mkostemp(path, O_CLOEXEC | flags);
  if (fd < 0) return -errno;
  unlink(path);
  return fd;
}

/* Reads of the spill file go by offset up to b->spilled, so a write cut
 * short leaves nothing behind that could be read. */
static int spill(tide_buf *b, const char *p, size_t n) {
  int rc = 0;
  if (b->spill_fd < 0) {
    rc = tide_spill_open(0);
    if (rc >= 0) {
      b->spill_fd = rc;
      rc = 0;
    }
  }
  if (rc == 0) rc = tide_write_all(b->spill_fd, b->data, b->len);
  if (rc == 0) rc = tide_write_all(b->spill_fd, p, n);
  if (rc == -EINTR) { /* tide is being stopped: the bytes are not kept */
    b->lost += n;
    return rc;
  }
  if (rc < 0) {
    b->err = -rc;
    b->lost += n;
    return rc;
  }
  b->spilled += b->len + n;
  b->len = 0;
  return 0;
}

static int add_limited(tide_buf *b, const char *p, size_t n);

int tide_buf_add(tide_buf *b, const char *p, size_t n) {
  if (b->limit) return add_limited(b, p, n);
  if (b->err) { /* nothing after a gap: the content stays a prefix */
    b->lost += n;
    return -b->err;
  }
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

/* Output fds 1 and 2 that copy_file_range or sendfile refused once (a
 * tty, a pipe, a file on another file system, O_APPEND): not asked again,
 * so that no call fails per job. */
static int no_cfr[3], no_sendfile[3];

/* Whether copy_file_range or sendfile refuses this pair of files for
 * good (not a regular file, another file system, O_APPEND...). */
static int refused(int err) {
  return err == EXDEV || err == EINVAL || err == EBADF || err == ENOSYS ||
         err == EOPNOTSUPP;
}

/* Copies [*off, end) of the spill file to fd in the kernel; returns 0
 * early, leaving the rest to pread and write, where neither call can. */
static int copy_spilled(const tide_buf *b, uint64_t *off, uint64_t end,
                        int fd) {
  int std = fd >= 0 && fd <= 2;
  if (std) tide_status_hide(fd);
  while (*off < end) {
    if (tide_signal_pending()) return -EINTR;
    size_t want = end - *off > (1u << 30) ? 1u << 30 : (size_t)(end - *off);
    ssize_t n;
    if (!(std && no_cfr[fd])) {
      loff_t in = (loff_t)*off;
      n = copy_file_range(b->spill_fd, &in, fd, NULL, want, 0);
      if (n > 0) {
        *off += (uint64_t)n;
        continue;
      }
      if (n == 0) return -EIO; /* shorter than b->spilled */
      if (errno == EINTR) continue;
      if (!refused(errno)) return -errno;
      if (std) no_cfr[fd] = 1;
    }
    if (std && no_sendfile[fd]) return 0;
    off_t o = (off_t)*off;
    n = sendfile(fd, b->spill_fd, &o, want);
    if (n > 0) {
      *off += (uint64_t)n;
      continue;
    }
    if (n == 0) return -EIO;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return 0;
    if (!refused(errno)) return -errno;
    if (std) no_sendfile[fd] = 1;
    return 0;
  }
  return 0;
}

/* The spill file's part goes to fd in the kernel when it can: a job
 * whose output went to a file (proc.c) is never read into tide. */
int tide_buf_write_to(const tide_buf *b, int fd) {
  uint64_t off = 0;
  if (b->spilled > 0) {
    int rc = copy_spilled(b, &off, b->spilled, fd);
    if (rc < 0) return rc;
  }
  return each_range(b, off, tide_buf_size(b) - off, chunk_to_fd, &fd);
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

/* The last max bytes of b only (a failed job's stderr tail, for a
 * report), without reading the rest back from the spill file. */
void tide_buf_push_tail(lua_State *L, const tide_buf *b, uint64_t max) {
  uint64_t size = tide_buf_size(b);
  if (size <= max) {
    tide_buf_push(L, b);
    return;
  }
  luaL_Buffer lb;
  luaL_buffinit(L, &lb);
  int rc = each_range(b, size - max, max, chunk_to_luabuf, &lb);
  if (rc < 0) luaL_error(L, "reading spilled output: %s", strerror(-rc));
  luaL_pushresult(&lb);
}

void tide_buf_free(tide_buf *b) {
  uint64_t limit = b->limit, lost = b->lost;
  int err = b->err;
  free(b->data);
  free(b->ring);
  if (b->spill_fd >= 0) close(b->spill_fd);
  tide_buf_init(b);
  b->limit = limit;
  b->err = err;
  b->lost = lost;
}

static int chunk_to_out(void *ud, const char *p, size_t n) {
  return tide_out_add(ud, p, n);
}

int tide_buf_write_range(const tide_buf *b, uint64_t off, uint64_t len,
                         tide_out *o) {
  return each_range(b, off, len, chunk_to_out, o);
}

static int chunk_to_buf(void *ud, const char *p, size_t n) {
  return tide_buf_add(ud, p, n);
}

int tide_buf_copy(tide_buf *to, const tide_buf *from) {
  return each_chunk(from, chunk_to_buf, to);
}
