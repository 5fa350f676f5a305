// Panels of the cluster page beyond the overview: the confirmation dialog (with the
// plan's dry run), failover timelines, proxies, settings, backups and jobs. Every value
// from the API goes into text nodes (el() in app.js); nothing is parsed as HTML.
"use strict";

// ---- Confirmation dialog ----------------------------------------------------------

// confirmAction shows what an action will do and resolves true when the operator
// confirms. plan is a cluster plan (dry run) or null; refused disables the confirmation.
function confirmAction({ title, text, plan, refused, ok }) {
  const dlg = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  const box = document.getElementById("confirm-plan");
  box.replaceChildren();
  if (plan && plan.steps && plan.steps.length) {
    if (plan.election && plan.election.reason) box.append(el("p", { class: "hint" }, "Election: " + plan.election.reason));
    const ol = el("ol", { class: "plan-steps" });
    for (const s of plan.steps) {
      ol.append(el("li", {}, el("strong", {}, s.kind), s.server && s.server !== ":0" ? " " + s.server : "", s.detail ? " — " + s.detail : ""));
    }
    box.append(el("p", {}, "Dry run: the plan's steps, in order"), ol);
  }
  if (refused) box.append(el("p", { class: "error" }, "Refused: " + refused));
  const okBtn = document.getElementById("confirm-ok");
  okBtn.textContent = ok || "Confirm";
  okBtn.disabled = !!refused;
  return new Promise((resolve) => {
    dlg.returnValue = "";
    dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), { once: true });
    dlg.showModal();
    (refused ? document.getElementById("confirm-cancel") : okBtn).focus();
  });
}

// apiAnswer calls the API and returns {ok, status, body} instead of throwing on refusals
// (a 409 carries the refused plan).
async function apiAnswer(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const res = await fetch(path, Object.assign({}, opts, { headers }));
  if (res.status === 401) { logout(); throw new Error("session expired: log in again"); }
  const text = await res.text();
  let body = text;
  try { body = text ? JSON.parse(text) : null; } catch { /* plain text */ }
  return { ok: res.ok, status: res.status, body };
}

const form = (o) => ({ method: "POST", body: new URLSearchParams(o), headers: { "Content-Type": "application/x-www-form-urlencoded" } });

// planned asks for a plan's dry run, shows it, and runs the action once confirmed.
async function planned(path, params, title, text, what) {
  let plan = null, refused = "";
  try {
    const r = await apiAnswer(path, form(Object.assign({ dryRun: "true" }, params || {})));
    if (r.body && typeof r.body === "object") { plan = r.body.plan; refused = r.ok ? "" : (r.body.error || (plan && plan.refused) || ""); }
    else if (!r.ok) refused = String(r.body || r.status).trim();
  } catch (err) { refused = err.message; }
  if (!(await confirmAction({ title, text, plan, refused, ok: title }))) { setStatus(what + ": cancelled"); return; }
  await action(path, what, params);
}

function setStatus(text) { document.getElementById("action-status").textContent = text; }

// ---- Tabs -------------------------------------------------------------------------

const tabs = ["overview", "plans", "proxies", "databases", "backups", "settings", "managers", "server"];

function showTab(name, focus) {
  if (!tabs.includes(name)) name = "overview";
  state.tab = name;
  for (const t of tabs) {
    document.getElementById("panel-" + t).classList.toggle("hidden", t !== name);
    const b = document.getElementById("tab-" + t);
    b.setAttribute("aria-selected", String(t === name));
    b.tabIndex = t === name ? 0 : -1;
    if (t === name && focus) b.focus();
  }
  if (state.cluster) history.replaceState(null, "", "#" + encodeURIComponent(state.cluster) + (name === "overview" ? "" : "/" + name));
  loadTab();
}

// loadTab fetches what the visible tab shows (the overview and the failovers come from
// the live stream).
function loadTab() {
  switch (state.tab) {
    case "overview": drawTrend(); if (state.servers.length) drawTopology(state.servers); break;
    case "plans": renderPlans(); break;
    case "proxies": loadProxies(); break;
    case "databases": loadDatabases(); break;
    case "backups": loadBackups(); break;
    case "settings": loadSettings(); break;
    case "managers": loadManagers(); break;
    case "server": loadServer(); break;
  }
}

