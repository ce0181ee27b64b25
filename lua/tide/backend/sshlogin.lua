-- sshlogin.lua: GNU parallel's sshlogin syntax, "4/user@node1", "node2",
-- ":" (this machine) or a whole ssh command ("ssh -p 2222 node3").  Pure
-- parsing, shared by the option checks (run.options) and ssh.lua.
local util = require("tide.util")

local M = {}

-- Parses one sshlogin: its slots (nil: the default) and login; or nil,
-- nil and why it is bad.
function M.parse(s)
  if type(s) ~= "string" then
    return nil, nil, ("a host must be a string, got %s"):format(util.describe(s))
  end
  local n, login = s:match("^%s*(%d+)/(.*)$")
  if n then
    n = math.tointeger(tonumber(n))
    if n < 1 then
      return nil, nil, ("host '%s': the number of slots must be at least 1"):format(s)
    end
  else
    login = s
  end
  login = login:match("^%s*(.-)%s*$")
  if login == "" or login:find("[%z\n\t]") then
    return nil, nil, ("host '%s': empty or malformed login"):format(s)
  end
  return n, login
end

-- The hosts option: a non-empty list of sshlogins, or nil and what was
-- expected.  Comma-separated logins in one string are split, as -S does.
function M.check(v)
  local want = "a list of sshlogins such as {'4/user@node1', 'node2', ':'}"
  if type(v) == "string" then
    local list = {}
    for s in v:gmatch("[^,]+") do
      list[#list + 1] = s
    end
    v = list
  end
  if type(v) ~= "table" or #v == 0 then
    return nil, want
  end
  local list = {}
  for i, s in ipairs(v) do
    local _, login, why = M.parse(s)
    if not login then
      return nil, want .. " (" .. why .. ")"
    end
    list[i] = s
  end
  return list
end

-- The slots of all hosts together when a host without N/ has `each`.
function M.capacity(hosts, each)
  local total = 0
  for _, s in ipairs(hosts) do
    total = total + (M.parse(s) or each)
  end
  return total
end

return M
