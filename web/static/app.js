// replication-manager-pro UI: plain JavaScript against the REST API, no build step.
// The selected cluster's state comes from its live stream (live.js); the other tabs
// (panels.js) fetch what they show when they open, and every few seconds while open.
"use strict";

const state = { token: sessionStorage.getItem("rmp-token"), user: sessionStorage.getItem("rmp-user"),
  cluster: null, timer: null, refreshMs: 4000, servers: [], events: [], plans: [], tab: "overview" };

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...kids) => {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") n.className = v; else if (k.startsWith("on")) n.addEventListener(k.slice(2), v); else n.setAttribute(k, v);
  }
  for (const k of kids) n.append(k instanceof Node ? k : document.createTextNode(k ?? ""));
  return n;
};

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const res = await fetch(path, Object.assign({}, opts, { headers }));
  if (res.status === 401) { logout(); throw new Error("session expired: log in again"); }
  const text = await res.text();
  if (!res.ok) throw new Error(text.trim() || res.statusText);
  try { return text ? JSON.parse(text) : null; } catch { return text; }
}

function show(view) {
  $("login-view").classList.toggle("hidden", view !== "login");
  $("app-view").classList.toggle("hidden", view !== "app");
  $("logout").classList.toggle("hidden", view !== "app");
  $("who").textContent = view === "app" ? state.user : "";
}

function logout() {
  state.token = null;
  sessionStorage.removeItem("rmp-token");
  clearInterval(state.timer);
  liveStop();
  show("login");
}

$("logout").addEventListener("click", logout);

$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("login-error").textContent = "";
  const username = $("login-user").value, password = $("login-password").value;
  try {
    const r = await fetch("/api/login", { method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ username, password }) });
    const text = await r.text();
    if (!r.ok) throw new Error(text.trim() || r.statusText);
    state.token = JSON.parse(text).token;
    state.user = username;
    sessionStorage.setItem("rmp-token", state.token);
    sessionStorage.setItem("rmp-user", username);
    $("login-password").value = "";
    start();
  } catch (err) {
    $("login-error").textContent = err.message;
  }
});

// The stream's events.
liveOn("unauthorized", logout);
liveOn("cluster", (c) => { if (c.name === state.cluster) renderCluster(c); });
liveOn("servers", (l) => renderServers(l || []));
liveOn("alerts", (a) => renderAlerts(a || {}));
liveOn("events", (l) => {
  state.events.push(...(l || []));
  if (state.events.length > 200) state.events.splice(0, state.events.length - 200);
  renderEvents(state.events);
});
liveOn("trend", trendReset);
liveOn("trend-add", trendAdd);
liveOn("plans", (l) => { state.plans = l || []; if (state.tab === "plans") renderPlans(); renderEvents(state.events); });
liveOn("clusters", renderNav);

async function start() {
  show("app");
  await loadClusters();
  // The other tabs' data, refreshed while they show (the overview is live).
  clearInterval(state.timer);
  state.timer = setInterval(() => { if (["proxies", "databases", "managers"].includes(state.tab)) loadTab(); }, Math.max(state.refreshMs, 2000));
}

function renderNav(list) {
  const nav = $("clusters");
  nav.replaceChildren();
  for (const c of list || []) {
    const ok = c.ok !== undefined ? c.ok : c.isFailable && !c.isDown;
    nav.append(el("a", { href: "#" + encodeURIComponent(c.name), "data-cluster": c.name, class: c.name === state.cluster ? "active" : "",
      onclick: (e) => { e.preventDefault(); select(c.name); } },
      el("span", { class: "dot" + (ok ? "" : " bad"), title: ok ? "failable" : "not failable or down" }), c.name));
  }
}

async function loadClusters() {
  const list = await api("/api/clusters");
  renderNav(list);
  const [wanted, tab] = decodeURIComponent(location.hash.slice(1)).split("/");
  const names = (list || []).map((c) => c.name);
  if (names.length) await select(names.includes(wanted) ? wanted : (names.includes(state.cluster) ? state.cluster : names[0]), tab);
}

