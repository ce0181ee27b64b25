-- luacheck: no max line length
-- report_page.lua: the HTML, CSS and JavaScript of the run report around
-- its data (report.lua writes the data between head() and tail()).
--
-- What the page promises, for tests and for anyone who scripts it (the
-- DOM contract, once its script has run):
--   #timeline   one element .job per job drawn, with data-status (ok,
--               failed, timeout, stopped, resumed) and data-k (the job's
--               index in the data); queue waits are separate .wait
--               elements; #running is the line of running jobs over time
--   #results    one row .item per item currently rendered (the table
--               draws only the rows in view, so 100,000 rows scroll as
--               fast as 100); #row-count says "N of M items", with
--               data-shown (rows that pass the status filter) and
--               data-total (all rows); headers sort, #status-filter filters
--   #scatter    a metric against a parameter (a canvas), when the items
--               have a numeric parameter and a numeric metric
--   #failures   one element .failure per failed job, with its command, its
--               exit code or signal and the tail of its stderr
-- Nothing in it refers to anything outside the file: no network.
local M = {}

local CSS = [[
:root { --ok: #2e9d5b; --failed: #d23c3c; --timeout: #e08a1e; --stopped: #8a8f98; --resumed: #9bc7e8;
  --fg: #1d2127; --muted: #5e6670; --line: #d9dde2; --bg: #fbfbfc; }
* { box-sizing: border-box; }
body { margin: 0; padding: 18px 24px 40px; font: 13px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--fg); background: var(--bg); }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 15px; margin: 26px 0 8px; }
code, pre, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 12px; }
.cmd { color: var(--muted); word-break: break-all; margin-bottom: 10px; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 8px; }
.fact { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 7px 10px; }
.fact b { display: block; font-size: 15px; }
.fact span { color: var(--muted); font-size: 11px; text-transform: uppercase; letter-spacing: .04em; }
.legend { display: flex; gap: 14px; flex-wrap: wrap; color: var(--muted); margin: 4px 0 8px; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px;
  vertical-align: -1px; }
