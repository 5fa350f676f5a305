// The live stream of the selected cluster (GET /api/clusters/{c}/stream, server-sent
// events). Read with fetch rather than EventSource so that the token goes in the
// Authorization header, never in a URL. It reconnects by itself (1 s, doubling up to
// 15 s; at once after the server's "renew"), and the header says whether the page is live
// or stale, and since when.
"use strict";

const live = {
  ctrl: null,          // AbortController of the running stream
  cluster: null,       // the cluster it follows
  connected: false,
  lastMessage: 0,      // Date.now() of the last event received
  heartbeatMs: 5000,
  backoff: 1000,
  retryTimer: null,
  handlers: {},        // event name -> function(data)
  watchdog: null,
};

function liveOn(name, fn) { live.handlers[name] = fn; }

// liveFollow follows a cluster's stream (another cluster's stream is closed).
function liveFollow(cluster, token) {
  if (live.cluster === cluster && live.ctrl) return;
  liveStop();
  live.cluster = cluster;
  live.token = token;
  live.backoff = 1000;
  liveConnect();
  if (!live.watchdog) live.watchdog = setInterval(liveCheck, 1000);
}

function liveStop() {
  clearTimeout(live.retryTimer);
  if (live.ctrl) live.ctrl.abort();
  live.ctrl = null;
  live.connected = false;
  live.cluster = null;
}

function liveStatus(text, cls) {
  if (cls === "stale") live.lastStale = Date.now(); // when the page last said it was stale
  const n = document.getElementById("live");
  if (!n) return;
  n.textContent = text;
  n.className = "live " + cls;
}

// liveCheck runs every second: a stream silent for three heartbeats is dropped and
// reconnected; the header tells the state.
function liveCheck() {
  if (!live.cluster) { liveStatus("", "off"); return; }
  const age = live.lastMessage ? Math.round((Date.now() - live.lastMessage) / 1000) : null;
  if (live.connected && Date.now() - live.lastMessage > 3 * live.heartbeatMs) {
    if (live.ctrl) live.ctrl.abort(); // the reconnect follows from the aborted read
    live.connected = false;
  }
  if (live.connected) liveStatus("live", "ok");
  else liveStatus("stale" + (age !== null ? ": last update " + age + " s ago" : "") + ", reconnecting…", "stale");
}

async function liveConnect() {
  const cluster = live.cluster, ctrl = new AbortController();
  live.ctrl = ctrl;
  let renew = false;
  try {
    const res = await fetch("/api/clusters/" + encodeURIComponent(cluster) + "/stream", {
      headers: { Authorization: "Bearer " + live.token, Accept: "text/event-stream" }, signal: ctrl.signal, cache: "no-store" });
    if (res.status === 401) { if (live.handlers.unauthorized) live.handlers.unauthorized(); return; }
    if (!res.ok || !res.body) throw new Error(res.status + " " + res.statusText);
    const reader = res.body.getReader(), dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const ev = liveParse(block);
        if (!ev) continue;
        live.lastMessage = Date.now();
        if (!live.connected) { live.connected = true; live.backoff = 1000; liveCheck(); }
        if (ev.name === "hello" && ev.data.heartbeatMs) live.heartbeatMs = ev.data.heartbeatMs;
        if (ev.name === "bye" && ev.data.reason === "renew") renew = true;
        const h = live.handlers[ev.name];
        if (h) { try { h(ev.data); } catch (err) { console.error("live " + ev.name, err); } }
      }
    }
  } catch (err) {
    if (ctrl.signal.aborted && live.ctrl !== ctrl) return; // stopped or replaced on purpose
  }
  if (live.ctrl !== ctrl) return;
  live.connected = false;
  liveCheck();
  const wait = renew ? 0 : live.backoff;
  live.backoff = Math.min(live.backoff * 2, 15000);
  live.retryTimer = setTimeout(() => { if (live.cluster === cluster && live.ctrl === ctrl) liveConnect(); }, wait);
}

// liveParse reads one event block: "event: name" and "data: json" lines.
function liveParse(block) {
  let name = "message", data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data += line.slice(5).replace(/^ /, "");
  }
  if (!data) return null;
  try { return { name, data: JSON.parse(data) }; } catch { return null; }
}
