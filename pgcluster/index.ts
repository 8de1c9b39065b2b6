// Public surface of the PostgreSQL primary + streaming standby harness.
export { findPgBinaries, REQUIRED_PG_BINARIES } from "./binaries.js";
export type { FindPgBinariesOptions, PgBinaries } from "./binaries.js";
export { freePort, isPortFree } from "./free-port.js";
export { PgServer } from "./pg-server.js";
export type { PgServerOptions, StopMode } from "./pg-server.js";
export { startPgCluster } from "./cluster.js";
export type { PgCluster, PgClusterOptions } from "./cluster.js";
export { REPLICATION_USER } from "./provision.js";
export { withParentDeathSignal } from "./pg-user.js";
