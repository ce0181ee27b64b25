/*
 * spawn.c (layer 5): starting one process, in a session of its own.
 *
 * Why vfork and not uv_spawn or posix_spawn: uv_spawn forks, and fork gets
 * slower as the parent's heap grows (a script holding 1 GiB of strings
 * spawned 20x slower).  glibc's posix_spawn avoids that with CLONE_VFORK,
 * but costs a dozen system calls more per job than needed (a getrlimit per
 * file action, a fresh child stack mapped and unmapped, every signal reset)
 * and short jobs are dominated by such costs.  vfork shares our memory and
 * stack until the child execs, so the child below only calls
 * async-signal-safe functions and reports a failed exec through memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lauxlib.h>

#include "tide.h"

extern char **environ;

typedef struct child_args {
  const tide_spawn_opts *o;
  char *const *envp;
  char *const *paths;    /* where to look for the program, in order */
  char **sh_argv;        /* /bin/sh, the file, argv[1]...: a file with no #! */
  const sigset_t *reset; /* signals whose disposition tide changed */
  const sigset_t *mask;  /* the job's signal mask: empty */
  pid_t parent;          /* tide */
  volatile int err;      /* written by the child when it cannot exec */
} child_args;

/* Tries each candidate path as execvpe does, and gives the errno execvpe
 * would: a file with no #! line runs through /bin/sh, as shells do; a path
 * that is not there, or not a directory, is skipped; EACCES is kept for
 * the end, so that a later directory can still have the program. */
static int exec_search(child_args *c) {
  int eacces = 0, err = ENOENT;
  for (char *const *p = c->paths; *p; p++) {
    execve(*p, (char *const *)c->o->argv, c->envp);
    err = errno;
    if (err == ENOEXEC) {
      c->sh_argv[1] = *p;
      execve(c->sh_argv[0], c->sh_argv, c->envp);
      err = errno;
    }
    switch (err) {
    case EACCES:
      eacces = 1; /* FALLTHROUGH */
    case ENOENT:
    case ESTALE:
    case ENOTDIR:
    case ENODEV:
    case ETIMEDOUT:
      continue;
    default:
      return err;
    }
  }
  return eacces ? EACCES : err;
}

/* Runs in the vfork child, on the parent's stack, with all signals
 * blocked: no allocation, no stdio, only system calls. */
static void __attribute__((noinline, noreturn)) child(child_args *c) {
  const tide_spawn_opts *o = c->o;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++)
    if (sigismember(c->reset, sig) == 1) sigaction(sig, &sa, NULL);
  if (setsid() < 0) goto fail;
  /* The job dies with tide, even when tide is killed with SIGKILL and
   * cannot stop it: a job finishing after its tide is gone would be done
   * but not in the job log, and resume would run it again.  This reaches
   * the job's own process, not what it started (see README).  If tide
   * died before this call, we have been re-parented: do not run at all. */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != c->parent)
    _exit(127);
  for (int k = 0; k < 3; k++) {
    if (o->fd[k] == k) {
      if (fcntl(k, F_SETFD, 0) < 0) goto fail; /* keep it across exec */
    } else if (dup2(o->fd[k], k) < 0) {
      goto fail;
    }
  }
  if (o->cwd && chdir(o->cwd) < 0) goto fail;
  sigprocmask(SIG_SETMASK, c->mask, NULL);
  c->err = exec_search(c);
  _exit(127);
fail:
  c->err = errno;
  _exit(127);
}

static int start(child_args *c, pid_t *pid) {
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  pid_t p = vfork();
  if (p == 0) child(c);
  int err = p < 0 ? errno : 0;
  sigprocmask(SIG_SETMASK, &old, NULL);
  if (p > 0 && c->err != 0) {
    /* The child could not exec and has exited: reap it here. */
    err = c->err;
    while (waitpid(p, NULL, 0) < 0 && errno == EINTR) {}
  }
  *pid = err ? 0 : p;
  return err;
}

/* The PATH the job is searched in: its own if opts.env set one, as
 * execvpe does for a shell and Python's subprocess does too; with none,
 * libc's default. */
