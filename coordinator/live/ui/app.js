// The coordinator's web view: one EventSource (/v1/events) feeds every part of
// the page; nothing is polled. The lag sparklines are kept here, from the stream.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const origin = location.origin;
  const SPARK_MS = 5 * 60 * 1000;
  const state = { status: null, statusAt: 0, leader: null, audit: [], terms: [], lag: new Map(), admin: false };

  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
    for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k == null ? "" : String(k)));
    return e;
  };
  // Colour is never the only signal: every flag is a word, the colour only repeats it.
  const flag = (on, yes, no) => el("span", { class: on ? "ok" : "bad" }, on ? `✔ ${yes}` : `✘ ${no}`);
  const age = (ms) => {
    if (!(ms >= 0)) return "—";
    const s = Math.floor(ms / 1000);
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
    return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  };
  const time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "—");
  const fill = (node, ...kids) => node.replaceChildren(...kids);

  function cliCommand(sub) {
    const extra = sub === "audit query" && $("audit-type").value ? ` --type ${$("audit-type").value}` : "";
    return `autonomy ${sub} --orchestrator-url ${origin}${extra}`;
  }
  function renderCli() {
    for (const box of document.querySelectorAll(".cli")) {
      const cmd = cliCommand(box.dataset.cli);
      const code = el("code", {}, cmd);
      const copy = el("button", { type: "button", "aria-label": `Copy: ${cmd}` }, "Copy");
      copy.addEventListener("click", () => copyText(cmd, copy));
      fill(box, el("span", { class: "muted" }, "Same in the CLI:"), code, copy);
    }
  }
  function copyText(text, button) {
    const done = () => { button.textContent = "Copied"; setTimeout(() => (button.textContent = "Copy"), 1500); };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, () => selectIn(button));
    else selectIn(button);
  }
  function selectIn(button) {
    const range = document.createRange();
    range.selectNodeContents(button.previousElementSibling);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    button.textContent = "Selected: press Ctrl+C";
  }

  function renderSummary() {
    const s = state.status;
    const l = state.leader ? state.leader.leader : s && { holder_id: s.leader.holder_id, epoch: s.leader.epoch, acquired_at: s.leader.acquired_at, write_ready: s.leader.write_ready };
    if (!l) return;
    fill($("leader"), l.holder_id || "no leader");
    fill($("epoch"), l.epoch ? String(l.epoch) : "—");
    fill($("write-ready"), flag(l.write_ready, "Write-Ready", "not Write-Ready"));
    if (s) {
      fill($("cluster-id"), s.cluster_id);
      fill($("database"), s.database_reachable ? flag(true, "reachable", "") : flag(false, "", `error: ${s.database}`));
      fill($("maintenance"), s.maintenance ? el("span", { class: "warn" }, "⏸ paused (maintenance)") : el("span", { class: "ok" }, "▶ running"));
      fill($("split-brain"), s.split_brain.detected ? el("span", { class: "bad" }, `⚠ detected: ${s.split_brain.explanation}`) : flag(true, "none", ""));
    }
    renderAges();
  }
  function renderAges() {
    const l = state.leader ? state.leader.leader : state.status && state.status.leader;
    $("term-age").textContent = l && l.holder_id && l.acquired_at ? age(Date.now() - Date.parse(l.acquired_at)) : "—";
    for (const cell of document.querySelectorAll("[data-age]")) cell.textContent = `${age(Number(cell.dataset.age) + Date.now() - state.statusAt)} ago`;
  }

  function sparkline(points) {
    const now = Date.now();
    const max = Math.max(1, ...points.map((p) => p.v));
    const coords = points.map((p) => `${(120 - ((now - p.t) / SPARK_MS) * 120).toFixed(1)},${(22 - (p.v / max) * 20).toFixed(1)}`).join(" ");
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("viewBox", "0 0 120 24");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", `replay lag over the last 5 minutes, up to ${max.toFixed(1)}s`);
    const base = document.createElementNS(ns, "line");
    for (const [k, v] of Object.entries({ x1: 0, y1: 23, x2: 120, y2: 23 })) base.setAttribute(k, String(v));
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", coords);
    svg.append(base, line);
    return svg;
  }

  function renderNodes() {
    const s = state.status;
    const rows = s.nodes.map((n) => {
      const pts = state.lag.get(n.node_id) || [];
      const live = n.connected && !n.stale;
      const role = n.role === "held" ? "held (by the coordinator)" : n.role;
      return el("tr", { "data-node": n.node_id },
        el("th", { scope: "row" }, n.node_id),
        el("td", {}, role, n.nofailover ? " (nofailover)" : ""),
        el("td", {}, flag(n.session_lock_held, "held", "no")),
        el("td", {}, flag(n.write_ready, "yes", n.write_ready_reason ? `no: ${n.write_ready_reason}` : "no")),
        el("td", {}, String(n.priority)),
        el("td", {}, n.lag_status === "unknown" ? "unknown" : `${n.replay_lag} (${n.lag_status})`),
        el("td", {}, sparkline(pts)),
        el("td", { "data-age": n.last_report_age_ms }, ""),
        el("td", {}, live ? el("span", { class: "ok" }, "● connected") : el("span", { class: "bad" }, n.connected ? "○ stale" : "○ disconnected")));
    });
    fill($("nodes").tBodies[0], ...rows);
    renderAges();
  }

  function renderTerms() {
    const terms = state.terms.slice().sort((a, b) => a.epoch - b.epoch);
    fill($("terms").tBodies[0], ...terms.slice().reverse().map((t) => el("tr", {},
      el("th", { scope: "row" }, String(t.epoch)), el("td", {}, t.holder_id), el("td", {}, time(t.acquired_at)),
      el("td", {}, t.resigned_at ? time(t.resigned_at) : "current"), el("td", {}, t.end_reason || (t.resigned_at ? "—" : "still leading")),
      el("td", {}, t.opened_by ? `${t.opened_by}${t.operator ? ` by ${t.operator}` : ""}${t.reason ? ` (${t.reason})` : ""}` : "—"))));
    const shown = terms.filter((t) => t.acquired_at).slice(-12);
    if (shown.length === 0) return fill($("timeline"), el("p", { class: "muted" }, "No terms yet."));
    const start = Date.parse(shown[0].acquired_at), end = Date.now(), span = Math.max(1, end - start);
    const ns = "http://www.w3.org/2000/svg", W = 1000, H = 18 * shown.length + 6;
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "terms over time; the table below has the same data");
    shown.forEach((t, i) => {
      const x0 = 180 + ((Date.parse(t.acquired_at) - start) / span) * (W - 190);
      const x1 = 180 + (((t.resigned_at ? Date.parse(t.resigned_at) : end) - start) / span) * (W - 190);
      const label = document.createElementNS(ns, "text");
      label.setAttribute("x", "0"); label.setAttribute("y", String(i * 18 + 15));
      label.textContent = `epoch ${t.epoch} ${t.holder_id}${t.resigned_at ? "" : " (current)"}`;
      const bar = document.createElementNS(ns, "rect");
      bar.setAttribute("x", x0.toFixed(1)); bar.setAttribute("y", String(i * 18 + 4));
      bar.setAttribute("width", Math.max(2, x1 - x0).toFixed(1)); bar.setAttribute("height", "12");
      if (!t.resigned_at) bar.setAttribute("class", "open");
      const tip = document.createElementNS(ns, "title");
      tip.textContent = `epoch ${t.epoch}: ${t.holder_id}, ${time(t.acquired_at)} – ${t.resigned_at ? time(t.resigned_at) : "now"}${t.end_reason ? `, ended: ${t.end_reason}` : ""}`;
      bar.append(tip);
      svg.append(label, bar);
    });
    fill($("timeline"), svg);
  }

  function renderAudit() {
    const select = $("audit-type"), chosen = select.value;
    const types = [...new Set(state.audit.map((e) => e.type))].sort();
    fill(select, el("option", { value: "" }, "all types"), ...types.map((t) => el("option", { value: t }, t)));
    select.value = types.includes(chosen) ? chosen : "";
    const rows = state.audit.filter((e) => !select.value || e.type === select.value).slice(-50).reverse();
    fill($("audit").tBodies[0], ...rows.map((e) => el("tr", { "data-type": e.type },
      el("td", {}, time(e.time)), el("td", {}, e.type), el("td", { class: "operator" }, e.operator),
      el("td", {}, e.node_id || "—"), el("td", {}, e.epoch ? String(e.epoch) : "—"),
      el("td", {}, e.message, e.reason ? ` (reason: ${e.reason})` : ""))));
    const findings = state.audit.filter((e) => e.type.startsWith("ha.split_brain.")).reverse();
    const current = state.status && state.status.split_brain.detected
      ? [el("li", { class: "bad" }, `⚠ now: ${state.status.split_brain.explanation}`)] : [];
    fill($("findings"), ...current, ...(findings.length || current.length
      ? findings.map((e) => el("li", {}, `${time(e.time)} ${e.type}: ${e.message}${e.operator ? ` (operator ${e.operator})` : ""}`))
      : [el("li", { class: "muted" }, "No split-brain findings in the audit tail.")]));
    renderCli();
  }

  function connect() {
    const source = new EventSource("/v1/events");
    const live = $("live");
    source.onopen = () => { live.textContent = "● live"; live.className = "badge ok"; };
    source.onerror = () => { live.textContent = "○ reconnecting…"; live.className = "badge bad"; };
    source.addEventListener("leader", (m) => {
      state.leader = JSON.parse(m.data);
      $("last-event").textContent = `Last leader event: ${state.leader.message} (${time(state.leader.at)})`;
      renderSummary();
    });
    source.addEventListener("status", (m) => {
      state.status = JSON.parse(m.data);
      state.statusAt = Date.now();
      const cutoff = Date.now() - SPARK_MS;
      for (const n of state.status.nodes) {
        const pts = (state.lag.get(n.node_id) || []).filter((p) => p.t >= cutoff);
        if (n.lag_status !== "unknown") pts.push({ t: Date.now(), v: n.replay_lag_seconds });
        state.lag.set(n.node_id, pts);
      }
      renderSummary();
      renderNodes();
    });
    source.addEventListener("history", (m) => {
      const h = JSON.parse(m.data);
      if (h.error) return fill($("timeline"), el("p", { class: "bad" }, `history unavailable: ${h.error}`));
      state.terms = h.terms;
      renderTerms();
    });
    source.addEventListener("audit", (m) => {
      const a = JSON.parse(m.data);
      if (a.error) return fill($("findings"), el("li", { class: "bad" }, `audit log unavailable: ${a.error}`));
      state.audit = a.events;
      renderAudit();
    });
  }

  // Actions: shown only when the server says this caller has the admin role; the server checks again.
  let pending = null;
  function openDialog(kind) {
    pending = kind;
    const titles = { failover: "Planned failover", pause: "Pause automatic actions", resume: "Resume automatic actions" };
    const cli = { failover: "ha failover trigger", pause: "ha pause", resume: "ha resume" };
    $("dialog-title").textContent = titles[kind];
    $("dialog-cli").textContent = `Same in the CLI: autonomy ${cli[kind]} --operator NAME --reason TEXT --orchestrator-url ${origin}`;
    $("f-target-row").hidden = kind !== "failover";
    if (kind === "failover" && state.status) {
      fill($("f-target"), el("option", { value: "" }, "any eligible node"),
        ...state.status.nodes.filter((n) => n.node_id !== state.status.leader.holder_id).map((n) => el("option", { value: n.node_id }, n.node_id)));
    }
    $("f-operator").value = localStorage.getItem("autonomy.operator") || "";
    $("f-reason").value = "";
    $("dialog").showModal();
    ($("f-operator").value ? $("f-reason") : $("f-operator")).focus();
  }
  async function submitAction(ev) {
    ev.preventDefault();
    const operator = $("f-operator").value.trim(), reason = $("f-reason").value.trim();
    if (!operator || !reason) return;
    localStorage.setItem("autonomy.operator", operator);
    $("dialog").close();
    const body = pending === "failover" ? { operator, reason, target_node: $("f-target").value } : { operator, reason, paused: pending === "pause" };
    const out = $("action-result");
    out.className = "warn";
    out.textContent = `${pending}: working…`;
    try {
      const r = await fetch(pending === "failover" ? "/v1/admin/failover" : "/v1/admin/maintenance", {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      const j = await r.json();
      out.className = r.ok ? "ok" : "bad";
      out.textContent = r.ok ? `✔ ${j.message}` : `✘ refused (${r.status}): ${j.error}`;
    } catch (err) {
      out.className = "bad";
      out.textContent = `✘ ${err}`;
    }
  }
  async function session() {
    try {
      const r = await fetch("/v1/ui/session");
      const s = await r.json();
      state.admin = r.ok && s.admin === true;
      $("who").textContent = r.ok ? `as ${s.principal}${state.admin ? " (admin)" : " (read-only)"}` : "";
      $("admin-who").textContent = r.ok ? s.principal : "";
      $("admin").hidden = !state.admin;
    } catch {
      $("admin").hidden = true;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    renderCli();
    $("audit-type").addEventListener("change", renderAudit);
    $("btn-failover").addEventListener("click", () => openDialog("failover"));
    $("btn-pause").addEventListener("click", () => openDialog("pause"));
    $("btn-resume").addEventListener("click", () => openDialog("resume"));
    $("action-form").addEventListener("submit", submitAction);
    $("f-cancel").addEventListener("click", () => $("dialog").close());
    // Ages move on between events; this only re-renders what the stream already sent.
    setInterval(renderAges, 1000);
    session();
    connect();
  });
})();
