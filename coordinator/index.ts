// The coordinator's public surface.
export { startCoordinator, type CoordinatorConfig, type RunningCoordinator } from "./start-coordinator.js";
export { makePolicy, defaultPolicy, type CoordinatorPolicy } from "./config.js";
export { readAuditEvents, filterAuditEvents, AuditLog, AuditType, AUDIT_FILE, type AuditEvent, type AuditQuery } from "./audit/index.js";
export { decide, recoveryTarget, type Decision, type DecisionKind } from "./decide/decide.js";
export { chooseSuccessor, type Choice, type Candidate } from "./decide/successor.js";
export { detectSplitBrain, CRITERIA, type SplitBrainFinding, type Criterion, type CriterionName } from "./detect/split-brain.js";
export type { ClusterView, NodeState, DatabaseTruth } from "./view/cluster-view.js";
