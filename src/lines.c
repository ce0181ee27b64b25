/*
 * lines.c (layer 3): the bytes of a watched stream that Lua has not taken
 * yet, and splitting them into lines.
 *
 * A read only appends (a memcpy, however many lines it holds); lines are
 * split when Lua takes them, so a job printing a million lines costs one
 * pass over its output and one Lua table per driver turn.  A line longer
 * than max_line comes out in pieces rather than waiting without bound.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "tide.h"

int tide_lines_add(tide_lines *pd, const char *p, size_t n) {
  if (pd->cap - pd->len < n && pd->start > 0) {
    memmove(pd->data, pd->data + pd->start, pd->len - pd->start);
    pd->len -= pd->start;
    pd->start = 0;
  }
  if (pd->cap - pd->len < n) {
    size_t cap = pd->cap ? pd->cap : 4096;
    while (cap - pd->len < n)
      cap *= 2;
    char *d = realloc(pd->data, cap);
    if (d == NULL) return -ENOMEM;
    pd->data = d;
    pd->cap = cap;
  }
  memcpy(pd->data + pd->len, p, n);
  pd->len += n;
  return 0;
}

void tide_lines_free(tide_lines *pd) {
  free(pd->data);
  memset(pd, 0, sizeof *pd);
}

/* Where what may be written now ends: after the last complete line; all
 * of it at the end (final) or when raw; and a line longer than max_line
 * goes out in pieces rather than wait without bound. */
size_t tide_lines_end(const tide_lines *pd, size_t max_line, int final,
                      int raw) {
  if (final || raw) return pd->len;
  const char *base = pd->data + pd->start;
  size_t n = pd->len - pd->start;
  const char *nl = n ? memrchr(base, '\n', n) : NULL;
  size_t end = nl ? (size_t)(nl - pd->data) + 1 : pd->start;
  if (pd->len - end >= max_line) end = pd->len;
  return end;
}

static void push_line(lua_State *L, const char *p, size_t n, lua_Integer i,
                      int piece, int *partial) {
  lua_pushlstring(L, p, n);
  lua_rawseti(L, -2 - (*partial != 0), i);
  if (!piece) return;
  if (!*partial) {
    lua_newtable(L);
    *partial = 1;
  }
  lua_pushboolean(L, 1);
  lua_rawseti(L, -2, i);
}

int tide_lines_push(lua_State *L, const tide_lines *pd, size_t max, int final,
                    size_t *end) {
  const char *p = pd->data + pd->start, *e = pd->data + pd->len;
  lua_Integer n = 0;
  int partial = 0, noeol = 0;
  *end = pd->start;
  if (p == e) return -1;
  lua_newtable(L);
  while (p < e) {
    const char *nl = memchr(p, '\n', (size_t)(e - p));
    size_t len = nl ? (size_t)(nl - p) : (size_t)(e - p);
    if (!nl && !final) { /* an unfinished line: only whole pieces go */
      for (; len >= max; p += max, len -= max)
        push_line(L, p, max, ++n, 1, &partial);
      break;
    }
    for (; len > max; p += max, len -= max)
      push_line(L, p, max, ++n, 1, &partial);
    push_line(L, p, len, ++n, 0, &partial);
    p += len + (nl != NULL);
    noeol = nl == NULL;
  }
  *end = (size_t)(p - pd->data);
  if (n == 0) {
    lua_pop(L, 1 + partial);
    return 0;
  }
  if (!partial) lua_pushnil(L);
  lua_pushboolean(L, noeol);
  return 3;
}
