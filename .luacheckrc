std = "lua54"
max_line_length = 120
files["tests/"] = { std = "+busted" }
files["examples/"] = { read_globals = {
  "pool", "shell", "tide",
  -- the sweep library (lua/tide/sweep.lua)
  "range", "product", "grid", "zip", "lines", "glob", "map", "filter", "take", "chain",
  "enumerate", "collect", "sample", "uniform", "loguniform", "choice", "random_grid",
  "latin_hypercube", "fmt", "argv", "quote",
} }