async function select(name, tab) {
  if (name !== state.cluster) {
    state.servers = []; state.events = []; state.plans = []; state.settings = null; state.focusPlan = null;
    renderEvents([]);
    trendReset({ servers: [], samples: [] });
  }
  state.cluster = name;
  for (const a of $("clusters").querySelectorAll("a")) a.classList.toggle("active", a.dataset.cluster === name);
  liveFollow(name, state.token);
  showTab(tab || state.tab);
}

const base = () => "/api/clusters/" + encodeURIComponent(state.cluster);

// refresh reads the overview once (after an action; the stream keeps it up to date).
async function refresh() {
  if (!state.cluster || !state.token) return;
  try {
    const [cluster, servers, alerts] = await Promise.all([api(base()), api(base() + "/topology/servers"), api(base() + "/topology/alerts")]);
    renderCluster(cluster);
    renderServers(servers || []);
    renderAlerts(alerts || {});
  } catch (err) {
    $("action-status").textContent = err.message;
  }
}

async function loadDatabases() {
  // Tenant databases (grant db-tenants; a cluster without a master answers 503).
  try { renderDatabases(await api(base() + "/databases") || []); } catch (err) { renderDatabases([], err.message); }
}

async function loadManagers() {
  try { renderManagers(await api("/api/managers")); } catch (err) { renderManagers(null, err.message); }
}

// The managers sharing the clusters through etcd, and which leads what (docs/ha.md).
function renderManagers(m, error) {
  const tbody = $("managers").querySelector("tbody");
  tbody.replaceChildren();
  if (!m) {
    tbody.append(el("tr", {}, el("td", { colspan: 4 }, "managers unknown: " + (error || ""))));
    return;
  }
  if (!m.ha) {
    tbody.append(el("tr", {}, el("td", { colspan: 4 }, "this manager works alone and leads every cluster")));
    return;
  }
  for (const x of m.managers || []) {
    const left = x.leaseRemainingNs ? Math.round(x.leaseRemainingNs / 1e9) + " s" : "-";
    tbody.append(el("tr", { "data-manager": x.name },
      el("td", {}, x.name + (x.self ? " (this one)" : "")), el("td", {}, x.addr),
      el("td", {}, (x.leads || []).join(", ") || "-"), el("td", {}, left)));
  }
  const leader = (m.leaders || {})[state.cluster];
  if (leader === "") tbody.append(el("tr", {}, el("td", { colspan: 4, class: "state st-Failed" }, "no manager leads " + state.cluster + " now: etcd unreachable or without quorum")));
}

// A published URL with its password hidden: the page never shows tenants' passwords.
function hidePassword(u) {
  if (!u) return "-";
  try { const x = new URL(u); if (x.password) x.password = "xxxxx"; return x.href; } catch { return "(unparsable)"; }
}

// withoutPassword is the URL to copy: the tenant knows its password.
function withoutPassword(u) {
  try { const x = new URL(u); x.password = ""; return x.href; } catch { return ""; }
}

async function copyText(text, what) {
  try { await navigator.clipboard.writeText(text); $("action-status").textContent = what + " copied (without the password)"; }
  catch { $("action-status").textContent = what + ": " + text; }
}

function renderDatabases(list, error) {
  const tbody = $("databases").querySelector("tbody");
  tbody.replaceChildren();
  if (error) { tbody.append(el("tr", {}, el("td", { colspan: "9" }, "not available: " + error))); return; }
  if (!list.length) { tbody.append(el("tr", {}, el("td", { colspan: "9" }, "none"))); return; }
  for (const d of list) {
    const p = d.published || {};
    const copy = (u, label) => u ? el("button", { class: "small", onclick: () => copyText(withoutPassword(u), label + " of " + d.reference) }, "Copy") : "";
    tbody.append(el("tr", { "data-reference": d.reference }, el("td", {}, d.reference), el("td", {}, d.database), el("td", {}, d.user),
      el("td", {}, d.collation || d.charset || ""), el("td", {}, d.require_ssl ? "required" : "optional"),
      el("td", {}, d.state + (d.error ? " (" + d.error + ")" : "")),
      el("td", { class: "url" }, hidePassword(p.url), " ", copy(p.url, "IPv6 URL")), el("td", { class: "url" }, hidePassword(p.url_v4), " ", copy(p.url_v4, "IPv4 URL")),
      el("td", {}, el("button", { class: "danger small", onclick: () => dropDatabase(d) }, "Drop"))));
  }
}

