/*
 * frame.c (bindings): core.frame and core.unframe, the bytes of the frames
 * between tide and its workers, whose format lua/tide/backend/frame.lua
 * describes:  KIND ID N LEN1 ... LENn "\n" STRING1 ... STRINGn.
 * A job on a worker costs a few frames each way, and in Lua the number
 * formatting of a header and the patterns that read one back were most of
 * what a frame cost; here neither allocates more than the result.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>

#include "tide.h"

/* A header longer than this with no newline is not a tide worker talking. */
#define FRAME_HEADER_MAX 4096

/* Writes v in decimal ending at end; returns where it starts. */
static char *put_uint(char *end, uint64_t v) {
  char *p = end;
  do {
    *--p = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return p;
}

static char *append_uint(char *p, uint64_t v) {
  char tmp[24], *s = put_uint(tmp + sizeof tmp, v);
  size_t n = (size_t)(tmp + sizeof tmp - s);
  memcpy(p, s, n);
  return p + n;
}

/* Writes tostring's text of d (LUAI_NUMFFORMAT "%.14g", then ".0" when
 * that looks like an integer) into out (32 bytes) without snprintf, for
 * what a worker mostly sends: times in seconds that are whole micro- or
 * nanoseconds.  Returns its length, or 0 for Lua to do it.  Exact: such a
 * d is the double nearest k / 10^s with k < 10^14, so its 14 significant
 * digits are k's, and %g drops the trailing zeros, as done here. */
static size_t put_float(double d, char *out) {
  static const double scale[] = {1e6, 1e9};
  static const uint64_t pow10[] = {1000000, 1000000000};
  static const int digits[] = {6, 9};
  if (!(d >= 1e-4 && d < 1e5)) return 0; /* %g's exponent form, or k too long */
  for (int i = 0; i < 2; i++) {
    uint64_t k = (uint64_t)(d * scale[i] + 0.5);
    if ((double)k / scale[i] != d) continue;
    char *p = append_uint(out, k / pow10[i]);
    uint64_t frac = k % pow10[i];
    *p++ = '.';
    if (frac == 0) {
      *p++ = '0';
    } else {
      int n = digits[i];
      while (frac % 10 == 0) {
        frac /= 10;
        n--;
      }
      for (int j = n - 1; j >= 0; j--) {
        p[j] = (char)('0' + frac % 10);
        frac /= 10;
      }
      p += n;
    }
    return (size_t)(p - out);
  }
  return 0;
}

/* core.frame(kind, id, list [, n]) -> the bytes of one frame carrying
 * list[1..n] (n defaults to #list).  Numbers and other values go as
 * tostring() writes them. */
int tide_frame_encode(lua_State *L) {
  size_t klen;
  const char *kind = luaL_checklstring(L, 1, &klen);
  lua_Integer id = luaL_checkinteger(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_Integer n = luaL_optinteger(L, 4, (lua_Integer)lua_rawlen(L, 3));
  luaL_argcheck(L, id >= 0, 2, "negative id");
  luaL_argcheck(L, n >= 0 && n <= INT_MAX / 4, 4, "bad count");
  lua_settop(L, 3);
  luaL_checkstack(L, (int)n + LUA_MINSTACK, "too many strings in a frame");
  size_t total = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    int t = lua_rawgeti(L, 3, i);
    if (t == LUA_TNUMBER && lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0) {
      char tmp[24],
          *s = put_uint(tmp + sizeof tmp, (uint64_t)lua_tointeger(L, -1));
      lua_pop(L, 1);
      lua_pushlstring(L, s, (size_t)(tmp + sizeof tmp - s));
    } else if (t != LUA_TSTRING) {
      char tmp[32];
      size_t len = t == LUA_TNUMBER ? put_float(lua_tonumber(L, -1), tmp) : 0;
      if (len) {
        lua_pop(L, 1);
        lua_pushlstring(L, tmp, len);
      } else {
        luaL_tolstring(L, -1, NULL);
        lua_remove(L, -2);
      }
    }
    total += lua_rawlen(L, -1);
  }
  /* kind, three spaces, a newline, the id and n, a space and a length each */
  size_t head = klen + 4 + 2 * 20 + (size_t)n * 21;
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, head + total), *start = p;
  memcpy(p, kind, klen);
  p += klen;
  *p++ = ' ';
  p = append_uint(p, (uint64_t)id);
  *p++ = ' ';
  p = append_uint(p, (uint64_t)n);
  for (lua_Integer i = 1; i <= n; i++) {
    *p++ = ' ';
    p = append_uint(p, lua_rawlen(L, 3 + (int)i));
  }
  *p++ = '\n';
  for (lua_Integer i = 1; i <= n; i++) {
    size_t len;
    const char *s = lua_tolstring(L, 3 + (int)i, &len);
    memcpy(p, s, len);
    p += len;
  }
  luaL_pushresultsize(&b, (size_t)(p - start));
  return 1;
}