document.getElementById("tabs").addEventListener("click", (e) => {
  const b = e.target.closest("button[data-tab]");
  if (b) showTab(b.dataset.tab);
});
document.getElementById("tabs").addEventListener("keydown", (e) => {
  const i = tabs.indexOf(state.tab);
  if (e.key === "ArrowRight") showTab(tabs[(i + 1) % tabs.length], true);
  else if (e.key === "ArrowLeft") showTab(tabs[(i - 1 + tabs.length) % tabs.length], true);
  else return;
  e.preventDefault();
});

// ---- Failover timelines -----------------------------------------------------------

const fmtMs = (ns) => ns >= 1e9 ? (ns / 1e9).toFixed(2) + " s" : (ns / 1e6).toFixed(1) + " ms";

function renderPlans() {
  const box = document.getElementById("plans");
  const list = state.plans || [];
  box.replaceChildren();
  if (!list.length) { box.append(el("p", {}, "No plan ran on this cluster since the manager started.")); return; }
  for (const p of list) {
    const total = Math.max(p.durationNs || 0, ...p.steps.map((s) => s.offsetNs + s.durationNs), 1);
    const result = p.running ? "running" : (p.error ? (p.rolledBack ? "rolled back: " : "failed: ") + p.error : (p.promoted ? "done, new master promoted" : "done"));
    const card = el("article", { class: "timeline" + (p.id === state.focusPlan ? " focus" : ""), id: "plan-" + p.id, "data-plan": String(p.id), tabindex: "-1" },
      el("h4", {}, p.kind + " ", el("span", { class: "hint" }, "asked by " + p.origin + (p.resumed ? ", resumed" : "") + " at " + new Date(p.start).toLocaleTimeString())),
      el("p", { class: p.error ? "error" : "" }, result + " in " + fmtMs(p.durationNs)),
      el("p", { class: "hint" }, p.message || ""));
    const rows = el("div", { class: "gantt", role: "list" });
    for (const s of p.steps) {
      const bar = el("div", { class: "bar" + (s.error ? " failed" : ""), title: s.message });
      bar.style.left = (100 * s.offsetNs / total).toFixed(2) + "%";
      bar.style.width = Math.max(100 * s.durationNs / total, 0.4).toFixed(2) + "%";
      rows.append(el("div", { class: "gantt-row", role: "listitem", "data-step": s.step },
        el("span", { class: "gantt-label" }, s.step + (s.server ? " " + s.server : "")),
        el("span", { class: "gantt-track" }, bar),
        el("span", { class: "gantt-dur" }, fmtMs(s.durationNs) + (s.error ? " ✗" : ""))));
    }
    if (!p.steps.length) rows.append(el("p", { class: "hint" }, "no step finished yet"));
    card.append(rows);
    box.append(card);
  }
  if (state.focusPlan) {
    const n = document.getElementById("plan-" + state.focusPlan);
    if (n) { n.scrollIntoView({ block: "nearest" }); n.focus({ preventScroll: true }); }
  }
}

// planOfEvent finds the timeline an event of the log belongs to.
function planOfEvent(e) {
  if (!e.kind || !state.plans) return null;
  const kind = e.kind.endsWith("-step") ? e.kind.slice(0, -5) : e.kind;
  const t = Date.parse(e.time);
  for (const p of state.plans) {
    if (p.kind !== kind) continue;
    const start = Date.parse(p.start), end = p.running ? Infinity : Date.parse(p.end);
    if (t >= start - 50 && t <= end + 50) return p;
  }
  return null;
}

function openPlan(id) {
  state.focusPlan = id;
  showTab("plans");
}

// ---- Proxies ----------------------------------------------------------------------