async function dropDatabase(d) {
  const ok = await confirmAction({ title: "Drop " + d.reference, ok: "Drop",
    text: "Drop the database " + d.database + " with its data, its user " + d.user + " and its proxy users. This cannot be undone." });
  if (!ok) { $("action-status").textContent = "drop " + d.reference + ": cancelled"; return; }
  $("action-status").textContent = "dropping " + d.reference + "…";
  try { await api(base() + "/databases/" + encodeURIComponent(d.reference), { method: "DELETE" }); $("action-status").textContent = "drop " + d.reference + ": done"; }
  catch (err) { $("action-status").textContent = "drop " + d.reference + ": " + err.message; }
  loadDatabases();
}

$("db-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = { reference: $("db-reference").value.trim(), db_password: $("db-password").value, require_ssl: $("db-ssl").checked };
  if ($("db-charset").value.trim()) body.db_charset = $("db-charset").value.trim();
  $("action-status").textContent = "creating " + body.reference + "…";
  try {
    await api(base() + "/databases", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    $("action-status").textContent = "database " + body.reference + ": created";
    $("db-password").value = "";
    $("db-reference").value = "";
  } catch (err) { $("action-status").textContent = "database " + body.reference + ": " + err.message; }
  loadDatabases();
});

function renderCluster(c) {
  $("cluster-name").textContent = c.name;
  const ms = Number(c && c.config && c.config.httpRefreshInterval);
  if (ms >= 500) state.refreshMs = ms;
  const flags = $("cluster-flags");
  flags.replaceChildren(
    el("span", { class: "flag" }, c.topology || "unknown"),
    el("span", { class: "flag" + (c.isFailable ? "" : " bad") }, c.isFailable ? "failable" : "not failable"),
    el("span", { class: "flag" + (c.isDown ? " bad" : "") }, c.isDown ? "down" : "up"));
}

// Field accessors tolerate both our names and the original's.
const addrOf = (s) => s.url || (s.host + ":" + s.port);
const gtidOf = (s) => s.currentGtid || s.gtidCurrentPos || s.gtidBinlogPos || "";
// The API says read_only as "ON"/"OFF" (as the original does); accept booleans too.
const readOnlyOf = (s) => s.readOnly === true || s.readOnly === "ON";
function replOf(s) { return (s.replications && s.replications[0]) || null; }
function sourceOf(s) {
  const r = replOf(s);
  if (!r) return "";
  if (r.source) return r.source;
  const h = r.masterHost || r.MasterHost || "", p = r.masterPort || r.MasterPort || "";
  return h ? (h.includes(":") && !h.startsWith("[") ? "[" + h + "]" : h) + ":" + p : "";
}
function lagOf(s) {
  const r = replOf(s);
  if (!r) return "";
  const v = r.lag ?? r.secondsBehindMaster;
  if (v === null || v === undefined) return "null";
  return (typeof v === "object" ? (v.Valid ? v.Int64 : "null") : v) + (typeof v === "object" && !v.Valid ? "" : " s");
}

