import { candidateBench, type HandoverSamples } from "./candidate-bench.js";
import { plainInsert } from "./write-loop.js";

/**
 * etcd3's `Election.campaign` (etcd-candidate.ts): three candidates on the
 * given etcd, each node's application writing (unfenced: etcd's revision is
 * not something PostgreSQL can check) to `databaseUrl` while it leads.
 */
export async function etcdElectionBench(o: { etcdHosts: string; ttlSeconds: number; databaseUrl: string; rounds: number }): Promise<HandoverSamples> {
  return candidateBench({
    system: `etcd3 election (ttl ${o.ttlSeconds} s)`,
    script: new URL("./etcd-candidate.ts", import.meta.url),
    env: { ETCD_HOSTS: o.etcdHosts, ETCD_TTL_SECONDS: String(o.ttlSeconds) },
    databaseUrl: o.databaseUrl,
    write: plainInsert,
    rounds: o.rounds,
  });
}