static const char *search_path(char *const *envp) {
  for (char *const *e = envp; *e; e++)
    if (strncmp(*e, "PATH=", 5) == 0) return *e + 5;
  return "/bin:/usr/bin";
}

/* The paths execvpe would try for file, in one allocation (the array,
 * then the strings), made here because the vfork child may not allocate.
 * tide's own environment is never changed for the search. */
static char **candidates(const char *file, char *const *envp) {
  if (strchr(file, '/')) {
    char **v = malloc(2 * sizeof *v);
    if (v == NULL) return NULL;
    v[0] = (char *)file;
    v[1] = NULL;
    return v;
  }
  const char *path = search_path(envp);
  size_t n = 1, flen = strlen(file);
  for (const char *p = path; *p; p++)
    n += *p == ':';
  char **v = malloc((n + 1) * sizeof *v + strlen(path) + n * (flen + 2));
  if (v == NULL) return NULL;
  char *at = (char *)(v + n + 1);
  size_t i = 0;
  for (const char *p = path;; p++) {
    const char *end = strchrnul(p, ':');
    size_t dlen = (size_t)(end - p);
    v[i++] = at;
    if (dlen > 0) { /* an empty element is the current directory */
      memcpy(at, p, dlen);
      at[dlen] = '/';
      at += dlen + 1;
    }
    memcpy(at, file, flen + 1);
    at += flen + 1;
    if (*end == '\0') break;
    p = end;
  }
  v[i] = NULL;
  return v;
}

int tide_spawn(const tide_spawn_opts *o, pid_t *pid) {
  static sigset_t none;
  static pid_t self;
  if (self == 0) self = getpid();
  if (o->argv[0][0] == '\0') return ENOENT;
  char *const *envp = o->envp ? o->envp : environ;
  size_t argc = 0;
  while (o->argv[argc])
    argc++;
  char **paths = candidates(o->argv[0], envp);
  char **sh_argv = malloc((argc + 2) * sizeof *sh_argv);
  if (paths == NULL || sh_argv == NULL) {
    free(paths);
    free(sh_argv);
    return ENOMEM;
  }
  sh_argv[0] = "/bin/sh";
  for (size_t i = 1; i <= argc; i++) /* argv[1..] and the NULL */
    sh_argv[i + 1] = (char *)o->argv[i];
  child_args c = {o,     envp, paths, sh_argv, tide_signals_changed(),
                  &none, self, 0};
  int err = start(&c, pid);
  free(paths);
  free(sh_argv);
  return err;
}

/* A name the job's environment sets or unsets, and its "K=V" string. */
typedef struct env_name {
  const char *name;
  size_t len;
  const char *kv; /* NULL: unset (false), or set by a later entry */
  char first;     /* name[0]: most of environ differs there */
} env_name;

/* Whether environ's entry e is the variable name (not a longer one). */
static int is_named(const char *e, const env_name *n) {
  return e[0] == n->first && strncmp(e, n->name, n->len) == 0 &&
         e[n->len] == '=';
}

/* Calls fn(s, arg) for each extra "K=V" string: the strings and lists of
 * strings at stack indices extra..top (nil skipped).  The table keeps a
 * listed string alive after the pop. */
static void each_extra(lua_State *L, int extra, int top,
                       void (*fn)(const char *, void *), void *arg) {
  for (int i = extra; i <= top; i++) {
    if (lua_type(L, i) == LUA_TSTRING) {
      fn(lua_tostring(L, i), arg);
    } else if (lua_istable(L, i)) {
      for (lua_Integer k = 1; lua_rawgeti(L, i, k) == LUA_TSTRING; k++) {
        fn(lua_tostring(L, -1), arg);
        lua_pop(L, 1);
      }
      lua_pop(L, 1);
    }
  }
}