function renderServers(servers) {
  state.servers = servers;
  const tbody = $("servers").querySelector("tbody");
  tbody.replaceChildren();
  const sel = $("switchover-target");
  const prev = sel.value;
  sel.replaceChildren(el("option", { value: "" }, "best replica"));
  for (const s of servers) {
    const maint = s.isMaintenance || s.state === "Maintenance";
    tbody.append(el("tr", { "data-server": addrOf(s) },
      el("td", {}, addrOf(s)),
      el("td", { class: "state st-" + s.state }, s.state),
      el("td", {}, sourceOf(s) || "-"),
      el("td", {}, gtidOf(s) || "-"),
      el("td", {}, lagOf(s) || "-"),
      el("td", {}, readOnlyOf(s) ? "ON" : "OFF"),
      el("td", {}, el("button", { class: "small", onclick: () => maintenance(s, maint) }, maint ? "End maintenance" : "Maintenance"),
        " ", el("button", { class: "small inspect", onclick: () => inspectServer(s) }, "Inspect"))));
    if (s.state !== "Master") sel.append(el("option", { value: addrOf(s) }, addrOf(s)));
  }
  sel.value = [...sel.options].some((o) => o.value === prev) ? prev : "";
  if (state.tab === "overview") drawTopology(servers);
}

// maintenance toggles a server's maintenance; the master's asks first: its writes drain.
async function maintenance(s, inMaintenance) {
  const what = (inMaintenance ? "maintenance off for " : "maintenance on for ") + addrOf(s);
  if (!inMaintenance && s.state === "Master" && !(await confirmAction({ title: "Maintenance of the master", ok: "Maintenance",
    text: "Put the master " + addrOf(s) + " in maintenance: the proxies drain it, so new connections cannot write until maintenance ends or a switchover moves the master." }))) {
    $("action-status").textContent = what + ": cancelled";
    return;
  }
  action(base() + "/servers/" + encodeURIComponent(s.id) + "/actions/maintenance", what);
}

// treeLayout places each server at a depth (its row) and a horizontal slot: leaves take
// consecutive slots, a source sits above the middle of its replicas. Servers in a
// replication cycle, which have no top, are placed from the first of them.
function treeLayout(servers) {
  const byAddr = new Map(servers.map((s) => [addrOf(s), s]));
  const kids = new Map(servers.map((s) => [addrOf(s), []]));
  const roots = [];
  for (const s of servers) {
    const src = sourceOf(s);
    if (src && byAddr.has(src) && src !== addrOf(s)) kids.get(src).push(s); else roots.push(s);
  }
  roots.sort((a, b) => (b.state === "Master") - (a.state === "Master"));
  const slots = [], seen = new Set();
  let next = 0, depth = 0;
  const walk = (s, d) => {
    if (seen.has(addrOf(s))) return null;
    seen.add(addrOf(s));
    depth = Math.max(depth, d);
    const xs = kids.get(addrOf(s)).map((c) => walk(c, d + 1)).filter((x) => x !== null);
    const x = xs.length ? (xs[0] + xs[xs.length - 1]) / 2 : next++;
    slots.push({ s, d, x });
    return x;
  };
  roots.forEach((r) => walk(r, 0));
  servers.forEach((s) => walk(s, 0));
  return { slots, width: next, depth };
}

function drawTopology(servers) {
  const svg = $("topology");
  const avail = svg.clientWidth || 800, boxW = 190, boxH = 64;
  svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  const mk = (tag, attrs) => { const n = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); return n; };
  const defs = mk("defs", {});
  const marker = mk("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse" });
  marker.append(mk("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#9aa3b2" }));
  defs.append(marker);
  svg.append(defs);
  // A tree, one row per depth: each server under its source, a relay's replicas under it.
  const { slots, width, depth } = treeLayout(servers);
  // Drawn at least a box and a gap wide per slot, scaled down to the page (a phone).
  const W = Math.max(avail, (width || 1) * (boxW + 16)), H = 16 + depth * 124 + boxH + 16;
  const rowH = 124, step = W / (width || 1);
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.style.height = Math.round(H * avail / W) + "px";
  const pos = new Map();
  for (const { s, d, x } of slots) pos.set(addrOf(s), { x: step * x + step / 2 - boxW / 2, y: 16 + d * rowH });
  for (const s of servers) {
    const src = sourceOf(s), a = pos.get(src), b = pos.get(addrOf(s));
    if (a && b && a !== b) svg.append(mk("line", { x1: a.x + boxW / 2, y1: a.y + boxH, x2: b.x + boxW / 2, y2: b.y }));
  }
  for (const s of servers) {
    const p = pos.get(addrOf(s));
    const g = mk("g", { class: "node", transform: `translate(${p.x},${p.y})`, "data-server": addrOf(s) });
    g.append(mk("rect", { width: boxW, height: boxH, class: "st-" + s.state }));
    const t1 = mk("text", { x: 10, y: 18, class: "title" }); t1.textContent = addrOf(s);
    const t2 = mk("text", { x: 10, y: 36, class: "st-" + s.state }); t2.textContent = s.state + (s.reachable === false ? "  unreachable" : (readOnlyOf(s) ? "  read_only" : "  writable"));
    const t3 = mk("text", { x: 10, y: 54 }); t3.textContent = "GTID " + (gtidOf(s) || "-") + (replOf(s) ? "  lag " + lagOf(s) : "");
    g.append(t1, t2, t3);
    svg.append(g);
  }
}

