import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: [
      "test/**/*.test.ts",
      "{agent,bench,coordinator,cli,client,core,db,rpc,pgcluster}/**/*.spec.ts",
    ],
    // Tests start real PostgreSQL servers and child processes; two cores
    // cannot run many of those at once without starving the timing under test.
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
  },
});