int tide_spawn_env_check(lua_State *L, int extra, int top) {
  for (int i = extra; i <= top; i++) {
    int t = lua_type(L, i);
    if (t == LUA_TNIL) continue;
    if (t != LUA_TSTRING && t != LUA_TTABLE) return i;
    lua_Integer n = t == LUA_TTABLE ? (lua_Integer)lua_rawlen(L, i) : 1;
    for (lua_Integer k = 1; k <= n; k++) {
      if (t == LUA_TTABLE) lua_rawgeti(L, i, k);
      size_t len;
      const char *s = lua_tolstring(L, t == LUA_TTABLE ? -1 : i, &len);
      int bad = lua_type(L, t == LUA_TTABLE ? -1 : i) != LUA_TSTRING ||
                s[0] == '=' || memchr(s, '=', len) == NULL || strlen(s) != len;
      if (t == LUA_TTABLE) lua_pop(L, 1);
      if (bad) return i;
    }
  }
  return 0;
}

typedef struct extras {
  env_name *n; /* where the next name goes */
  size_t count;
} extras;

static void count_extra(const char *s, void *arg) {
  (void)s;
  ((extras *)arg)->count++;
}

static void add_extra(const char *s, void *arg) {
  extras *x = arg;
  x->n->name = x->n->kv = s;
  x->n->first = s[0];
  x->n->len = (size_t)(strchr(s, '=') - s);
  x->n++;
}

/* The buffer the environment is built in, kept for the next job (a job's
 * environment is needed only until its exec). */
static char **grow(size_t need) {
  static void *buf;
  static size_t cap;
  if (need > cap) {
    void *p = realloc(buf, need + need / 2);
    if (p == NULL) return NULL;
    buf = p;
    cap = need + need / 2;
  }
  return buf;
}

/* What was kept of environ for the last job that had extra strings and no
 * env table: the next one keeps the same while environ holds the same
 * pointers (setenv and unsetenv change them) and its strings set the same
 * names, as TIDE_SLOT does job after job. */
static struct {
  char **at;   /* environ then */
  char **copy; /* its n pointers and the NULL, then the nkept kept */
  size_t n, nkept;
  char *key; /* the names, each with its '=' */
  size_t keylen;
} memo;

typedef struct replay {
  char **out;
  size_t pos;
  int same;
} replay;

static void replay_extra(const char *s, void *arg) {
  replay *r = arg;
  size_t len = (size_t)(strchr(s, '=') - s) + 1;
  if (r->same && r->pos + len <= memo.keylen &&
      memcmp(memo.key + r->pos, s, len) == 0)
    r->pos += len;
  else
    r->same = 0;
  *r->out++ = (char *)s;
}

/* envp from memo and the extra strings, or NULL if memo does not apply.
 * environ is read up to its NULL only, whatever happened to it. */
static char **from_memo(lua_State *L, int extra, int top, char **envp) {
  char **e = environ, **c = memo.copy;
  if (e != memo.at) return NULL;
  while (*e && *e == *c) {
    e++;
    c++;
  }
  if (*e || *c) return NULL;
  memcpy(envp, memo.copy + memo.n + 1, memo.nkept * sizeof *envp);
  replay r = {envp + memo.nkept, 0, 1};
  each_extra(L, extra, top, replay_extra, &r);
  if (!r.same || r.pos != memo.keylen) return NULL;
  *r.out = NULL;
  return envp;
}

static void to_memo(char *const *envp, size_t nkept, size_t nenv,
                    const env_name *name, size_t nnames) {
  size_t keylen = 0;
  for (size_t i = 0; i < nnames; i++)
    keylen += name[i].len + 1;
  char **copy = malloc((nenv + 1 + nkept) * sizeof *copy + keylen);
  if (copy == NULL) return;
  free(memo.copy);
  memcpy(copy, environ, (nenv + 1) * sizeof *copy);
  memcpy(copy + nenv + 1, envp, nkept * sizeof *copy);
  char *key = (char *)(copy + nenv + 1 + nkept);
  memo.at = environ;
  memo.copy = copy;
  memo.n = nenv;
  memo.nkept = nkept;
  memo.key = key;
  memo.keylen = keylen;
  for (size_t i = 0; i < nnames; i++) {
    memcpy(key, name[i].name, name[i].len + 1); /* "K=" of "K=V" */
    key += name[i].len + 1;
  }
}