.controls { display: flex; gap: 14px; align-items: center; margin-bottom: 6px; color: var(--muted); }
.tl { display: flex; border: 1px solid var(--line); background: #fff; border-radius: 6px; overflow: hidden; }
.tl-labels { flex: none; width: 130px; border-right: 1px solid var(--line); }
.tl-labels div { height: 18px; line-height: 18px; padding: 0 6px; font-size: 11px; color: var(--muted);
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.tl-labels .run-label { height: 70px; line-height: 70px; border-top: 1px solid var(--line); }
.tl-wrap { flex: 1; overflow-x: auto; overflow-y: hidden; }
.tl-inner { position: relative; min-width: 100%; }
.lanes { position: relative; }
.job, .wait { position: absolute; height: 14px; margin-top: 2px; border-radius: 2px; min-width: 1px; }
.wait { background: repeating-linear-gradient(45deg, #c9ced6 0 3px, transparent 3px 6px); opacity: .8; }
.s-ok { background: var(--ok); } .s-failed { background: var(--failed); } .s-timeout { background: var(--timeout); }
.s-stopped { background: var(--stopped); } .s-resumed { background: var(--resumed); }
.job:hover { outline: 2px solid #000; z-index: 2; }
#running { display: block; width: 100%; height: 70px; border-top: 1px solid var(--line); }
#running polyline { fill: rgba(46, 157, 91, .15); stroke: var(--ok); stroke-width: 1.5;
  vector-effect: non-scaling-stroke; }
.axis { display: flex; justify-content: space-between; color: var(--muted); font-size: 11px; padding: 2px 4px; }
#tip { position: fixed; pointer-events: none; background: #1d2127; color: #fff; padding: 6px 9px;
  border-radius: 5px; font-size: 12px; max-width: 520px; display: none; z-index: 10; white-space: pre-wrap; }
.table { border: 1px solid var(--line); border-radius: 6px; background: #fff; overflow-x: auto; }
.thead, .item { display: grid; min-width: 100%; }
.thead div { font-weight: 600; padding: 5px 8px; border-bottom: 1px solid var(--line); cursor: pointer;
  white-space: nowrap; user-select: none; }
.thead div.sorted::after { content: " \25B2"; font-size: 9px; }
.thead div.sorted.desc::after { content: " \25BC"; }
.tbody { position: relative; height: 440px; overflow-y: auto; }
.item { position: absolute; left: 0; right: 0; height: 22px; }
.item:nth-child(even) { background: #f6f7f9; }
.item div { padding: 2px 8px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.st { display: inline-block; padding: 0 6px; border-radius: 8px; color: #fff; font-size: 11px; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
select { font: inherit; }
#scatter { background: #fff; border: 1px solid var(--line); border-radius: 6px; max-width: 100%; }
.failure { background: #fff; border: 1px solid var(--line); border-left: 4px solid var(--failed);
  border-radius: 4px; padding: 6px 10px; margin-bottom: 8px; }
.failure pre { margin: 6px 0 0; max-height: 180px; overflow: auto; background: #f6f7f9; padding: 6px; }
.note { color: var(--muted); }
]]

local JS = [==[
"use strict";
(function () {
  var D = JSON.parse(document.getElementById("tide-data").textContent);
  var M = D.meta, J = D.jobs;
  var STATUSES = ["ok", "failed", "timeout", "stopped", "resumed", "error"];
  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function secs(s) {
    if (s == null || isNaN(s)) return "";
    if (s < 1) return (s * 1000).toFixed(s < 0.01 ? 2 : 0) + " ms";
    if (s < 60) return s.toFixed(2) + " s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + "m" + String(Math.round(s - 60 * m)).padStart(2, "0") + "s";
    return Math.floor(m / 60) + "h" + String(m % 60).padStart(2, "0") + "m";
  }
  function when(t) { return t ? new Date(t * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC") : ""; }
  function kib(k) {
    if (!k) return "0";
    return k >= 1048576 ? (k / 1048576).toFixed(1) + " GiB" : k >= 1024 ? (k / 1024).toFixed(1) + " MiB" : k + " KiB";
  }
  function natural(a, b) { return String(a).localeCompare(String(b), undefined, {numeric: true}); }
  function why(j) {
    if (j[5] === "timeout") return "timed out";
    if (j[7] != null) return "killed by " + j[7];
    if (j[6] != null) return "exit " + j[6];
    return j[5];
  }

  // Header
  document.title = "tide: " + M.title;
  $("command").textContent = M.command;
  var c = M.counts || {};
  var wall = Math.max(0, (M.end || 0) - (M.start || 0));
  var facts = [
    ["jobs", String(M.jobs)], ["ok", c.ok || 0], ["failed", (c.failed || 0) + (c.timeout || 0)],
    ["stopped", c.stopped || 0], ["skipped by resume", c.resumed || 0], ["wall time", secs(wall)],
    ["total CPU", secs(M.cpu)], ["peak RSS", kib(M.rss)], ["start", when(M.start)], ["end", when(M.end)],
    ["hosts", (M.hosts || []).map(function (h) { return h === ":" ? "this machine" : h; }).join(", ") || "-"]
  ];
  facts.forEach(function (f) {
    var d = el("div", "fact");
    d.appendChild(el("span", null, f[0]));
    d.appendChild(el("b", null, String(f[1])));
    $("facts").appendChild(d);
  });

  // Timeline: a lane per slot (per host and slot for remote jobs)
  var laneKeys = {}, lanes = [];
  J.forEach(function (j) {
    var key = (j[1] && j[1] !== ":" ? j[1] + " / " : "") + "slot " + j[0];
    if (!(key in laneKeys)) { laneKeys[key] = 0; lanes.push(key); }
  });
  lanes.sort(natural);
  lanes.forEach(function (k, i) { laneKeys[k] = i; });
  var t0 = M.start || 0, t1 = M.end || t0;
  J.forEach(function (j) {
    if (j[2] - j[4] < t0) t0 = j[2] - j[4];
    if (j[2] + j[3] > t1) t1 = j[2] + j[3];
  });
  var span = Math.max(t1 - t0, 1e-6), LH = 18;
  var labels = $("tl-labels"), inner = $("tl-inner"), box = $("lanes");
  lanes.forEach(function (k) { labels.appendChild(el("div", null, k)); });
  labels.appendChild(el("div", "run-label", "running"));
  box.style.height = (lanes.length * LH) + "px";
  var laneOf = new Int32Array(J.length);
  for (var k = 0; k < J.length; k++) {
    laneOf[k] = laneKeys[(J[k][1] && J[k][1] !== ":" ? J[k][1] + " / " : "") + "slot " + J[k][0]];
  }
  // Up to BARS jobs, a bar each is an element (.job); past that a canvas
  // paints them (as many elements would take seconds to lay out), and the
  // tooltip finds the job under the pointer itself.
  var BARS = 5000, canvasMode = J.length > BARS;
  box.setAttribute("data-mode", canvasMode ? "canvas" : "bars");
  box.setAttribute("data-drawn", String(J.length));
  var colors = getComputedStyle(document.documentElement);
  var paint;
  if (!canvasMode) {
    var frag = document.createDocumentFragment();
    for (k = 0; k < J.length; k++) {
      var j = J[k], top = laneOf[k] * LH;
      if (j[4] > 0) {
        var w = el("div", "wait");
        w.style.cssText = "left:" + ((j[2] - j[4] - t0) / span * 100) + "%;width:" + (j[4] / span * 100) +
          "%;top:" + top + "px";
        frag.appendChild(w);
      }
      var b = el("div", "job s-" + j[5]);
      b.setAttribute("data-status", j[5]);
      b.setAttribute("data-k", k);
      b.style.cssText = "left:" + ((j[2] - t0) / span * 100) + "%;width:" + (j[3] / span * 100) + "%;top:" + top + "px";
      frag.appendChild(b);
    }
    box.appendChild(frag);
  } else {
    var cv = el("canvas");
    cv.id = "timeline-canvas";
    box.appendChild(cv);
    var byLane = lanes.map(function () { return []; });
    for (k = 0; k < J.length; k++) byLane[laneOf[k]].push(k);
    byLane.forEach(function (l) { l.sort(function (a, b) { return J[a][2] - J[b][2]; }); });
    var fill = {};
    STATUSES.forEach(function (s) { fill[s] = colors.getPropertyValue("--" + (s === "error" ? "failed" : s)).trim(); });
    paint = function () {
      var W = Math.min(box.clientWidth || 1000, 32000), H = lanes.length * LH;
      cv.width = W; cv.height = H;
      cv.style.width = W + "px"; cv.style.height = H + "px";
      var g = cv.getContext("2d");
      for (var n = 0; n < J.length; n++) {
        var jj = J[n], x = (jj[2] - t0) / span * W;
        g.fillStyle = fill[jj[5]] || "#888";
        g.fillRect(x, laneOf[n] * LH + 2, Math.max(jj[3] / span * W, 1), LH - 4);
      }
    };
    paint();
    // the job under the pointer: the last one in its lane starting before it
    box.findJob = function (e) {
      var r = cv.getBoundingClientRect(), lane = Math.floor((e.clientY - r.top) / LH);
      var t = t0 + (e.clientX - r.left) / r.width * span, l = byLane[lane];
      if (!l) return null;
      var lo = 0, hi = l.length - 1, best = -1;
      while (lo <= hi) { var mid = (lo + hi) >> 1; if (J[l[mid]][2] <= t) { best = mid; lo = mid + 1; } else hi = mid - 1; }
      if (best < 0) return null;
      var jb = J[l[best]], slack = span / r.width * 2;
      return t <= jb[2] + jb[3] + slack ? l[best] : null;
    };
  }
  $("t-start").textContent = when(t0);
  $("t-end").textContent = when(t1) + " (" + secs(span) + ")";
  $("zoom").addEventListener("input", function () {
    inner.style.width = (this.value * 100) + "%";
    if (paint) paint();
  });

  // Running jobs over time: the most that ran at once within each of B
  // buckets, from the jobs' starts and ends in time order
  var B = 800, peak = new Float64Array(B), most = 0, ev = [];
  J.forEach(function (j) {
    if (j[5] === "resumed") return;
    ev.push([j[2], 1], [j[2] + j[3], -1]);
  });
  ev.sort(function (a, b) { return a[0] - b[0] || a[1] - b[1]; });
  var run = 0, bucket = 0;
  ev.forEach(function (e) {
    var at = Math.min(Math.max(Math.floor((e[0] - t0) / span * B), 0), B - 1);
    for (; bucket < at; bucket++) if (peak[bucket + 1] < run) peak[bucket + 1] = run;
    run += e[1];
    if (run > peak[at]) peak[at] = run;
    if (run > most) most = run;
  });
  var pts = ["0,70"];
  for (var i = 0; i < B; i++) {
    var y = 70 - (most ? peak[i] / most * 62 : 0);
    pts.push(i + "," + y, (i + 1) + "," + y);
  }
  pts.push(B + ",70");
  $("running").setAttribute("viewBox", "0 0 " + B + " 70");
  $("running-line").setAttribute("points", pts.join(" "));
  $("running-max").textContent = "at most " + most + " running";

  // Tooltips
  var tip = $("tip");
  box.addEventListener("mousemove", function (e) {
    var k = box.findJob ? box.findJob(e) : e.target.getAttribute && e.target.getAttribute("data-k");
    if (k == null) { tip.style.display = "none"; return; }
    var j = J[+k];
    tip.textContent = j[12] + "\n" + j[5] + (j[5] === "ok" ? "" : " (" + why(j) + ")") + "  ·  " + secs(j[3]) +
      (j[4] > 0 ? " after " + secs(j[4]) + " queued" : "") + "\nstart " + when(j[2]) + "  ·  CPU " + secs(j[8]) +
      "  ·  RSS " + kib(j[9]) + "  ·  attempt " + j[10] + (j[11] != null ? "  ·  item " + j[11] : "") +
      "\nslot " + j[0] + (j[1] && j[1] !== ":" ? " on " + j[1] : "");
    tip.style.display = "block";
    tip.style.left = Math.min(e.clientX + 14, window.innerWidth - 540) + "px";
    tip.style.top = (e.clientY + 14) + "px";
  });
  box.addEventListener("mouseleave", function () { tip.style.display = "none"; });

  // Results: one row per item (or per job, when no item was recorded)
  var params = [], metrics = [], seenP = {}, seenM = {};
  function plain(v) { return v !== null && typeof v === "object" && !Array.isArray(v); }
  function cell(v) { return v == null ? null : typeof v === "object" ? JSON.stringify(v) : v; }
  var rows = [], maps = {};
  D.items.forEach(function (it) { maps[String(it[0]).split(".")[0]] = true; });
  var manyMaps = Object.keys(maps).length > 1;
  var byItem = {};
  if (D.items.length) {
    D.items.forEach(function (it) {
      var r = {id: manyMaps ? it[0] : +String(it[0]).split(".")[1], p: {}, m: {}, status: it[3], elapsed: it[4],
        cpu: it[5], rss: it[6]};
      if (plain(it[1])) Object.keys(it[1]).forEach(function (n) { r.p[n] = cell(it[1][n]); if (!seenP[n]) { seenP[n] = 1; params.push(n); } });
      else { r.p.item = cell(it[1]); if (!seenP.item) { seenP.item = 1; params.push("item"); } }
      if (plain(it[2])) Object.keys(it[2]).forEach(function (n) { r.m[n] = cell(it[2][n]); if (!seenM[n]) { seenM[n] = 1; metrics.push(n); } });
      else if (it[2] != null) { r.m.value = cell(it[2]); if (!seenM.value) { seenM.value = 1; metrics.push("value"); } }
      byItem[it[0]] = r;
      rows.push(r);
    });
  } else {
    params.push("command");
    J.forEach(function (j, k) {
      rows.push({id: k + 1, p: {command: j[12]}, m: {}, status: j[5], elapsed: j[3], cpu: j[8], rss: j[9]});
    });
  }
  var cols = [{name: "#", get: function (r) { return r.id; }, num: !manyMaps}];
  params.forEach(function (n) { cols.push({name: n, get: function (r) { return r.p[n]; }}); });
  metrics.forEach(function (n) { cols.push({name: n, get: function (r) { return r.m[n]; }}); });
  cols.push({name: "status", get: function (r) { return r.status; }},
    {name: "elapsed", get: function (r) { return r.elapsed; }, fmt: secs, num: true},
    {name: "CPU", get: function (r) { return r.cpu; }, fmt: secs, num: true},
    {name: "RSS", get: function (r) { return r.rss; }, fmt: kib, num: true});
  cols.forEach(function (c) {
    if (c.num == null) {
      var any = false;
      c.num = rows.every(function (r) { var v = c.get(r); if (v == null) return true; any = true; return typeof v === "number"; }) && any;
    }
  });
  var RH = 22, shown = rows.slice(), sortCol = -1, desc = false;
  var head = $("thead"), body = $("tbody"), spacer = $("tspacer");
  var template = cols.map(function (c) { return c.num ? "minmax(70px, max-content)" : "minmax(90px, 1fr)"; }).join(" ");
  head.style.gridTemplateColumns = template;
  cols.forEach(function (c, i) {
    var h = el("div", c.num ? "num" : null, c.name);
    h.addEventListener("click", function () {
      desc = sortCol === i ? !desc : false;
      sortCol = i;
      Array.prototype.forEach.call(head.children, function (x, n) {
        x.classList.toggle("sorted", n === i); x.classList.toggle("desc", n === i && desc);
      });
      sortRows();
      draw(true);
    });
    head.appendChild(h);
  });
  function sortRows() {
    if (sortCol < 0) return;
    var c = cols[sortCol], s = desc ? -1 : 1;
    shown.sort(function (a, b) {
      var x = c.get(a), y = c.get(b);
      if (x == null) return y == null ? 0 : 1;
      if (y == null) return -1;
      return (typeof x === "number" && typeof y === "number" ? x - y : natural(x, y)) * s;
    });
  }
  function filter() {
    var f = $("status-filter").value;
    shown = f === "all" ? rows.slice() : rows.filter(function (r) { return r.status === f; });
    sortRows();
    var rc = $("row-count");
    rc.textContent = shown.length + " of " + rows.length + " items";
    rc.setAttribute("data-shown", shown.length);
    rc.setAttribute("data-total", rows.length);
    draw(true);
  }
  var drawn = [-1, -1];
  function draw(force) {
    var first = Math.max(0, Math.floor(body.scrollTop / RH) - 10);
    var last = Math.min(shown.length, first + Math.ceil(body.clientHeight / RH) + 30);
    if (!force && first === drawn[0] && last === drawn[1]) return;
    drawn = [first, last];
    spacer.style.height = (shown.length * RH) + "px";
    Array.prototype.slice.call(body.querySelectorAll(".item")).forEach(function (x) { x.remove(); });
    var f = document.createDocumentFragment();
    for (var n = first; n < last; n++) {
      var r = shown[n], row = el("div", "item");
      row.style.top = (n * RH) + "px";
      row.style.gridTemplateColumns = template;
      cols.forEach(function (c) {
        var v = c.get(r), d = el("div", c.num ? "num" : null);
        if (c.name === "status") {
          var s = el("span", "st s-" + v, v);
          d.appendChild(s);
        } else {
          d.textContent = v == null ? "" : c.fmt ? c.fmt(v) : String(v);
          d.title = d.textContent;
        }
        row.appendChild(d);
      });
      f.appendChild(row);
    }
    body.appendChild(f);
  }
  var sel = $("status-filter");
  ["all"].concat(STATUSES).forEach(function (s) {
    var n = s === "all" ? rows.length : rows.filter(function (r) { return r.status === s; }).length;
    if (s === "all" || n > 0) { var o = el("option", null, s + " (" + n + ")"); o.value = s; sel.appendChild(o); }
  });
  sel.addEventListener("change", filter);
  body.addEventListener("scroll", function () { draw(false); });
  filter();

  // Scatter: a metric against a parameter
  var numP = cols.filter(function (c) { return c.num && (params.indexOf(c.name) >= 0); });
  var numM = cols.filter(function (c) { return c.num && (metrics.indexOf(c.name) >= 0); });
  if (numP.length && numM.length && D.items.length) {
    $("scatter-section").hidden = false;
    var xs = $("scatter-x"), ys = $("scatter-y");
    numP.concat(numM).forEach(function (c) { var o = el("option", null, c.name); o.value = c.name; xs.appendChild(o.cloneNode(true)); ys.appendChild(o); });
    xs.value = numP[0].name; ys.value = numM[0].name;
    var plot = function () {
      var cx = cols.filter(function (c) { return c.name === xs.value; })[0], cy = cols.filter(function (c) { return c.name === ys.value; })[0];
      var cv = $("scatter"), g = cv.getContext("2d"), W = cv.width, H = cv.height, P = 46;
      g.clearRect(0, 0, W, H);
      var pts = rows.filter(function (r) { return typeof cx.get(r) === "number" && typeof cy.get(r) === "number"; });
      if (!pts.length) return;
      var x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
      pts.forEach(function (r) { var x = cx.get(r), y = cy.get(r); x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); });
      var logx = x0 > 0 && x1 / x0 > 50;
      function sx(x) { var a = logx ? Math.log(x) : x, lo = logx ? Math.log(x0) : x0, hi = logx ? Math.log(x1) : x1; return P + (hi > lo ? (a - lo) / (hi - lo) : .5) * (W - 2 * P); }
      function sy(y) { return H - P + (y1 > y0 ? -(y - y0) / (y1 - y0) : -.5) * (H - 2 * P); }
      g.strokeStyle = "#d9dde2"; g.fillStyle = "#5e6670"; g.font = "11px sans-serif";
      g.beginPath(); g.moveTo(P, P / 2); g.lineTo(P, H - P); g.lineTo(W - P / 2, H - P); g.stroke();
      g.fillText(String(+x0.toPrecision(4)), P, H - P + 16); g.fillText(String(+x1.toPrecision(4)), W - P - 30, H - P + 16);
      g.fillText(String(+y1.toPrecision(4)), 4, P); g.fillText(String(+y0.toPrecision(4)), 4, H - P);
      g.fillText(cx.name + (logx ? " (log)" : ""), W / 2 - 20, H - 10); g.fillText(cy.name, 4, 14);
      pts.forEach(function (r) {
        g.fillStyle = colors.getPropertyValue("--" + (r.status === "ok" ? "ok" : r.status === "resumed" ? "resumed" : "failed")) || "#2e9d5b";
        g.globalAlpha = pts.length > 2000 ? .35 : .8;
        g.beginPath(); g.arc(sx(cx.get(r)), sy(cy.get(r)), 3, 0, 6.283); g.fill();
      });
      g.globalAlpha = 1;
    };
    xs.addEventListener("change", plot); ys.addEventListener("change", plot);
    plot();
  }

  // Failures
  var fl = $("failure-list"), TAILS = 500;
  D.failures.forEach(function (f, n) {
    var j = J[f[0]];
    if (!j) return;
    var d = el("div", "failure");
    d.setAttribute("data-k", f[0]);
    d.appendChild(el("div", "mono", j[12]));
    d.appendChild(el("div", "note", why(j) + " after " + secs(j[3]) + (j[11] != null ? ", item " + j[11] : "") +
      (j[1] && j[1] !== ":" ? ", on " + j[1] : "")));
    if (f[1] && n < TAILS) d.appendChild(el("pre", null, f[1]));
    fl.appendChild(d);
  });
  $("failure-count").textContent = D.failures.length ? D.failures.length + " failed" +
    (D.failures.length > TAILS ? " (stderr shown for the first " + TAILS + ")" : "") : "none";
  document.body.setAttribute("data-ready", "1");
  document.body.setAttribute("data-ms", String(Math.round(performance.now())));
})();
]==]

-- The page up to its data.
function M.head(title)
  local esc = tostring(title):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" })
  return table.concat({
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    "<title>tide: ", esc, "</title>\n<style>", CSS, "</style></head>\n<body>\n",
    '<header><h1>tide run report</h1><div class="cmd mono" id="command"></div><div class="facts" id="facts"></div>',
    "</header>\n",
    '<section id="timeline"><h2>Timeline</h2>',
    '<div class="legend"><span><i class="s-ok"></i>ok</span><span><i class="s-failed"></i>failed</span>',
    '<span><i class="s-timeout"></i>timed out</span><span><i class="s-stopped"></i>stopped</span>',
    '<span><i class="s-resumed"></i>skipped by resume</span><span><i class="wait"></i>queued</span></div>',
    '<div class="controls"><label>zoom <input id="zoom" type="range" min="1" max="60" value="1"></label>',
    '<span id="running-max"></span></div>',
    '<div class="tl"><div class="tl-labels" id="tl-labels"></div><div class="tl-wrap"><div class="tl-inner" id="tl-inner">',
    '<div class="lanes" id="lanes"></div>',
    '<svg id="running" preserveAspectRatio="none"><polyline id="running-line" points=""></polyline></svg>',
    '</div></div></div><div class="axis"><span id="t-start"></span><span id="t-end"></span></div></section>\n',
    '<section id="results"><h2>Results</h2><div class="controls"><label>status <select id="status-filter">',
    '</select></label><span id="row-count"></span></div>',
    '<div class="table"><div class="thead" id="thead"></div><div class="tbody" id="tbody">',
    '<div id="tspacer"></div></div></div></section>\n',
    '<section id="scatter-section" hidden><h2>Metric against parameter</h2><div class="controls">',
    '<label>x <select id="scatter-x"></select></label><label>y <select id="scatter-y"></select></label></div>',
    '<canvas id="scatter" width="720" height="380"></canvas></section>\n',
    '<section id="failures"><h2>Failures: <span id="failure-count"></span></h2><div id="failure-list"></div></section>\n',
    '<div id="tip"></div>\n',
  })
end

-- The rest of the page, after its data.
function M.tail()
  return "<script>" .. JS .. "</script>\n</body></html>\n"
end

return M
