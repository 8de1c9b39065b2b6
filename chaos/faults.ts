// The catalogue of fault kinds: one name per kind, what it does, and how long
// it lasts. The schedule draws from it; the injector carries each one out.

export const FAULT_KINDS = [
  // process faults
  "kill-leader",
  "kill-follower",
  "stop-leader",
  "stop-follower",
  "kill-coordinator",
  "stop-coordinator",
  // network faults, through the proxies on loopback
  "cut-agent-db",
  "delay-agent-db",
  "cut-agent-coordinator",
  "delay-agent-coordinator",
  // database faults
  "db-restart-fast",
  "db-restart-immediate",
  "db-promote",
  "db-lock-ha-tables",
  "db-pause-postmaster",
  // slowness
  "slow-leader",
  "slow-writes",
  // hostile clients
  "rogue-stream",
  "forged-report",
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

export const FAULT_HELP: Record<FaultKind, string> = {
  "kill-leader": "SIGKILL the leader's agent (its process group), restart it after the fault's duration",
  "kill-follower": "SIGKILL a follower's agent, restart it after the fault's duration",
  "stop-leader": "SIGSTOP the leader's agent, SIGCONT after the fault's duration",
  "stop-follower": "SIGSTOP a follower's agent, SIGCONT after the fault's duration",
  "kill-coordinator": "SIGKILL the active coordinator, restart it after the fault's duration",
  "stop-coordinator": "SIGSTOP the active coordinator, SIGCONT after the fault's duration",
  "cut-agent-db": "blackhole (no FIN) an agent's connections to every database server, one way or both",
  "delay-agent-db": "delay an agent's traffic to and from the database servers, one way or both",
  "cut-agent-coordinator": "blackhole (no FIN) an agent's connection to the coordinator, one way or both",
  "delay-agent-coordinator": "delay an agent's traffic to and from the coordinator, one way or both",
  "db-restart-fast": "restart the primary in fast mode",
  "db-restart-immediate": "restart the primary in immediate mode (crash recovery)",
  "db-promote": "SIGKILL the primary, pg_ctl promote the standby, bring the old primary back as a zombie (once per run)",
  "db-lock-ha-tables": "hold an ACCESS EXCLUSIVE lock on leadership_state and leader_epochs",
  "db-pause-postmaster": "SIGSTOP the primary's postmaster (new connections hang), SIGCONT after the fault's duration",
  "slow-leader": "block the leader's event loop beyond its heartbeat and lease",
  "slow-writes": "every workload transaction sleeps inside the transaction, holding the epoch gate",
  "rogue-stream": "open AgentService.Connect without a valid token and claim the lock",
  "forged-report": "report with a valid agent token a huge epoch and the leader's lock pid",
};

/** Kinds that act on one agent (the schedule names a role; the injector resolves it at run time). */
export type Role = "leader" | "follower";

export function isFaultKind(name: string): name is FaultKind {
  return (FAULT_KINDS as readonly string[]).includes(name);
}
