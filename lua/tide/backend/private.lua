-- private.lua: directories for files no other user may touch or plant: the
-- ssh ControlMaster sockets and the Slurm status files.
--
-- A directory is made by mkdtemp(3): a name nobody can guess (not from
-- math.random, which the script may have seeded) and mode 0700, and it is
-- new, so nobody made it first.  Its parent is checked too: owned by this
-- user or root, and writable by no one else unless it is sticky (/tmp),
-- since whoever may write there may rename the directory away and put
-- another in its place.
local core = require("tide.core")

local M = {}

-- Why base's owner and mode make it unsafe, or nil; uid: this user.
local function unsafe(base, uid)
  local _, _, mode, owner = core.stat(base)
  if not mode then
    return "it does not exist"
  elseif owner ~= uid and owner ~= 0 then
    return ("it belongs to another user (uid %d)"):format(owner)
  elseif mode & 18 ~= 0 and mode & 512 == 0 then -- 022 without 01000
    return ("others may write to it (mode %o) and it is not sticky"):format(mode)
  end
end

-- A new private directory base/<prefix>XXXXXX; raises naming what it is
-- for when it cannot be made or base is not safe.
function M.make(base, prefix, what)
  local d, err = core.mkdtemp(("%s/%sXXXXXX"):format(base, prefix))
  if not d then
    error(("cannot create a directory for %s in %s: %s"):format(what, base, err), 0)
  end
  local _, _, mode, uid = core.stat(d)
  local why = mode ~= 448 and ("it has mode %o, not 700"):format(mode) or unsafe(base, uid) -- 448 = 0700
  if why then
    os.remove(d)
    error(("will not keep %s in %s: %s"):format(what, base, why), 0)
  end
  return d
end

return M