/* The job's environment: pointers to environ's entries but those whose
 * name is set or unset below, then the extra "K=V" strings (a name the
 * table also sets left out), then the table's string and number values (a
 * false value, or any other, unsets).  In one buffer (grow): the
 * pointers, the names, and the table's "K=V" strings. */
char **tide_spawn_env(lua_State *L, int env, int extra, int top) {
  extras x = {NULL, 0};
  each_extra(L, extra, top, count_extra, &x);
  if (!env && memo.copy) {
    char **envp = grow((memo.nkept + x.count + 1) * sizeof *envp);
    if (envp && from_memo(L, extra, top, envp)) return envp;
  }
  size_t nenv = 0, nset = 0, bytes = 0;
  for (char **e = environ; *e; e++)
    nenv++;
  if (env) {
    lua_pushnil(L);
    while (lua_next(L, env)) {
      if (lua_type(L, -2) == LUA_TSTRING) {
        nset++;
        int t = lua_type(L, -1);
        if (t == LUA_TSTRING || t == LUA_TNUMBER) {
          size_t klen, vlen;
          lua_tolstring(L, -2, &klen);
          lua_tolstring(L, -1, &vlen); /* a number: the stack copy only */
          bytes += klen + vlen + 2;
        }
      }
      lua_pop(L, 1);
    }
  }
  size_t nnames = nset + x.count;
  size_t need =
      (nenv + nnames + 1) * sizeof(char *) + nnames * sizeof(env_name) + bytes;
  char **envp = grow(need);
  if (envp == NULL) return NULL;
  env_name *name = (env_name *)(envp + nenv + nnames + 1);
  char *at = (char *)(name + nnames);
  size_t k = 0;
  if (env) {
    lua_pushnil(L);
    while (lua_next(L, env)) {
      if (lua_type(L, -2) == LUA_TSTRING) {
        env_name *n = &name[k++];
        n->name = lua_tolstring(L, -2, &n->len);
        n->first = n->name[0];
        n->kv = NULL;
        int t = lua_type(L, -1);
        if (t == LUA_TSTRING || t == LUA_TNUMBER) {
          size_t vlen;
          const char *v = lua_tolstring(L, -1, &vlen);
          n->kv = at;
          memcpy(at, n->name, n->len);
          at[n->len] = '=';
          memcpy(at + n->len + 1, v, vlen + 1);
          at += n->len + vlen + 2;
        }
      }
      lua_pop(L, 1);
    }
  }
  x.n = &name[nset];
  each_extra(L, extra, top, add_extra, &x);
  /* The table wins over an extra string of the same name. */
  for (size_t i = nset; i < nnames; i++)
    for (size_t j = 0; j < nset; j++)
      if (name[i].len == name[j].len &&
          memcmp(name[i].name, name[j].name, name[j].len) == 0)
        name[i].kv = NULL;
  k = 0;
  /* The first bytes of the names: most of environ is kept on one test. */
  uint64_t first[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < nnames; i++)
    first[(unsigned char)name[i].first >> 6] |=
        (uint64_t)1 << ((unsigned char)name[i].first & 63);
  const env_name *end = name + nnames;
  for (char **e = environ; *e; e++) {
    unsigned char c = (unsigned char)**e;
    if (!(first[c >> 6] >> (c & 63) & 1)) {
      envp[k++] = *e;
      continue;
    }
    const env_name *n = name;
    while (n < end && !is_named(*e, n))
      n++;
    if (n == end) envp[k++] = *e;
  }
  if (!env) to_memo(envp, k, nenv, name, nnames);
  for (size_t i = nset; i < nnames; i++)
    if (name[i].kv) envp[k++] = (char *)name[i].kv;
  for (size_t i = 0; i < nset; i++)
    if (name[i].kv) envp[k++] = (char *)name[i].kv;
  envp[k] = NULL;
  return envp;
}
