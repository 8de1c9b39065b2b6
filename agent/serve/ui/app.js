// An agent's page for its own node: one EventSource (/v1/events), no polling.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const mark = (node, on, yes, no) => { node.textContent = on ? `✔ ${yes}` : `✘ ${no}`; node.className = on ? "ok" : "bad"; };
  document.addEventListener("DOMContentLoaded", () => {
    const cmd = `curl -s ${location.origin}/v1/health/leader`;
    $("cli").textContent = cmd;
    $("copy").addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText(cmd).then(() => ($("copy").textContent = "Copied")));
    const source = new EventSource("/v1/events");
    source.onopen = () => { $("live").textContent = "● live"; $("live").className = "badge ok"; };
    source.onerror = () => { $("live").textContent = "○ reconnecting…"; $("live").className = "badge bad"; };
    source.addEventListener("leader", (m) => {
      const e = JSON.parse(m.data);
      $("last-event").textContent = `Last leader event: ${e.message}`;
    });
    source.addEventListener("node", (m) => {
      const n = JSON.parse(m.data);
      $("node-id").textContent = n.node_id;
      $("role").textContent = n.role;
      mark($("write-ready"), n.write_ready, "Write-Ready", n.write_ready_detail.reason ? `no: ${n.write_ready_detail.reason}` : "no");
      mark($("lock"), n.session_lock_held, "held", "not held");
      $("lag").textContent = n.local ? (n.local.reachable ? `${n.local.replay_lag_seconds}s (${n.local.lag_status})` : `unreachable ${n.local.error}`) : "no local PostgreSQL configured";
      mark($("database"), !n.database_error, "reachable", `error: ${n.database_error}`);
      $("leader").textContent = n.holder_id || "no leader";
      $("epoch").textContent = n.current_epoch ? String(n.current_epoch) : "—";
    });
  });
})();