async function loadProxies() {
  const box = document.getElementById("proxies");
  let routing, proxies = null;
  try { routing = await api(base() + "/routing"); } catch (err) { box.replaceChildren(el("p", { class: "error" }, "routing not available: " + err.message)); return; }
  try { proxies = await api(base() + "/topology/proxies"); } catch { /* not wired: the routers' views suffice */ }
  box.replaceChildren();
  if (!routing.routers.length) { box.append(el("p", {}, "This cluster has no proxy: clients reach the servers directly.")); return; }
  for (const r of routing.routers) {
    const px = (proxies || []).find((p) => r.name.includes(p.host) && r.name.includes(":" + p.port));
    const card = el("article", { class: "proxy", "data-router": r.name },
      el("h4", {}, r.name, px ? el("span", { class: "state st-" + (px.state === "ProxyRunning" ? "Master" : "Failed") }, "  " + px.state) : ""),
      el("p", { class: r.error ? "error" : "hint" }, r.error ? r.error : "read " + (r.readAt && !r.readAt.startsWith("0001") ? new Date(r.readAt).toLocaleTimeString() : "never") +
        (r.writerReads ? "; the master takes reads too" : "")));
    const groups = r.groups || [];
    const head = el("tr", {}, el("th", {}, "Server"), ...groups.map((g) => el("th", {}, g.role + " (" + g.name + ")")), el("th", {}, "Intent"), el("th", {}, "Why"));
    const tbody = el("tbody");
    const servers = new Set([...(r.intent || []).map((i) => i.server), ...(r.backends || []).map((b) => b.server)]);
    for (const s of servers) {
      const it = (r.intent || []).find((i) => i.server === s);
      tbody.append(el("tr", { "data-server": s }, el("td", {}, s + (it && it.master ? " (master)" : "")),
        ...groups.map((g) => { const b = (r.backends || []).find((x) => x.group === g.name && x.server === s); return el("td", { class: b ? "pstate ps-" + b.state : "" }, b ? b.state : "–"); }),
        el("td", { class: "route rt-" + (it ? it.route : "") }, it ? it.route + (it.maintenance ? " (maintenance)" : "") : "–"),
        el("td", { class: "hint" }, it ? it.reason : "")));
    }
    card.append(el("div", { class: "scroll" }, el("table", { class: "routing" }, el("thead", {}, head), tbody)));
    box.append(card);
  }
}

// ---- Settings ---------------------------------------------------------------------

async function loadSettings() {
  const tbody = document.getElementById("settings").querySelector("tbody");
  let v;
  try { v = await api(base() + "/settings/keys"); } catch (err) {
    tbody.replaceChildren(el("tr", {}, el("td", { colspan: "4" }, "settings not available: " + err.message)));
    return;
  }
  state.settings = v;
  document.getElementById("settings-save").textContent = v.saveConfig ? "Changes are saved (monitoring-save-config) in " + v.savedFile + "; a key the files set wins at a restart."
    : "monitoring-save-config is off: changes last until a restart or a reload.";
  renderSettings();
}

function renderSettings() {
  const v = state.settings;
  if (!v) return;
  const tbody = document.getElementById("settings").querySelector("tbody");
  const q = document.getElementById("settings-filter").value.trim().toLowerCase();
  const changed = document.getElementById("settings-changed").checked;
  tbody.replaceChildren();
  for (const k of v.keys) {
    if (q && !k.key.includes(q) && !k.help.toLowerCase().includes(q)) continue;
    if (changed && k.source === "default") continue;
    let value;
    if (!k.editable) value = el("code", {}, k.secret ? (k.value ? "(set, hidden)" : "(empty)") : k.value);
    else if (k.kind === "bool") {
      value = el("input", { type: "checkbox", "aria-label": k.key, "data-key": k.key });
      value.checked = k.value === "true";
      value.addEventListener("change", () => changeSetting(k, String(value.checked)));
    } else {
      const input = el("input", { value: k.value, "aria-label": k.key, "data-key": k.key, size: "18" });
      const set = el("button", { type: "submit" }, "Set");
      value = el("form", { class: "setting" }, input, set);
      value.addEventListener("submit", (e) => { e.preventDefault(); changeSetting(k, input.value); });
    }
    let src = k.source;
    if (k.source === "file") src += " " + (k.section ? "[" + k.section + "]" : "");
    const srcCell = el("td", { class: "source src-" + k.source, title: k.file ? k.file : "" }, src);
    if (k.restart !== undefined && k.restart !== "") srcCell.append(el("div", { class: "hint" }, "a restart gives " + k.restart));
    tbody.append(el("tr", { "data-key": k.key },
      el("td", {}, el("span", { class: "key" }, k.key), el("div", { class: "hint" }, k.help + (k.range ? " (" + k.range + ")" : "") + (k.noEffect ? " — accepted, no effect yet" : ""))),
      el("td", {}, value), srcCell, el("td", {}, el("code", {}, k.default))));
  }
}

