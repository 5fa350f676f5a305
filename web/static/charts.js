// Charts of the monitor's short history (GET /api/clusters/{c}/history, pushed by the
// live stream): replication lag per replica, commits per second on the master, probe
// latency per server. Plain SVG built node by node; no library.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const svgEl = (tag, attrs = {}) => {
  const n = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  return n;
};

// Series colours, distinguishable in light and dark mode.
const PALETTE = ["#2f7de1", "#e0792b", "#2a9d5c", "#c2417a", "#8a63d2", "#b59a12", "#1d9fb0", "#7a7f87"];

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten.
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function fmtNum(v, unit) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  const s = Math.abs(v) >= 100 ? Math.round(v).toString() : (Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2).replace(/\.?0+$/, ""));
  return s + (unit ? " " + unit : "");
}

// lineChart draws series [{name, color, points: [[tMs, value|null], ...]}] into the svg
// (its width taken from the page) and fills the legend element: per series its last and
// highest value, also as data-now and data-max attributes.
function lineChart(svg, legend, series, opts) {
  const W = Math.max(svg.clientWidth || 0, 280), H = opts.height || 150;
  const L = 46, R = 10, T = 10, B = 22;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.style.height = H + "px";
  svg.replaceChildren();
  let tMax = opts.now || 0, tMin = Infinity, vMax = 0;
  for (const s of series) for (const [t, v] of s.points) {
    tMax = Math.max(tMax, t); tMin = Math.min(tMin, t);
    if (v !== null && v > vMax) vMax = v;
  }
  const span = Math.max(60000, tMax - (Number.isFinite(tMin) ? tMin : tMax));
  const t0 = tMax - span, yMax = niceMax(Math.max(vMax, opts.minMax || 0));
  const x = (t) => L + (W - L - R) * (t - t0) / span;
  const y = (v) => T + (H - T - B) * (1 - v / yMax);
  for (const v of [0, yMax / 2, yMax]) {
    svg.append(svgEl("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    const lab = svgEl("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" });
    lab.textContent = fmtNum(v, "");
    svg.append(lab);
  }
  const mins = span / 60000;
  for (const [frac, label] of [[0, "-" + fmtNum(mins, "min")], [0.5, "-" + fmtNum(mins / 2, "min")], [1, "now"]]) {
    const lab = svgEl("text", { x: L + (W - L - R) * frac, y: H - 6, "text-anchor": frac === 0 ? "start" : (frac === 1 ? "end" : "middle"), class: "axis" });
    lab.textContent = label;
    svg.append(lab);
  }
  const unit = opts.unit || "";
  legend.replaceChildren();
  series.forEach((s, i) => {
    const color = s.color || PALETTE[i % PALETTE.length];
    let d = "", pen = false, last = null, max = null;
    for (const [t, v] of s.points) {
      if (v === null || v === undefined) { pen = false; continue; }
      d += (pen ? " L " : " M ") + x(t).toFixed(1) + " " + y(v).toFixed(1);
      pen = true; last = v; max = max === null ? v : Math.max(max, v);
    }
    if (d) svg.append(svgEl("path", { d, stroke: color, class: "series", "data-series": s.name }));
    const item = document.createElement("span");
    item.className = "legend-item";
    item.dataset.series = s.name;
    item.dataset.now = last === null ? "" : String(last);
    item.dataset.max = max === null ? "" : String(max);
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = color;
    item.append(sw, document.createTextNode(`${s.name}  now ${fmtNum(last, unit)}  max ${fmtNum(max, unit)}`));
    legend.append(item);
  });
  if (!series.length) {
    const none = svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "axis" });
    none.textContent = opts.empty || "no data yet";
    svg.append(none);
  }
}

// Trend keeps the samples the stream sent (at most its capacity) and draws the charts.
const trend = { servers: [], samples: [], capacity: 600 };

function trendReset(t) {
  trend.servers = t.servers || [];
  trend.samples = (t.samples || []).slice(-(t.capacity || 600));
  trend.capacity = t.capacity || 600;
  drawTrend();
}

function trendAdd(t) {
  if ((t.servers || []).join() !== trend.servers.join()) { trendReset(t); return; }
  trend.samples.push(...(t.samples || []));
  if (trend.samples.length > trend.capacity) trend.samples.splice(0, trend.samples.length - trend.capacity);
  drawTrend();
}

function drawTrend() {
  const host = document.getElementById("charts");
  if (!host || host.closest(".hidden")) return; // drawn when its tab shows
  const S = trend.samples, names = trend.servers;
  const last = S.length ? S[S.length - 1] : null;
  const now = last ? last.t : Date.now();
  // Lag: every server that reported a lag in the window (the replicas).
  const lag = [], lat = [];
  names.forEach((name, i) => {
    const pts = S.map((s) => [s.t, s.lag[i]]);
    if (pts.some((p) => p[1] !== null)) lag.push({ name, points: pts, color: PALETTE[i % PALETTE.length] });
    lat.push({ name, points: S.map((s) => [s.t, s.latencyMs[i]]), color: PALETTE[i % PALETTE.length] });
  });
  const masterName = last && last.master >= 0 ? names[last.master] : "master";
  const commits = S.length ? [{ name: masterName, points: S.map((s) => [s.t, s.commits]), color: PALETTE[2] }] : [];
  lineChart(document.getElementById("chart-lag"), document.getElementById("legend-lag"), lag, { unit: "s", now, minMax: 1, empty: "no replica reports a lag" });
  lineChart(document.getElementById("chart-commits"), document.getElementById("legend-commits"), commits, { unit: "/s", now, minMax: 1 });
  lineChart(document.getElementById("chart-latency"), document.getElementById("legend-latency"), lat, { unit: "ms", now, minMax: 1 });
}