function renderAlerts(a) {
  const ul = $("alerts");
  ul.replaceChildren();
  for (const [list, cls] of [[a.errors, "ERROR"], [a.warnings, "WARN"]]) {
    for (const x of list || []) ul.append(el("li", { class: cls }, (x.number || "") + ": " + (x.desc || "")));
  }
  if (!ul.children.length) ul.append(el("li", {}, "none"));
}

function renderEvents(logs) {
  const tbody = $("events").querySelector("tbody");
  tbody.replaceChildren();
  const list = Array.isArray(logs) ? logs.slice(-40).reverse() : [];
  for (const e of list) {
    const change = e.oldState || e.newState ? `${e.oldState || "(new)"} → ${e.newState || "(unknown)"} ` : "";
    const text = e.kind ? `${e.kind}: ${change}${e.message || ""}${e.error ? " (" + e.error + ")" : ""}` : (e.text || JSON.stringify(e));
    const dur = e.durationNs ? (e.durationNs / 1e6).toFixed(1) + " ms" : "";
    const plan = planOfEvent(e);
    const cell = el("td", {}, text);
    if (plan) cell.append(" ", el("a", { href: "#", class: "timeline-link", "data-plan": String(plan.id),
      onclick: (ev) => { ev.preventDefault(); openPlan(plan.id); } }, "timeline"));
    tbody.append(el("tr", {}, el("td", {}, e.time ? new Date(e.time).toLocaleTimeString() : ""), el("td", {}, e.server || ""), cell, el("td", {}, dur)));
  }
}

async function action(path, what, params) {
  $("action-status").textContent = what + "…";
  for (const b of document.querySelectorAll("#cluster button")) b.disabled = true;
  try {
    const body = params ? new URLSearchParams(params) : undefined;
    await api(path, { method: "POST", body, headers: params ? { "Content-Type": "application/x-www-form-urlencoded" } : {} });
    $("action-status").textContent = what + ": done";
  } catch (err) {
    $("action-status").textContent = what + ": " + err.message;
  } finally {
    for (const b of document.querySelectorAll("#cluster button")) b.disabled = false;
    refresh();
  }
}

$("switchover-btn").addEventListener("click", () => {
  const target = $("switchover-target").value;
  const master = state.servers.find((s) => s.state === "Master");
  planned(base() + "/actions/switchover", target ? { prefmaster: target } : null, "Switchover",
    "Move the master role from " + (master ? addrOf(master) : "the master") + " to " + (target || "the best replica") +
    ": writes pause for the switch, the old master becomes a replica.", "switchover" + (target ? " to " + target : ""));
});

$("failover-btn").addEventListener("click", () => {
  const master = state.servers.find((s) => s.state === "Master" || s.state === "Failed" || s.state === "Suspect");
  planned(base() + "/actions/failover", null, "Failover",
    "Replace " + (master ? addrOf(master) : "the master") + " without waiting for it: use switchover when it is alive.", "failover");
});

addEventListener("resize", () => { if (state.tab === "overview") { drawTrend(); drawTopology(state.servers); } });

if (state.token) start(); else show("login");
