/*
 * lcore_job.c (bindings): core.spawn and the methods of the job object.
 *
 * The mechanism (the process, its pipes, its exit) is proc.c's; this file
 * reads spawn options, checks arguments and turns results into Lua values.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <lauxlib.h>

#include "tide.h"

#define JOB_MT "tide.job"
#define TIDE_MAX_LINE (1u << 20) /* default max_line */

static tide_job *checkjob(lua_State *L) {
  tide_obj **u = luaL_checkudata(L, 1, JOB_MT);
  if (*u == NULL) luaL_argerror(L, 1, "job already collected");
  return (tide_job *)*u;
}

static int streamarg(lua_State *L, int idx) {
  static const char *const names[] = {"stdout", "stderr", NULL};
  return luaL_checkoption(L, idx, NULL, names);
}

static int signum(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TNUMBER) return (int)luaL_checkinteger(L, idx);
  const char *name = luaL_optstring(L, idx, "SIGTERM");
  int sig = tide_signum(name);
  if (sig < 0)
    return luaL_argerror(L, idx,
                         lua_pushfstring(L, "unknown signal '%s'", name));
  return sig;
}

/* A duration in seconds, as milliseconds for libuv. */
static uint64_t grace_ms(lua_State *L, int idx, lua_Number grace) {
  luaL_argcheck(L, grace >= 0, idx, "grace must not be negative");
  return (uint64_t)(grace * 1000);
}

static int job_gc(lua_State *L) { return tide_obj_gc(L, JOB_MT); }

/* job:result() -> code|nil, signal name|nil, elapsed seconds, when it started
 * (on core.now()'s clock) */
static int job_result(lua_State *L) {
  tide_job *j = checkjob(L);
  if (!j->finished) return luaL_error(L, "job is still running");
  if (WIFSIGNALED(j->status)) {
    const char *name = tide_signame(WTERMSIG(j->status));
    lua_pushnil(L);
    if (name)
      lua_pushstring(L, name);
    else
      lua_pushfstring(L, "SIG%d", WTERMSIG(j->status));
  } else {
    lua_pushinteger(L, WEXITSTATUS(j->status));
    lua_pushnil(L);
  }
  lua_pushnumber(L, (double)(j->t1 - j->t0) / 1e9);
  lua_pushnumber(L, (double)j->t0 / 1e9); /* on core.now()'s clock */
  return 4;
}

static int job_pid(lua_State *L) {
  tide_job *j = checkjob(L);
  if (j->pid == 0) return 0;
  lua_pushinteger(L, j->pid);
  return 1;
}

/* job:usage() -> user seconds, system seconds, max RSS in KiB */
static int job_usage(lua_State *L) {
  tide_job *j = checkjob(L);
  lua_pushnumber(L, j->ru.ru_utime.tv_sec + j->ru.ru_utime.tv_usec / 1e6);
  lua_pushnumber(L, j->ru.ru_stime.tv_sec + j->ru.ru_stime.tv_usec / 1e6);
  lua_pushinteger(L, j->ru.ru_maxrss);
  return 3;
}

/* job:output("stdout"|"stderr" [, max]) -> everything the job wrote there,
 * or only its last max bytes */
static int job_output(lua_State *L) {
  tide_job *j = checkjob(L);
  int k = streamarg(L, 2);
  if (lua_isnoneornil(L, 3)) {
    tide_buf_push(L, &j->buf[k]);
  } else {
    lua_Integer max = luaL_checkinteger(L, 3);
    luaL_argcheck(L, max >= 0, 3, "a number of bytes of at least 0");
    tide_buf_push_tail(L, &j->buf[k], (uint64_t)max);
  }
  return 1;
}

/* job:write(stream, fd [, prefix [, newline]]) -> true | nil, message,
 * errname.  Writes a stream to one of tide's own descriptors as one block,
 * with prefix before each line, and a final "\n" if newline and the last
 * line has none; stdio is flushed first so the block lands after what the
 * script printed. */
