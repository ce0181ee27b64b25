/* embed.h: the Lua modules compiled into tide (embed.c is generated). */
#ifndef TIDE_EMBED_H
#define TIDE_EMBED_H

#include <stddef.h>

typedef struct tide_embedded {
  const char *name; /* module name for require */
  const char *file; /* path under lua/ */
  const unsigned char *data;
  size_t len;
} tide_embedded;

extern const tide_embedded tide_embedded_modules[];

#endif
