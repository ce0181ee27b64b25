-- remote.lua: the small program that runs a job at the far end of ssh or
-- srun, so that the job behaves there as it does under local tide.
--
-- A launcher (the ssh or srun client) loses what a local job has:
--  * its exit status: ssh exits 255 both when the connection fails and when
--    the remote command was killed by a signal (OpenSSH ignores the
--    "exit-signal" message), and srun folds a signal into 128+n;
--  * its death: killing the local client does not kill the remote command,
--    which runs on until it next writes to a closed pipe.
-- The wrapper (Perl, which GNU parallel also requires remotely: it is in
-- every Debian as perl-base) fixes both.  It runs the command in a process
-- group of its own, like a local job, feeds it its input, and keeps reading
-- its own stdin, which tide holds open (core.spawn's hold_stdin): end of file
-- there means stop (tide's job:hangup on a timeout or a halt) or that the
-- launcher is gone (Ctrl-C, tide killed), and the whole remote group gets
-- SIGTERM, then SIGKILL after the grace, as a local job would.
-- Exit codes 0-254 pass through; a signal, an exit code of 255 or a job
-- stopped on end of file is written to a status file that tide reads
-- afterwards, only in those rare cases, and the wrapper exits 255.  The
-- status says "hangup" when the wrapper stopped the job: if tide did not
-- ask for that, the connection was lost.  No byte of the job's output is
-- touched.
--
-- Under srun the wrapper always writes the status and exits 0, because
-- srun prints "error: task 0: Exited with exit code 3" into the job's
-- stderr for any other end; it also writes JOBID.STEPID to STATUS.id, for
-- scancel.
--
-- Arguments: the command (for /bin/sh -c), the directory ("" for none), the
-- status file ("TMP/..." = under $TMPDIR or /tmp), the grace in seconds, the
-- number of input bytes that come first on stdin, "1" under srun (else
-- ""), then NAME=value to set or NAME alone to unset.
--
-- Status files are created, never opened if they exist and never through
-- a symlink (O_EXCL|O_NOFOLLOW, mode 0600), and their names carry 128
-- random bits from the kernel, not from math.random (which the script may
-- have seeded): another user of a shared /tmp can neither guess nor plant
-- them.
local core = require("tide.core")
local quote = require("tide.util").quote

local M = {}

-- Kept on one line: it travels with every job.
local WRAPPER = table.concat({
  [[use Fcntl;sub cr{sysopen$_[0],$_[1],O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW,0600}]],
  [[my($c,$d,$s,$g,$n,$a,@e)=@ARGV;$s=~s{^TMP/}{($ENV{TMPDIR}||"/tmp")."/"}e;]],
  [[if($a&&cr my$f,"$s.id"){print$f "$ENV{SLURM_JOB_ID}.$ENV{SLURM_STEP_ID}";close$f}]],
  [[for(@e){my($k,$v)=split/=/,$_,2;if(defined$v){$ENV{$k}=$v}else{delete$ENV{$k}}}]],
  [[my($r,$w);pipe($r,$w)if$n;my$p=fork;]],
  [[if(!defined$p){print STDERR "tide: cannot start $c: fork: $!\n";exit 126}]],
  [[if(!$p){setpgrp(0,0);if($n){open STDIN,"<&",$r}else{open STDIN,"<","/dev/null"}]],
  [[if(length$d&&!chdir$d){print STDERR "tide: cannot change directory to '$d': $!\n";exit 127}]],
  [[exec"/bin/sh","-c",$c;print STDERR "tide: /bin/sh: $!\n";exit 127}]],
  [[$SIG{$_}=sub{kill$_[0],-$p}for qw(TERM INT HUP);pipe(my$gr,my$gw);my$q=fork;]],
  [[if(!$q){close$gr;$SIG{PIPE}="IGNORE";]],
  [[while($n>0){my$b;my$k=sysread STDIN,$b,$n<65536?$n:65536;last if!$k;$n-=$k;]],
  [[while(length$b){my$m=syswrite$w,$b;last if!$m;substr($b,0,$m)=""}}close$w if$w;]],
  [[1 while sysread STDIN,my$b,4096;syswrite$gw,"x";]],
  [[kill"TERM",-$p;select(undef,undef,undef,$g);kill"KILL",-$p;exit 0}]],
  [[close$w if$w;close$gw;waitpid$p,0;my$t=$?;kill"KILL",-$p;kill"KILL",$q;waitpid$q,0;]],
  [[my$h=sysread($gr,my$x,1)?" hangup":"";]],
  [[if($a||$h||($t&127)||$t>>8==255){]],
  [[if(cr my$f,$s){print$f(($t&127)?"signal ".($t&127):"exit ".($t>>8),$h)}exit($a?0:255)}]],
  [[exit$t>>8]],
})

local counter = 0

-- A status file name unique to this attempt, relative to the remote
-- temporary directory ("TMP/") or to dir when given.
function M.status_name(dir)
  counter = counter + 1
  -- random: several tides, and other users, may share the remote directory
  local base = ("tide-%s-%d.status"):format(core.nonce(), counter)
  return dir and (dir .. "/" .. base) or ("TMP/" .. base)
end

-- The words of the wrapper command running cmd with spec's cwd, env and
-- stdin (whose bytes the client sends first on the held stdin); status:
-- the status file; grace: the kill grace; slurm: under srun.
function M.words(cmd, spec, status, grace, slurm)
  local w = {
    "perl", "-e", WRAPPER, cmd, spec and spec.cwd or "", status, tostring(grace),
    tostring(spec and spec.stdin and #spec.stdin or 0), slurm and "1" or "",
  }
  if spec and spec.env then
    local names = {}
    for k in pairs(spec.env) do
      names[#names + 1] = k
    end
    table.sort(names)
    for _, k in ipairs(names) do
      local v = spec.env[k]
      w[#w + 1] = v == false and k or (k .. "=" .. tostring(v))
    end
  end
  return w
end

-- The same as one string for a remote shell.
function M.command(cmd, spec, status, grace)
  local w = M.words(cmd, spec, status, grace)
  for i, s in ipairs(w) do
    w[i] = quote(s)
  end
  return "exec " .. table.concat(w, " ")
end

-- The spawn options of the local client (ssh, srun) of a job with spec:
-- its cwd and env are the wrapper's, on the far end, and its stdin is held
-- open (see above).
function M.client_spec(spec)
  local s = {}
  for k, v in pairs(spec or {}) do
    s[k] = v
  end
  s.cwd, s.env, s.hold_stdin = nil, nil, true
  return s
end

-- What a status file says: code, signal, whether the wrapper stopped the
-- job on end of file; nil if it says nothing usable.
function M.decode(text)
  if not text then
    return nil
  end
  local hangup = text:find(" hangup", 1, true) ~= nil
  local n = text:match("^signal (%d+)")
  if n then
    return nil, core.signame(tonumber(n)) or ("SIG" .. n), hangup
  end
  local code = text:match("^exit (%d+)")
  if code then
    return math.tointeger(tonumber(code)), nil, hangup
  end
end

return M
