/*
 * An election as a TypeScript team would build it on etcd with the etcd3
 * client: a lease with a TTL, `Election.campaign`, leading from 'elected'
 * until 'error' or `resign()`. Run by bench/peers/etcd-election.ts as a child
 * process; speaks CandidateOut over IPC.
 */
import { Etcd3, type Campaign } from "etcd3";
import type { CandidateIn, CandidateOut } from "./candidate-process.js";

export const ELECTION_NAME = "autonomy-bench";

const node = process.env.CANDIDATE_NODE!;
const send = (m: CandidateOut) => process.send!(m);

const client = new Etcd3({ hosts: process.env.ETCD_HOSTS! });
const election = client.election(ELECTION_NAME, Number(process.env.ETCD_TTL_SECONDS));
let current: Campaign | undefined;

async function campaign(): Promise<void> {
  const c = election.campaign(node);
  current = c;
  c.on("elected", () => send({ kind: "elected", term: 0 }));
  c.on("error", (err: Error) => {
    // The campaign failed (lease lost): stop leading and campaign again, as etcd3's own example does.
    send({ kind: "error", message: err.message });
    if (current === c) setTimeout(() => void campaign(), 100);
  });
  // The lease is granted and the key put right after: from here this candidate is in line.
  await c.getCampaignKey();
  send({ kind: "campaigning" });
}

process.on("message", (m: CandidateIn) => {
  if (m.kind !== "resign") return;
  void (async () => {
    send({ kind: "resigning" });
    const c = current;
    current = undefined;
    await c?.resign();
    setTimeout(() => void campaign(), m.rejoinAfterMs);
  })();
});

void campaign();
