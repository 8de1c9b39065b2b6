import pg from "pg";
import { startPgCluster } from "../../pgcluster/index.js";
import { candidateBench, type HandoverSamples } from "./candidate-bench.js";
import { CREATE_FLOOR_TERM, floorFencedWrite } from "./floor-schema.js";
import { CREATE_WRITES_TABLE } from "./write-loop.js";

/** The floor (floor-candidate.ts) on its own PostgreSQL: three candidates, fenced writes. */
export async function floorBench(rounds: number): Promise<HandoverSamples> {
  const cluster = await startPgCluster({ standbys: 0 });
  try {
    const url = cluster.primary.url();
    const setup = new pg.Client({ connectionString: url });
    await setup.connect();
    await setup.query(CREATE_WRITES_TABLE);
    await setup.query(CREATE_FLOOR_TERM);
    await setup.end();
    return await candidateBench({
      system: "floor",
      script: new URL("./floor-candidate.ts", import.meta.url),
      env: { FLOOR_DATABASE_URL: url },
      databaseUrl: url,
      write: floorFencedWrite,
      rounds,
    });
  } finally {
    await cluster.close();
  }
}