async function changeSetting(k, value) {
  if (value === "") { setStatus(k.key + ": an empty value cannot be set from here"); return; }
  let path;
  if (k.kind === "bool") {
    if (value === k.value) return;
    path = base() + "/settings/actions/switch/" + encodeURIComponent(k.key);
  } else path = base() + "/settings/actions/set/" + encodeURIComponent(k.key) + "/" + encodeURIComponent(value);
  setStatus("setting " + k.key + "…");
  try {
    await api(path, { method: "POST" });
    setStatus(k.key + " = " + value + ": done" + (state.settings && state.settings.saveConfig ? " (saved)" : " (not saved: monitoring-save-config is off)"));
  } catch (err) { setStatus(k.key + ": " + err.message); }
  loadSettings();
}

document.getElementById("settings-filter").addEventListener("input", renderSettings);
document.getElementById("settings-changed").addEventListener("change", renderSettings);

// ---- Backups and jobs -------------------------------------------------------------

const fmtSize = (b) => b >= 1 << 30 ? (b / (1 << 30)).toFixed(1) + " GiB" : b >= 1 << 20 ? (b / (1 << 20)).toFixed(1) + " MiB" : (b / 1024).toFixed(1) + " KiB";
const when = (t) => t && !String(t).startsWith("0001") ? new Date(t).toLocaleString() : "";

async function loadBackups() {
  const sel = document.getElementById("backup-server"), prev = sel.value;
  sel.replaceChildren(...state.servers.map((s) => el("option", { value: s.id }, addrOf(s) + (s.state ? " (" + s.state + ")" : ""))));
  if ([...sel.options].some((o) => o.value === prev)) sel.value = prev;
  const jobs = document.getElementById("jobs").querySelector("tbody"), backups = document.getElementById("backups").querySelector("tbody");
  let active = false;
  try {
    const l = await api(base() + "/jobs") || [];
    jobs.replaceChildren();
    if (!l.length) jobs.append(el("tr", {}, el("td", { colspan: "8" }, "none")));
    for (const j of l) {
      active = active || j.state === "queued" || j.state === "running";
      jobs.append(el("tr", { "data-job": String(j.id), class: j.id === state.followJob ? "focus" : "" }, el("td", {}, "#" + j.id), el("td", {}, j.server), el("td", {}, j.kind),
        el("td", { class: "job-state js-" + j.state }, j.state), el("td", {}, j.origin || ""), el("td", {}, when(j.created)),
        el("td", {}, j.durationNs ? fmtMs(j.durationNs) : ""), el("td", { class: j.error ? "error" : "" }, j.error || j.result || j.backup || "")));
    }
  } catch (err) { jobs.replaceChildren(el("tr", {}, el("td", { colspan: "8" }, "jobs not available: " + err.message))); }
  try {
    const l = await api(base() + "/backups") || [];
    backups.replaceChildren();
    if (!l.length) backups.append(el("tr", {}, el("td", { colspan: "8" }, "none")));
    for (const b of l) backups.append(el("tr", { "data-backup": b.id }, el("td", {}, b.id), el("td", {}, b.server), el("td", {}, b.kind), el("td", {}, b.tool),
      el("td", {}, fmtSize(b.size || 0)), el("td", {}, b.gtid || ""), el("td", {}, when(b.start)), el("td", {}, b.durationNs ? fmtMs(b.durationNs) : "")));
  } catch (err) { backups.replaceChildren(el("tr", {}, el("td", { colspan: "8" }, "backups not available: " + err.message))); }
  // Follow running jobs closely while the tab shows them.
  clearTimeout(state.jobTimer);
  if (active && state.tab === "backups") state.jobTimer = setTimeout(loadBackups, 1000);
}

