-- sh.lua: how /bin/sh reads a word.  One quoting rule for every place
-- that writes commands (shell.lua's cmd strings, templates, the job log).
local M = {}

-- Quotes s as one /bin/sh word, only when needed.
function M.quote(s)
  if s ~= "" and not s:find("[^%w_%./,:=+@%%^-]") then
    return s
  end
  return "'" .. s:gsub("'", [['\'']]) .. "'"
end

return M