static int job_write(lua_State *L) {
  tide_job *j = checkjob(L);
  int k = streamarg(L, 2);
  int fd = (int)luaL_checkinteger(L, 3);
  size_t plen = 0;
  const char *prefix = luaL_optlstring(L, 4, NULL, &plen);
  int newline = lua_toboolean(L, 5);
  fflush(NULL);
  if (prefix == NULL && !newline)
    return tide_write_result(L, tide_buf_write_to(&j->buf[k], fd));
  tide_out o;
  tide_out_init(&o, fd, prefix, plen, 1);
  int rc = tide_buf_write_range(&j->buf[k], 0, tide_buf_size(&j->buf[k]), &o);
  if (rc == 0) rc = tide_out_end(&o, newline);
  return tide_write_result(L, rc);
}

/* job:release(): drop the buffered output once it is no longer needed. */
static int job_release(lua_State *L) {
  tide_job *j = checkjob(L);
  if (j->finished) tide_job_release(j);
  return 0;
}

/* job:clear(stream): empty the kept buffer of one stream (its content was
 * printed while the job runs on). */
static int job_clear(lua_State *L) {
  tide_job *j = checkjob(L);
  tide_buf_free(&j->buf[streamarg(L, 2)]);
  return 0;
}

/* job:keep(stream, s): append s to the kept buffer (the lines a per-line
 * callback let through, printed as one block later). */
static int job_keep(lua_State *L) {
  tide_job *j = checkjob(L);
  int k = streamarg(L, 2);
  size_t n;
  const char *p = luaL_checklstring(L, 3, &n);
  return tide_write_result(L, tide_buf_add(&j->buf[k], p, n));
}

/* job:omitted(stream) -> bytes max_output left out of the middle */
static int job_omitted(lua_State *L) {
  tide_job *j = checkjob(L);
  lua_pushinteger(L, (lua_Integer)j->buf[streamarg(L, 2)].omitted);
  return 1;
}

/* job:tee_error(stream) -> nil | why writing the results file failed */
static int job_tee_error(lua_State *L) {
  tide_job *j = checkjob(L);
  int e = j->tee_err[streamarg(L, 2)];
  if (e == 0) return 0;
  lua_pushstring(L, strerror(e));
  return 1;
}

/* job:spill_error(stream) -> nothing | message, errname: the output tide
 * could not keep, because writing its spill file failed ("ENOSPC: no space
 * left on device (spill): '/tmp'"); the bytes past that point are lost. */
static int job_spill_error(lua_State *L) {
  tide_job *j = checkjob(L);
  tide_buf *b = &j->buf[streamarg(L, 2)];
  if (b->err == 0) return 0;
  tide_pusherr(L, b->err, "spill", tide_spill_dir());
  lua_remove(L, -3);
  return 2;
}

/* job:store(store, stream) -> offset, length | nil, message, errname:
 * copies the stream's kept output into an output store (core.store), where
 * order = "input" holds it until its turn. */
static int job_store(lua_State *L) {
  tide_job *j = checkjob(L);
  return tide_store_add(L, 2, &j->buf[streamarg(L, 3)]);
}

/* ---- watched output: taking complete lines ---- */

static tide_lines *checklines(lua_State *L, tide_job **jp, int *kp) {
  tide_job *j = checkjob(L);
  int k = streamarg(L, 2);
  if (!j->watch) luaL_error(L, "job output is not watched");
  *jp = j;
  *kp = k;
  return &j->pend[k];
}

/* job:flush(stream, fd [, prefix [, final [, newline [, raw]]]]) -> true |
 * nil, message, errname.  Writes the complete lines read so far to fd, with
 * prefix before each; with final (the job has ended) also an unfinished
 * last line, and then "\n" if newline; with raw every byte read so far. */
