/*
 * reader.c (layer 7): reading one of tide's own descriptors from the loop,
 * for `tide --worker`, whose requests arrive on its stdin while its jobs
 * run.  Like a watched job, a reader sends news when bytes came and
 * completes at end of file; Lua takes the bytes with reader:take().
 * Reading pauses while more than TIDE_READER_MAX bytes wait to be taken,
 * so a sender faster than Lua cannot grow tide's memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "tide.h"

#define READER_MT "tide.reader"
#define TIDE_READER_MAX (1u << 20)

typedef struct tide_reader {
  tide_obj obj;
  uv_pipe_t h;
  char *data;
  size_t len, cap;
  int eof, err, paused, closed;
} tide_reader;

static void reader_free(tide_obj *o) {
  tide_reader *r = (tide_reader *)o;
  tide_news_forget(o);
  free(r->data);
  free(r);
}

static void on_alloc(uv_handle_t *h, size_t want, uv_buf_t *b) {
  tide_reader *r = (tide_reader *)h->data;
  (void)want;
  if (r->cap - r->len < 65536) {
    size_t cap = r->cap ? r->cap * 2 : 65536;
    while (cap - r->len < 65536)
      cap *= 2;
    char *p = realloc(r->data, cap);
    if (p == NULL) {
      *b = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
      return;
    }
    r->data = p;
    r->cap = cap;
  }
  *b = uv_buf_init(r->data + r->len, (unsigned)(r->cap - r->len));
}

static void stop(tide_reader *r) {
  if (r->closed) return;
  r->closed = 1;
  uv_close((uv_handle_t *)&r->h, tide_obj_close_cb);
  tide_complete(&r->obj);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  tide_reader *r = (tide_reader *)s->data;
  (void)b;
  if (n > 0) {
    r->len += (size_t)n;
    if (r->len >= TIDE_READER_MAX) {
      uv_read_stop(s);
      r->paused = 1;
    }
    tide_news(&r->obj);
  } else if (n < 0) {
    r->eof = 1;
    if (n != UV_EOF) r->err = (int)-n;
    stop(r);
  }
}

static int read_file(tide_reader *r, int fd) {
  for (;;) {
    if (r->cap - r->len < 65536) {
      size_t cap = r->cap ? r->cap * 2 : 65536;
      char *p = realloc(r->data, cap);
      if (p == NULL) return ENOMEM;
      r->data = p;
      r->cap = cap;
    }
    ssize_t n = read(fd, r->data + r->len, r->cap - r->len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return 0;
    r->len += (size_t)n;
  }
}

/* core.reader(fd) -> reader | nil, message, errname.  The descriptor
 * becomes non-blocking and is the reader's until it completes. */
int tide_reader_new(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  tide_obj **u = lua_newuserdatauv(L, sizeof *u, 0);
  *u = NULL;
  luaL_setmetatable(L, READER_MT);
  tide_reader *r = calloc(1, sizeof *r);
  if (r == NULL) return luaL_error(L, "out of memory");
  r->obj.ref = LUA_NOREF;
  r->obj.free = reader_free;
  *u = &r->obj;
  if (uv_guess_handle(fd) == UV_FILE) {
    /* A file (or /dev/null) is not for epoll: it is read now, to its end. */
    int rc = read_file(r, fd);
    if (rc != 0) return tide_pusherr(L, rc, "reader", NULL);
    r->eof = r->closed = 1;
    tide_obj_pin(L, &r->obj);
    tide_complete(&r->obj);
    return 1;
  }
  uv_pipe_init(tide_loop(), &r->h, 0);
  r->h.data = r;
  r->obj.open_handles = 1;
  int rc = uv_pipe_open(&r->h, fd);
  if (rc == 0) rc = uv_read_start((uv_stream_t *)&r->h, on_alloc, on_read);
  if (rc != 0) {
    r->closed = 1;
    uv_close((uv_handle_t *)&r->h, tide_obj_close_cb);
    return tide_pusherr(L, -rc, "reader", NULL);
  }
  tide_obj_pin(L, &r->obj);
  return 1;
}

/* reader:take() -> the bytes read so far (maybe ""), and true once the
 * end of file was read and nothing is left; reading resumes if it paused. */
static int reader_take(lua_State *L) {
  tide_obj **u = luaL_checkudata(L, 1, READER_MT);
  tide_reader *r = (tide_reader *)*u;
  if (r == NULL) return luaL_argerror(L, 1, "reader already collected");
  lua_pushlstring(L, r->data ? r->data : "", r->len);
  r->len = 0;
  if (r->paused && !r->closed) {
    r->paused = 0;
    uv_read_start((uv_stream_t *)&r->h, on_alloc, on_read);
  }
  lua_pushboolean(L, r->eof);
  return 2;
}

static int reader_gc(lua_State *L) { return tide_obj_gc(L, READER_MT); }

void tide_reader_register(lua_State *L) {
  static const luaL_Reg methods[] = {{"take", reader_take}, {NULL, NULL}};
  tide_obj_class(L, READER_MT, methods, reader_gc);
}
