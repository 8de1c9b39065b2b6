// `npm run chaos -- --seed N --duration S ...`: one seeded chaos run.
// Exit codes: 0 no violation, 1 a violation (or the run failed), 2 bad flags.

import { runChaos } from "./harness.js";
import { parseChaosArgs, UsageError, USAGE } from "./options.js";

async function main(): Promise<number> {
  let options;
  try {
    options = parseChaosArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      if (err.message) process.stderr.write(`chaos: ${err.message}\n\n`);
      process.stderr.write(`${USAGE}\n`);
      return err.message ? 2 : 0;
    }
    throw err;
  }
  // Ctrl-C: stop the schedule, tear everything down, then exit.
  const interrupt = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupt.signal.aborted) process.exit(130);
    process.stderr.write(`chaos: ${sig}, stopping everything…\n`);
    interrupt.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const run = await runChaos(options, (line) => process.stdout.write(`${line}\n`), interrupt.signal);
    process.stdout.write(`\n${run.report}\n`);
    return run.summary.violations > 0 ? 1 : 0;
  } catch (err) {
    if (interrupt.signal.aborted) {
      process.stderr.write("chaos: interrupted; everything the run started is stopped\n");
      return 130;
    }
    process.stderr.write(`chaos: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

process.exit(await main());