/* Reads a run of digits at *p (before end) as a length; 0 on a bad one. */
static int get_uint(const char **p, const char *end, uint64_t *v) {
  const char *s = *p;
  uint64_t x = 0;
  while (s < end && *s >= '0' && *s <= '9' && s - *p < 16)
    x = x * 10 + (uint64_t)(*s++ - '0');
  if (s == *p || (s < end && *s >= '0' && *s <= '9'))
    return 0; /* none, or too long */
  *p = s;
  *v = x;
  return 1;
}

/* core.unframe(buf [, pos]) -> the frame at buf[pos..]: kind, id, strings
 * (a list), the position after it; or nil and how many bytes from pos it
 * needs (nil while its header is not whole); or false and what is wrong:
 * "long" (no header end), "header" (not a header), "count" (a header whose
 * count is not its number of lengths). */
int tide_frame_decode(lua_State *L) {
  size_t len;
  const char *buf = luaL_checklstring(L, 1, &len);
  lua_Integer pos = luaL_optinteger(L, 2, 1);
  luaL_argcheck(L, pos >= 1 && (size_t)pos <= len + 1, 2, "out of range");
  const char *p = buf + pos - 1, *end = buf + len;
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  if (!nl) {
    if (end - p > FRAME_HEADER_MAX + 1) {
      lua_pushboolean(L, 0);
      lua_pushliteral(L, "long");
      return 2;
    }
    lua_pushnil(L);
    return 1;
  }
  const char *q = p;
  while (q < nl && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')))
    q++;
  const char *kend = q;
  uint64_t id, n, count = 0, total = 0, l = 0;
  if (q == p || q == nl || *q++ != ' ' || !get_uint(&q, nl, &id) || q == nl ||
      *q++ != ' ' || !get_uint(&q, nl, &n))
    goto bad;
  const char *lens = q;
  while (q < nl) {
    if (*q == ' ') {
      q++;
    } else if (get_uint(&q, nl, &l)) {
      count++;
      /* 16 digits at most each, so this cannot wrap before it is caught */
      total += l;
      if (total > (uint64_t)1 << 48) break;
    } else {
      goto bad;
    }
  }
  if (count != n || n > INT_MAX || total > (uint64_t)1 << 48) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "count");
    return 2;
  }
  if ((uint64_t)(end - nl - 1) < total) {
    lua_pushnil(L);
    lua_pushinteger(L, (lua_Integer)((uint64_t)(nl + 1 - p) + total));
    return 2;
  }
  lua_pushlstring(L, p, (size_t)(kend - p));
  lua_pushinteger(L, (lua_Integer)id);
  lua_createtable(L, (int)n, 0);
  const char *at = nl + 1;
  q = lens;
  for (lua_Integer i = 1; q < nl;) {
    if (*q == ' ') {
      q++;
      continue;
    }
    get_uint(&q, nl, &l);
    lua_pushlstring(L, at, (size_t)l);
    lua_rawseti(L, -2, i++);
    at += l;
  }
  lua_pushinteger(L, (lua_Integer)(at - buf) + 1);
  return 4;
bad:
  lua_pushboolean(L, 0);
  lua_pushliteral(L, "header");
  return 2;
}
