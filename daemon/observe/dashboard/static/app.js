// interlock dashboard: fetches JSON from the daemon, draws inline SVG, follows server-sent events.
// No framework and no chart library: every section is rebuilt from one string per render.
"use strict";

// The page holds no secret: with actions on, an operator signs in with the install's token
// (dashboard.token in the state directory) and gets a session cookie and a CSRF value.
const ACTIONS = document.querySelector('meta[name="interlock-actions"]').content === "true";
const FAILED = new Set(["failed", "timed_out", "interrupted", "cancelled"]);
const FINISHED = new Set([
  "component_succeeded", "component_unchanged", "component_failed", "component_timed_out",
  "component_cancelled", "component_skipped", "run_finished",
]);
const FEED_MAX = 60;

const state = {
  overview: null, history: null, quality: null, window: "7d", feed: [],
  session: { signedIn: false, csrf: null, label: null },
};
const dash = (window.__dash = { renders: 0, historyRenderMs: null, readyMs: null });

// --- small helpers ---------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

// Long snake_case names may break after an underscore, never mid-word.
function name(value) {
  return esc(value).replaceAll("_", "_<wbr>");
}

function fmtDuration(s) {
  if (s === null || s === undefined) return "–";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m ${Math.round(s % 60)}s` : `${Math.floor(m / 60)}h ${m % 60}m`;
}

function fmtCount(n) {
  if (n === null || n === undefined) return "–";
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(0)}k`;
  return Math.round(n).toLocaleString("en-AU");
}

// Times arrive in the daemon's zone with their offset: show that wall time, not the browser's.
function wall(iso, withDate) {
  if (!iso) return "–";
  const t = iso.slice(11, 19);
  return withDate ? `${iso.slice(0, 10)} ${t}` : t;
}