static int job_flush(lua_State *L) {
  tide_job *j;
  int k;
  tide_lines *pd = checklines(L, &j, &k);
  int fd = (int)luaL_checkinteger(L, 3);
  size_t plen = 0;
  const char *prefix = luaL_optlstring(L, 4, NULL, &plen);
  int final = lua_toboolean(L, 5), newline = lua_toboolean(L, 6);
  int raw = lua_toboolean(L, 7);
  size_t end = tide_lines_end(pd, j->max_line, final, raw);
  if (end == pd->start && !(final && newline && pd->midline)) {
    lua_pushboolean(L, 1);
    return 1;
  }
  tide_out o;
  tide_out_init(&o, fd, prefix, plen, !pd->midline);
  fflush(NULL);
  int rc = tide_out_add(&o, pd->data + pd->start, end - pd->start);
  if (rc == 0) rc = tide_out_end(&o, final && newline);
  pd->midline = !o.at_start;
  tide_job_consume(j, k, end);
  return tide_write_result(L, rc);
}

/* job:hold(stream [, final]): moves the complete lines read so far (all,
 * with final) into the kept buffer, to be printed later as one block: a
 * line-mode job whose turn has not come (order = "input"). */
static int job_hold(lua_State *L) {
  tide_job *j;
  int k;
  tide_lines *pd = checklines(L, &j, &k);
  size_t end = tide_lines_end(pd, j->max_line, lua_toboolean(L, 3), 0);
  if (end > pd->start) {
    int rc = tide_buf_add(&j->buf[k], pd->data + pd->start, end - pd->start);
    pd->midline = pd->data[end - 1] != '\n';
    tide_job_consume(j, k, end);
    if (rc < 0) return tide_write_result(L, rc);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* job:lines(stream [, final]) -> lines, partial, noeol | nothing.  Takes
 * the complete lines read so far, without their "\n"; a line longer than
 * max_line comes in pieces, each but the last listed in the table partial
 * (nil when there are none); with final (the job has ended) also an
 * unfinished last line, and noeol is then true. */
static int job_lines(lua_State *L) {
  tide_job *j;
  int k;
  tide_lines *pd = checklines(L, &j, &k);
  int final = lua_toboolean(L, 3);
  size_t end;
  lua_settop(L, 3);
  int n = tide_lines_push(L, pd, j->max_line, final, &end);
  if (n < 0) return 0;
  tide_job_consume(j, k, end);
  return n;
}

/* job:kill([sig]) -> true if the job was still running */
static int job_kill(lua_State *L) {
  tide_job *j = checkjob(L);
  int sig = signum(L, 2);
  lua_pushboolean(L, !j->exited && j->pid > 0 && kill(-j->pid, sig) == 0);
  return 1;
}

/* job:terminate([grace]): SIGTERM the group now, SIGKILL after grace
 * seconds (default: core.configure's kill_grace) */
static int job_terminate(lua_State *L) {
  tide_job *j = checkjob(L);
  lua_Number grace =
      luaL_optnumber(L, 2, (lua_Number)tide_conf.kill_grace_ms / 1000);
  tide_job_terminate(j, grace_ms(L, 2, grace));
  return 0;
}

/* job:hangup(grace): closes the stdin that hold_stdin kept open, so that
 * the remote side (see lua/tide/backend/remote.lua) stops the job with its
 * own SIGTERM and grace and reports how it ended; SIGKILLs the local group
 * after grace seconds if it is still running. */
static int job_hangup(lua_State *L) {
  tide_job *j = checkjob(L);
  tide_job_hangup(j, grace_ms(L, 2, luaL_checknumber(L, 2)));
  return 0;
}

/* ---- core.spawn ---- */

static int disposition(lua_State *L, int opts, const char *field) {
  static const char *const names[] = {"pipe", "inherit", "null", NULL};
  int d = TIDE_DISP_PIPE;
  if (opts && lua_getfield(L, opts, field) != LUA_TNIL) {
    const char *s = lua_tostring(L, -1);
    d = -1;
    for (int i = 0; s && names[i]; i++)
      if (strcmp(s, names[i]) == 0) d = i;
    if (d < 0) luaL_error(L, "bad spawn option '%s'", field);
  }
  if (opts) lua_pop(L, 1);
  return d;
}

static lua_Integer intopt(lua_State *L, int opts, const char *field,
                          lua_Integer dflt, lua_Integer min) {
  lua_Integer v = dflt;
  if (lua_getfield(L, opts, field) != LUA_TNIL) {
    int ok;
    v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < min) luaL_error(L, "bad spawn option '%s'", field);
  }
  lua_pop(L, 1);
  return v;
}

/* The results file of a piped stream; the options table keeps it alive. */
static const char *teeopt(lua_State *L, int opts, const char *field) {
  const char *path = NULL;
  if (lua_getfield(L, opts, field) == LUA_TSTRING) path = lua_tostring(L, -1);
  lua_pop(L, 1);
  return path;
}

/*
 * core.spawn(argv [, opts [, ...]]) -> job | nil, message, errname
 * ...: "NAME=value" strings, or lists of them, added to the job's
 * environment (opts.env wins over them): what every job of a task gets,
 * TIDE_SLOT, without a table built per job.
 * opts: cwd, env (table), stdin (string), stdout/stderr ("pipe", "inherit",
 * "null"), and for piped streams: keep (false: do not keep the output),
 * max_output (bytes kept per stream: the first and last half), watch
 * (split lines for job:lines/flush/hold, and send news), max_line (the
 * longest piece a watched line comes in), tee_stdout/tee_stderr (a results
 * file that gets every byte; a stream that goes nowhere else is given to
 * the job itself), hold_stdin (stdin is a pipe that stays open, after the
 * stdin bytes if any, until the job ends: a remote side that waits for
 * its end of file learns that the job's launcher is gone, even when tide
 * itself is killed).
 *
 * Every failure returns nil, message, errname and leaves no job: resource
 * shortages (EMFILE, ENFILE, EAGAIN, ENOMEM), which the scheduler waits out
 * and retries, and a program that cannot start, named in the message as
 * "(cmd): 'prog'", "(cwd): '/dir'" or "(tee_stdout): '/path'".  What such a
 * failure means for the job's result (127, 126, a message) is Lua's call.
 */
/* Reads core.spawn's options (at opts, 0 for none) into o and a new job
 * userdata, pushed and pinned; *envidx is the env table's index or 0.
 * Everything that can raise happens here, before any resource is taken. */
static tide_job *new_job(lua_State *L, int opts, tide_job_opts *o,
                         int *envidx) {
  memset(o, 0, sizeof *o);
  o->disp[TIDE_OUT] = disposition(L, opts, "stdout");
  o->disp[TIDE_ERR] = disposition(L, opts, "stderr");
  *envidx = 0;
  if (opts) {
    lua_getfield(L, opts, "cwd");
    o->cwd = lua_tostring(L, -1); /* kept alive by the stack slot */
    lua_getfield(L, opts, "stdin");
    o->in = lua_tolstring(L, -1, &o->inlen);
    lua_getfield(L, opts, "env");
    if (lua_istable(L, -1)) *envidx = lua_gettop(L);
  }

  int keep = 1, watchit = 0, hold = 0;
  lua_Integer max_line = TIDE_MAX_LINE, max_output = 0;
  if (opts) {
    lua_getfield(L, opts, "keep");
    keep = lua_isnil(L, -1) || lua_toboolean(L, -1);
    lua_getfield(L, opts, "watch");
    watchit = lua_toboolean(L, -1);
    lua_getfield(L, opts, "hold_stdin");
    hold = lua_toboolean(L, -1);
    lua_pop(L, 3);
    if (hold && o->in == NULL) o->in = "";
    max_line = intopt(L, opts, "max_line", TIDE_MAX_LINE, 1);
    max_output = intopt(L, opts, "max_output", 0, 0);
    o->tee[TIDE_OUT] = teeopt(L, opts, "tee_stdout");
    o->tee[TIDE_ERR] = teeopt(L, opts, "tee_stderr");
  }
  tide_obj **u = lua_newuserdatauv(L, sizeof *u, 0);
  *u = NULL;
  luaL_setmetatable(L, JOB_MT);
  tide_job *j = tide_job_new();
  if (j == NULL) luaL_error(L, "out of memory");
  *u = &j->obj;
  j->max_line = TIDE_MAX_LINE;
  tide_obj_pin(L, &j->obj);
  if (opts) {
    j->keep = keep;
    j->watch = watchit;
    j->max_line = (size_t)max_line;
    j->buf[TIDE_OUT].limit = j->buf[TIDE_ERR].limit = (uint64_t)max_output;
    j->hold_in = hold;
  }
  return j;
}

/* The userdata of a job that never ran: unpinned, and the failure pushed. */
static int unstarted(lua_State *L, tide_job *j, int err,
                     const tide_job_fail *why) {
  tide_job_unstarted(j);
  luaL_unref(L, LUA_REGISTRYINDEX, j->obj.ref);
  j->obj.ref = LUA_NOREF;
  return tide_pusherr(L, err, why->what, why->name);
}

int tide_job_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int opts = lua_istable(L, 2) ? 2 : 0;
  int top = lua_gettop(L);
  while (top > 2 && lua_isnil(L, top)) /* none: tide's own environ */
    top--;
  int bad = tide_spawn_env_check(L, 3, top);
  if (bad) return luaL_argerror(L, bad, "'NAME=value' strings expected");
  lua_Integer argc = (lua_Integer)lua_rawlen(L, 1);
  luaL_argcheck(L, argc > 0, 1, "empty argv");
  const char **argv =
      lua_newuserdatauv(L, (size_t)(argc + 1) * sizeof *argv, 0);
  for (lua_Integer i = 0; i < argc; i++) {
    /* Only strings: the table keeps them alive after the pop. */
    if (lua_rawgeti(L, 1, i + 1) != LUA_TSTRING)
      return luaL_argerror(L, 1, "argv items must be strings");
    argv[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  argv[argc] = NULL;
  tide_job_opts o;
  int envidx;
  tide_job *j = new_job(L, opts, &o, &envidx);
  o.argv = argv;

  char **envp = NULL;
  tide_job_fail why;
  int err = ENOMEM;
  if ((!envidx && top < 3) ||
      (envp = tide_spawn_env(L, envidx, 3, top)) != NULL) {
    o.envp = envp;
    err = tide_job_start(j, &o, &why);
  } else {
    why.what = why.name = NULL;
  }
  if (err == 0) return 1;
  return unstarted(L, j, err, &why);
}

/*
 * core.virtual([opts]) -> job | nil, message, errname: a job that runs
 * elsewhere (on a tide worker: lua/tide/backend/worker.lua) but is read,
 * printed, teed and waited for like a local one.  It takes core.spawn's
 * output options; Lua gives it the bytes (job:feed) and the end
 * (job:settle), and completes it itself: no process, no handle.
 */
int tide_job_virtual_new(lua_State *L) {
  int opts = lua_istable(L, 1) ? 1 : 0;
  tide_job_opts o;
  int envidx;
  tide_job *j = new_job(L, opts, &o, &envidx);
  luaL_unref(L, LUA_REGISTRYINDEX, j->obj.ref); /* Lua completes it */
  j->obj.ref = LUA_NOREF;
  tide_job_fail why;
  int err = tide_job_virtual(j, &o, &why);
  if (err == 0) return 1;
  return unstarted(L, j, err, &why);
}

static tide_job *checkvirtual(lua_State *L) {
  tide_job *j = checkjob(L);
  if (!j->virt) luaL_argerror(L, 1, "not a virtual job");
  return j;
}

/* job:feed(stream, bytes): what the job wrote there, where it goes (kept,
 * teed, watched, or straight to tide's own stdout or stderr). */
static int job_feed(lua_State *L) {
  tide_job *j = checkvirtual(L);
  int k = streamarg(L, 2);
  size_t n;
  const char *p = luaL_checklstring(L, 3, &n);
  if (j->finished) return luaL_error(L, "job has ended");
  tide_job_feed(j, k, p, n);
  return 0;
}

/* job:settle(code, signal, started, ended, user, sys, maxrss): how the job
 * ended (code, or nil and a signal name), when (core.now()'s clock) and
 * its resource usage. */
static int job_settle(lua_State *L) {
  tide_job *j = checkvirtual(L);
  int status;
  if (lua_isnoneornil(L, 2)) {
    int sig = tide_signum(luaL_checkstring(L, 3));
    status = sig > 0 ? sig : SIGKILL; /* W-encoded: a signal */
  } else {
    status = ((int)luaL_checkinteger(L, 2) & 0xff) << 8;
  }
  double t0 = luaL_checknumber(L, 4), t1 = luaL_checknumber(L, 5);
  double ut = luaL_optnumber(L, 6, 0), st = luaL_optnumber(L, 7, 0);
  struct rusage ru;
  memset(&ru, 0, sizeof ru);
  ru.ru_utime.tv_sec = (time_t)ut;
  ru.ru_utime.tv_usec = (suseconds_t)((ut - (double)(time_t)ut) * 1e6);
  ru.ru_stime.tv_sec = (time_t)st;
  ru.ru_stime.tv_usec = (suseconds_t)((st - (double)(time_t)st) * 1e6);
  ru.ru_maxrss = (long)luaL_optinteger(L, 8, 0);
  tide_job_settle(j, status, (uint64_t)(t0 * 1e9), (uint64_t)(t1 * 1e9), &ru);
  return 0;
}

/* job:send(bytes) -> true | nil, message, errname: more input on the
 * stdin that hold_stdin keeps open (a worker's requests). */
static int job_send(lua_State *L) {
  tide_job *j = checkjob(L);
  size_t n;
  const char *p = luaL_checklstring(L, 2, &n);
  int err = tide_job_send(j, p, n);
  if (err == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  return tide_pusherr(L, err, "send", NULL);
}

/* job:take(stream [, final]) -> every byte of a watched stream read so far
 * (with final also after the job ended), unsplit: a stream that carries
 * frames, not lines. */
static int job_take(lua_State *L) {
  tide_job *j;
  int k;
  tide_lines *pd = checklines(L, &j, &k);
  size_t end = tide_lines_end(pd, j->max_line, 1, 1);
  lua_pushlstring(L, pd->data ? pd->data + pd->start : "", end - pd->start);
  tide_job_consume(j, k, end);
  return 1;
}

void tide_job_register(lua_State *L) {
  static const luaL_Reg methods[] = {{"result", job_result},
                                     {"pid", job_pid},
                                     {"usage", job_usage},
                                     {"output", job_output},
                                     {"write", job_write},
                                     {"release", job_release},
                                     {"clear", job_clear},
                                     {"keep", job_keep},
                                     {"omitted", job_omitted},
                                     {"tee_error", job_tee_error},
                                     {"spill_error", job_spill_error},
                                     {"flush", job_flush},
                                     {"hold", job_hold},
                                     {"lines", job_lines},
                                     {"kill", job_kill},
                                     {"terminate", job_terminate},
                                     {"hangup", job_hangup},
                                     {"store", job_store},
                                     {"feed", job_feed},
                                     {"settle", job_settle},
                                     {"send", job_send},
                                     {"take", job_take},
                                     {NULL, NULL}};
  tide_obj_class(L, JOB_MT, methods, job_gc);
}
