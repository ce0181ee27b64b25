-- examples/compress.lua    run with:  tide examples/compress.lua ['pattern']
-- gzips every file matching a glob, 4 at a time, keeping the originals,
-- then prints what each one came to.  Without a pattern it first makes a
-- few files in a temporary directory, named to break a naive shell loop:
-- a space, a quote, a leading dash.
local pattern = arg[1]
if not pattern then
  local dir = shell({ "mktemp", "-d" }, { capture = true }).stdout:gsub("\n$", "")
  local demo = {
    { name = "numbers.log", cmd = "seq 1 {n}", n = 20000 },
    { name = "it's a log.log", cmd = "yes {line} | head -n {n}", line = "GET /index.html 200", n = 5000 },
    { name = "-dashed.log", cmd = "seq -w 1 7 {n}", n = 30000 },
  }
  for _, d in ipairs(demo) do
    d.path = dir .. "/" .. d.name
    shell(fmt(d.cmd .. " > {path}", d), { check = true })
  end
  pattern = dir .. "/*.log"
end

local function size(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local n = f:seek("end")
  f:close()
  return n
end

-- glob: sorted matches, none is an empty list.  argv: no shell, so no
-- quoting to get wrong; "--" keeps "-dashed.log" from reading as options.
local files = glob(pattern)
local results = pool(4):map(function(path)
  local r = shell(argv("gzip -9 --keep --force -- {}", path))
  return { path = path, ok = r.ok, before = size(path), after = size(path .. ".gz") }
end, files)

local before, after, failed = 0, 0, 0
for _, r in ipairs(results) do
  if r.ok then
    before, after = before + r.before, after + r.after
    print(("%9d -> %8d  %5.1f%%  %s"):format(r.before, r.after, 100 * r.after / r.before, r.path))
  else
    failed = failed + 1
    print(("%9s    %8s  %6s  %s"):format("", "failed", "", r.path))
  end
end
if #results == 0 then
  print("no file matches " .. pattern)
else
  print(("%d files: %d -> %d bytes (%.1f%%), %d failed"):format(#results, before, after,
    before > 0 and 100 * after / before or 0, failed))
end