function relative(iso) {
  if (!iso) return "";
  const diff = (Date.parse(iso) - Date.now()) / 1000;
  const a = Math.abs(diff);
  const text = a < 45 ? `${Math.round(a)} s` : a < 5400 ? `${Math.round(a / 60)} min`
    : a < 129600 ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86400)} d`;
  return diff >= 0 ? `in ${text}` : `${text} ago`;
}

function when(iso, withDate) {
  return iso ? `<time datetime="${esc(iso)}" data-rel>${esc(wall(iso, withDate))}</time>
    <small data-rel-of="${esc(iso)}">${esc(relative(iso))}</small>` : "–";
}

async function getJSON(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function notice(text, bad) {
  const el = $("notice");
  el.textContent = text;
  el.className = bad ? "notice bad" : "notice";
  el.hidden = false;
  clearTimeout(notice.timer);
  notice.timer = setTimeout(() => { el.hidden = true; }, 8000);
}

// --- components ------------------------------------------------------------------------

function card(c) {
  const last = c.last;
  const outcome = last ? last.status : "none";
  const badge = c.state === "idle" ? (outcome === "none" ? "never run" : "idle") : c.state;
  let lastHtml = "<dd>never run</dd>";
  if (last) {
    lastHtml = `<dd><span class="st ${esc(last.status)}">${esc(last.status)}</span>
      ${last.reason ? `<small>(${esc(last.reason)})</small>` : ""} ${when(last.finished_at)}</dd>`;
  }
  const rows = [
    `<dt>last</dt>${lastHtml}`,
    last ? `<dt>took</dt><dd>${esc(fmtDuration(last.duration_s))}${last.attempts > 1
      ? ` <small>${last.attempts} attempts</small>` : ""}</dd>` : "",
    `<dt>records</dt><dd>${esc(fmtCount(c.records))}</dd>`,
    `<dt>success</dt><dd>${when(c.last_success_at, true)}</dd>`,
    `<dt>next due</dt><dd>${c.enabled ? when(c.next_due) : esc(c.disabled_reason || "disabled")}</dd>`,
    `<dt>every</dt><dd>${esc(c.frequency)}${c.dependencies.length
      ? ` <small>after ${esc(c.dependencies.join(", "))}</small>` : ""}</dd>`,
  ].join("");
  const error = last && FAILED.has(last.status) && last.error
    ? `<div class="err" title="${esc(last.error)}">${esc(last.error.split("\n")[0].slice(0, 220))}</div>`
    : "";
  const running = c.state === "running"
    ? `<div class="runs">running in <span class="run">${esc(c.run_id)}</span></div>` : "";
  const buttons = ACTIONS && state.session.signedIn && c.enabled ? `<div class="actions">
      <button type="button" class="primary" data-act="trigger" data-name="${esc(c.component)}"
        ${c.state === "running" || c.paused ? "disabled" : ""}>Run now</button>
      <button type="button" data-act="${c.paused ? "resume" : "pause"}" data-name="${esc(c.component)}">
        ${c.paused ? "Resume" : "Pause"}</button></div>` : "";
  return `<article class="card" data-component="${esc(c.component)}" data-state="${esc(c.state)}"
      data-outcome="${esc(outcome)}">
    <div class="card-head"><b>${name(c.component)}</b><span class="badge ${esc(c.state)}">${esc(badge)}</span></div>
    ${running}<dl class="kv">${rows}</dl>${error}${buttons}</article>`;
}

function renderOverview() {
  const doc = state.overview;
  $("components").innerHTML = doc.components.length
    ? doc.components.map(card).join("") : '<p class="empty">no components configured</p>';
  $("runs").innerHTML = doc.runs.length
    ? doc.runs.map((r) => `run <span class="run">${esc(r.run_id)}</span> in progress: ${
      esc(r.running.join(", ") || "waiting on dependencies")}`).join(" · ")
    : "no run in progress";
  $("asof").textContent = `as of ${wall(doc.now)} ${doc.timezone}`;
  $("mode").textContent = !doc.daemon.actions_enabled ? "read-only"
    : state.session.signedIn ? "actions on" : "sign in to act";
  renderQuota(doc.quota);
}

function renderQuota(q) {
  if (!q) {
    $("quota").innerHTML = '<p class="empty">no quota guard in this daemon</p>';
    return;
  }
  const pct = Math.min(100, q.used_percent);
  const level = q.exhausted ? "bad" : pct >= 80 ? "warn" : "";
  const endpoints = Object.entries(q.endpoints || {});
  const rates = Object.entries(q.rate || {});
  $("quota").innerHTML = `
    <div><span class="big">${esc(fmtCount(q.left))}</span> calls left of ${esc(fmtCount(q.daily_limit))}
      ${q.enabled ? "" : "<small>(not enforced)</small>"}</div>
    <div class="bar ${level}" role="meter" aria-valuemin="0" aria-valuemax="100"
      aria-valuenow="${esc(pct)}"><span id="quota-fill"></span></div>
    <dl class="kv"><dt>used today</dt><dd>${esc(fmtCount(q.used))} (${esc(q.used_percent)}%)</dd>
      <dt>resets</dt><dd>${when(q.reset_at, true)}</dd>
      ${q.warned_at_percent.length ? `<dt>warned at</dt><dd>${esc(q.warned_at_percent.join("%, "))}%</dd>` : ""}
    </dl>
    ${endpoints.length ? `<table><thead><tr><th>endpoint</th><th class="num">calls</th>
      <th class="num">refused</th></tr></thead><tbody>${endpoints.map(([name, e]) => `<tr>
      <td>${esc(name)}${e.priority ? " <small>priority</small>" : ""}</td>
      <td class="num">${esc(fmtCount(e.calls))}</td><td class="num">${esc(e.refused)}</td></tr>`).join("")}
      </tbody></table>` : ""}
    ${rates.map(([family, r]) => `<div><small>rate ${esc(family)}: ${esc(r.available)} of
      ${esc(r.calls)} per ${esc(r.per_seconds)} s available now</small></div>`).join("")}`;
  $("quota-fill").style.width = `${pct}%`; // CSSOM: allowed by the page's CSP
}

// --- charts ----------------------------------------------------------------------------

const W = 300, H = 64, PAD = 4;

// An SVG path through the non-null values; ``bridge`` joins across empty buckets.
function path(values, x, y, bridge) {
  let d = "", pen = false;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined) { pen = pen && bridge; continue; }
    d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
    pen = true;
  }
  return d;
}

function stems(values, x, y) {
  let d = "";
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v !== null && v !== undefined) d += `M${x(i).toFixed(1)},${H - PAD}V${y(v).toFixed(1)}`;
  }
  return d;
}

// One small chart: the mean as a line over a faint area (or as stems when most buckets
// are empty, e.g. a daily component in hourly buckets), the max dashed, and failures as
// red ticks along the bottom whose height is the bucket's failure rate.
function chart(title, labels, avg, max, failures, runs, fmt, bridge) {
  const n = labels.length;
  const present = avg.filter((v) => v !== null && v !== undefined).length;
  const top = Math.max(0, ...(max || avg).map((v) => v ?? 0), ...avg.map((v) => v ?? 0));
  const scale = top > 0 ? top : 1;
  const step = (W - 2 * PAD) / Math.max(1, n - 1);
  const x = (i) => PAD + i * step;
  const y = (v) => H - PAD - (v / scale) * (H - 2 * PAD);
  const sparse = present > 0 && present < n / 3;
  let body = "";
  if (sparse) {
    body = `<path class="stem" d="${stems(avg, x, y)}" vector-effect="non-scaling-stroke"/>`;
  } else if (present) {
    const line = path(avg, x, y, bridge);
    let area = "";
    for (const seg of line.split("M").filter(Boolean)) {
      const pts = seg.split("L");
      const first = pts[0].split(",")[0], last = pts[pts.length - 1].split(",")[0];
      area += `M${first},${H - PAD}L${seg}L${last},${H - PAD}Z`;
    }
    body = `<path class="area" d="${area}"/>${max ? `<path class="max" d="${path(max, x, y, bridge)}"
      vector-effect="non-scaling-stroke"/>` : ""}<path class="avg" d="${line}"
      vector-effect="non-scaling-stroke"/>`;
  }
  let marks = "", hits = "";
  const w = (W - 2 * PAD) / Math.max(1, n);
  for (let i = 0; i < n; i++) {
    if (failures[i]) {
      const h = 2 + 10 * Math.min(1, failures[i] / Math.max(1, runs[i]));
      marks += `<rect class="fail" x="${(x(i) - w * 0.35).toFixed(1)}" y="${(H - h).toFixed(1)}"
        width="${(w * 0.7).toFixed(1)}" height="${h.toFixed(1)}"/>`;
    }
    const tip = `${labels[i]}: ${runs[i]} runs, mean ${fmt(avg[i])}${max ? `, max ${fmt(max[i])}` : ""}${
      failures[i] ? `, ${failures[i]} failed` : ""}`;
    hits += `<rect class="hit" x="${(x(i) - w / 2).toFixed(1)}" y="0" width="${w.toFixed(1)}"
      height="${H}"><title>${esc(tip)}</title></rect>`;
  }
  return `<div class="chart"><div class="cap"><span>${esc(title)}</span><span>${
    present ? `peak ${esc(fmt(top))}` : "no data"}</span></div>
    <svg viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img" aria-label="${esc(title)}">
      ${body}${marks}${hits}</svg>
    <div class="cap"><span>${esc(labels[0] || "")}</span><span>${esc(labels[n - 1] || "")}</span></div></div>`;
}

function renderTrends() {
  const doc = state.history;
  if (!doc) return;
  const started = performance.now();
  const rows = Object.entries(doc.trends).map(([component, windows]) => {
    const s = windows[state.window];
    const sum = s.summary;
    const rate = sum.runs ? `${(100 * (sum.runs - sum.failures) / sum.runs).toFixed(1)}% ok` : "no runs";
    return `<div class="trow" data-trend="${esc(component)}"><div class="tname"><b>${name(component)}</b>
      <span>${esc(fmtCount(sum.runs))} runs · ${esc(rate)}</span>
      <span>mean ${esc(fmtDuration(sum.duration_avg))} · max ${esc(fmtDuration(sum.duration_max))}</span>
      <span>${esc(fmtCount(sum.records_avg))} records per publish</span></div>
      ${chart("duration", s.labels, s.duration_avg, s.duration_max, s.failures, s.runs, fmtDuration,
        false)}
      ${chart("records per publish", s.labels, s.records_avg, null, s.failures, s.runs, fmtCount,
        true)}</div>`;
  });
  $("trends").innerHTML = rows.join("") || '<p class="empty">no components</p>';
  dash.historyRenderMs = performance.now() - started;
}

function renderErrors() {
  const errors = state.history ? state.history.errors : [];
  $("errors").innerHTML = errors.length ? `<table><thead><tr><th>component</th><th>status</th>
    <th>error</th><th class="num">count</th><th>last seen</th><th>first seen</th></tr></thead><tbody>${
    errors.map((e) => `<tr><td>${esc(e.component)}</td><td><span class="st ${esc(e.status)}">${
      esc(e.status)}</span></td><td class="msg" title="${esc(e.example)}">${esc(e.pattern)}</td>
      <td class="num">${esc(fmtCount(e.count))}</td><td>${when(e.last_seen, true)}</td>
      <td>${esc(wall(e.first_seen, true))}</td></tr>`).join("")}</tbody></table>`
    : '<p class="empty">no failures in the last 30 days</p>';
}

// --- quality -----------------------------------------------------------------------------

function qualityCard(component, q) {
  const r = q.report;
  const verdict = r.passed === false ? '<span class="fail-t">failed</span>'
    : r.passed === true ? '<span class="pass">passed</span>' : "<small>no verdict</small>";
  const rules = r.rules.length ? `<table><thead><tr><th>rule</th><th class="num">measured</th>
    <th class="num">limit</th><th></th></tr></thead><tbody>${r.rules.map((x) => `<tr><td>${esc(x.rule)}</td>
    <td class="num">${esc(x.measured)}</td><td class="num">${esc(x.limit)}</td>
    <td>${x.passed ? '<span class="pass">ok</span>' : '<span class="fail-t">failed</span>'}</td></tr>`).join("")}
    </tbody></table>` : "";
  const counts = Object.entries(r.counts).sort((a, b) => b[1].count - a[1].count);
  const chips = counts.length ? `<div class="chips">${counts.map(([code, c]) =>
    `<span class="chip ${esc(c.severity)}" title="${esc(c.severity)}">${esc(code)} × ${esc(fmtCount(c.count))}</span>`
  ).join("")}</div>` : "<small>no notices</small>";
  const notices = r.notices.length ? `<details><summary>${r.notices.length} of ${r.notices_total}
    sample notices</summary><table><thead><tr><th>code</th><th>file</th><th class="num">row</th>
    <th>field</th><th>value</th></tr></thead><tbody>${r.notices.map((n) => `<tr><td>${esc(n.code)}</td>
    <td>${esc(n.file)}</td><td class="num">${esc(n.row)}</td><td>${esc(n.field)}</td>
    <td class="msg">${esc(n.value)}</td></tr>`).join("")}</tbody></table></details>` : "";
  const joins = Object.entries(r.joins || {});
  const joinCell = (j) => (j && j.ids ? `${esc(j.percent)}% of ${esc(fmtCount(j.ids))}` : "–");
  const joinTable = joins.length ? `<table data-joins><thead><tr><th>ids in the schedule</th>
    <th class="num">trip</th><th class="num">route</th><th class="num">stop</th></tr></thead><tbody>${
    joins.map(([endpoint, k]) => `<tr><td>${esc(endpoint)}</td><td class="num">${joinCell(k.trip)}</td>
    <td class="num">${joinCell(k.route)}</td><td class="num">${joinCell(k.stop)}</td></tr>`).join("")}
    </tbody></table>` : "";
  const tables = Object.entries(r.record_counts || {});
  const rows = tables.length ? `<small class="rows">rows: ${tables.map(([t, n]) =>
    `${esc(t)} ${esc(fmtCount(n))}`).join(" · ")}</small>` : "";
  const volume = r.volume && r.volume.change_percent !== null && r.volume.change_percent !== undefined
    ? `<small>volume ${r.volume.change_percent > 0 ? "+" : ""}${esc(r.volume.change_percent)}% (${
      esc(fmtCount(r.volume.previous))} → ${esc(fmtCount(r.volume.current))})</small>` : "";
  return `<div class="qcard" data-quality="${esc(component)}"><h3><span>${name(component)}</span>${verdict}</h3>
    <small>run ${esc(q.run_id)} · ${esc(q.status)} · ${esc(wall(q.finished_at, true))}</small>
    <div>${esc(fmtCount(r.error_count ?? 0))} errors · ${esc(fmtCount(r.warning_count ?? 0))} warnings
      ${volume}</div>${rows}${chips}${rules}${joinTable}${notices}</div>`;
}

function renderQuality() {
  const entries = Object.entries(state.quality.components);
  $("quality").innerHTML = entries.length
    ? `<div class="quality">${entries.map(([n, q]) => qualityCard(n, q)).join("")}</div>`
    : '<p class="empty">no component has reported data quality yet</p>';
}

// --- live updates ------------------------------------------------------------------------

function renderFeed() {
  $("feed").innerHTML = state.feed.length ? state.feed.map((e) => {
    const who = e.component || e.run_id || e.source || "";
    const what = e.status || e.reason || e.trigger || "";
    const bad = FAILED.has(e.status) || e.event === "component_failed";
    return `<li><time>${esc(wall(e.at))}</time><span class="${bad ? "st failed" : ""}">${
      esc(e.event.replaceAll("_", " "))}</span> <b>${esc(who)}</b> <small>${esc(what)}</small></li>`;
  }).join("") : '<li class="empty">waiting for events…</li>';
}

function debounce(fn, ms) {
  let timer = null;
  return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
}

async function refreshOverview() {
  try {
    state.overview = await getJSON("/api/overview");
    renderOverview();
  } catch (err) { notice(`could not refresh components: ${err.message}`, true); }
}

async function refreshHistory() {
  try {
    const [history, quality] = await Promise.all([getJSON("/api/history"), getJSON("/api/quality")]);
    state.history = history;
    state.quality = quality;
    renderTrends();
    renderErrors();
    renderQuality();
  } catch (err) { notice(`could not refresh history: ${err.message}`, true); }
}

const soonOverview = debounce(refreshOverview, 100);
const soonHistory = debounce(refreshHistory, 800);

function onEvent(e) {
  state.feed.unshift(e);
  state.feed.length = Math.min(state.feed.length, FEED_MAX);
  renderFeed();
  if (e.event === "component_started" && e.component) {
    // Show it at once; the overview that follows fills in the rest.
    const el = document.querySelector(`.card[data-component="${CSS.escape(e.component)}"]`);
    if (el) {
      el.dataset.state = "running";
      const badge = el.querySelector(".badge");
      badge.className = "badge running";
      badge.textContent = "running";
    }
  }
  soonOverview();
  if (FINISHED.has(e.event)) soonHistory();
}

function connect() {
  const source = new EventSource("/api/events");
  const live = $("live");
  source.onopen = () => {
    live.textContent = "live";
    live.className = "live on";
    refreshOverview(); // catch up on anything missed while disconnected
  };
  source.onmessage = (m) => onEvent(JSON.parse(m.data));
  source.onerror = () => {
    live.textContent = "reconnecting…";
    live.className = "live off";
    // A refusal (503 while the dashboard is full) ends an EventSource for good: try again.
    if (source.readyState === EventSource.CLOSED) setTimeout(connect, 5000);
  };
}

// --- signing in ------------------------------------------------------------------------

function renderSession() {
  const s = state.session;
  $("signin").hidden = !ACTIONS || s.signedIn;
  $("session").hidden = !ACTIONS || !s.signedIn;
  $("who").textContent = s.signedIn ? `signed in (session ${s.label})` : "";
  if (state.overview) renderOverview();
}

function setSession(body) {
  state.session = { signedIn: Boolean(body && body.csrf), csrf: body ? body.csrf : null,
    label: body ? body.session : null };
  renderSession();
}

async function refreshSession() {
  if (!ACTIONS) return;
  try {
    const body = await getJSON("/api/session");
    setSession(body.signed_in ? body : null);
  } catch (err) { notice(`could not check the session: ${err.message}`, true); }
}

async function post(path, body) {
  const headers = { Accept: "application/json" };
  if (state.session.csrf) headers["X-Interlock-CSRF"] = state.session.csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: "POST", headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return [response, await response.json()];
}

async function signIn(event) {
  event.preventDefault(); // the page's CSP allows no form submission; this is a fetch
  const input = $("token");
  try {
    const [response, body] = await post("/api/login", { token: input.value });
    input.value = "";
    if (!response.ok) {
      notice(body.error ? body.error.message : `HTTP ${response.status}`, true);
      return;
    }
    setSession(body);
    notice("signed in");
  } catch (err) { notice(`sign-in failed: ${err.message}`, true); }
}

async function signOut() {
  try { await post("/api/logout"); } catch (err) { notice(`sign-out: ${err.message}`, true); }
  setSession(null);
}

async function act(button) {
  const { act: action, name } = button.dataset;
  button.disabled = true;
  try {
    const [response, body] = await post(`/api/components/${encodeURIComponent(name)}/${action}`);
    if (response.status === 401) setSession(null); // the session ended: sign in again
    if (!response.ok) notice(body.error ? body.error.message : `HTTP ${response.status}`, true);
    else if (action === "trigger") notice(`started ${name} in run ${body.run_id}`);
    else notice(`${name}: ${action}d`);
  } catch (err) {
    notice(`${action} ${name} failed: ${err.message}`, true);
  } finally {
    button.disabled = false;
    refreshOverview();
  }
}

function tick() {
  for (const el of document.querySelectorAll("[data-rel-of]")) {
    el.textContent = relative(el.dataset.relOf);
  }
}

async function start() {
  const begun = performance.now();
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-act]");
    if (button && ACTIONS) act(button);
    const toggle = event.target.closest("button[data-window]");
    if (toggle) {
      state.window = toggle.dataset.window;
      for (const b of document.querySelectorAll("button[data-window]")) {
        b.classList.toggle("on", b === toggle);
      }
      renderTrends();
    }
  });
  $("signin").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  await Promise.all([refreshSession(), refreshOverview(), refreshHistory()]);
  dash.readyMs = performance.now() - begun;
  dash.renders += 1;
  $("timing").textContent = `page data loaded and drawn in ${dash.readyMs.toFixed(0)} ms (charts ${
    dash.historyRenderMs.toFixed(0)} ms; query ${state.history.query_ms} ms)`;
  document.body.dataset.ready = "1";
  connect();
  setInterval(tick, 10000);
}

start();