async function serverJob(action, what) {
  const id = document.getElementById("backup-server").value;
  if (!id) return;
  setStatus(what + "…");
  try {
    const j = await api(base() + "/servers/" + encodeURIComponent(id) + "/actions/" + action, { method: "POST" });
    state.followJob = j && j.id;
    setStatus(what + ": job #" + (j && j.id) + " " + (j && j.state));
  } catch (err) { setStatus(what + ": " + err.message); }
  loadBackups();
}

document.getElementById("backup-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const kind = document.getElementById("backup-kind").value;
  serverJob("backup-" + kind, kind + " backup of " + document.getElementById("backup-server").selectedOptions[0].textContent);
});

document.getElementById("reseed-start").addEventListener("click", async () => {
  const kind = document.getElementById("backup-kind").value, name = document.getElementById("backup-server").selectedOptions[0];
  if (!name) return;
  const ok = await confirmAction({ title: "Reseed", text: "Reseed " + name.textContent + " from the latest " + kind +
    " backup: its data is replaced by the backup's, then it replicates again from the master." });
  if (ok) serverJob("reseed-" + kind + "backup", "reseed of " + name.textContent);
});

// ---- One server, live: processlist, slow queries by shape, error log --------------------

// inspectServer opens the server tab on one server (the Inspect button of its row).
function inspectServer(s) {
  state.inspect = s.id;
  showTab("server");
}

// apiError is the message of a failed call: the "error" of a JSON body, else the text.
function apiError(err) {
  try { return JSON.parse(err.message).error || err.message; } catch { return err.message; }
}

// fillTable replaces a table's rows with what load returns (rows of cells), or one row
// saying why there are none.
async function fillTable(id, cols, load) {
  const tbody = document.getElementById(id).querySelector("tbody");
  try {
    const rows = await load();
    tbody.replaceChildren(...(rows.length ? rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c == null ? "" : String(c)))))
      : [el("tr", {}, el("td", { colspan: String(cols) }, "none"))]));
  } catch (err) {
    tbody.replaceChildren(el("tr", {}, el("td", { colspan: String(cols), class: "error" }, apiError(err))));
  }
}

async function loadServer() {
  const sel = document.getElementById("inspect-server");
  const prev = state.inspect || sel.value;
  sel.replaceChildren(...state.servers.map((s) => el("option", { value: s.id }, addrOf(s) + (s.state ? " (" + s.state + ")" : ""))));
  if ([...sel.options].some((o) => o.value === prev)) sel.value = prev;
  state.inspect = sel.value;
  if (!sel.value) return;
  const srv = base() + "/servers/" + encodeURIComponent(sel.value);
  await Promise.all([
    fillTable("processlist", 8, async () => (await api(srv + "/processlist") || [])
      .filter((p) => p.command !== "Daemon")
      .map((p) => [p.id, p.user, p.host, p.db, p.command, p.time, p.state, p.info])),
    fillTable("slow-digests", 6, async () => (await api(srv + "/digest-statements-slow") || []).slice(0, 50)
      .map((d) => [d.count, d.totalTime.toFixed(3), d.maxTime.toFixed(3), d.rowsExamined, d.db, d.digestText])),
    fillTable("errorlog", 3, async () => (await api(srv + "/errorlog") || []).slice(0, 100)
      .map((e) => [e.time, e.level, e.text])),
  ]);
}

document.getElementById("inspect-form").addEventListener("submit", (e) => { e.preventDefault(); loadServer(); });
document.getElementById("inspect-server").addEventListener("change", (e) => { state.inspect = e.target.value; loadServer(); });
