/** What the command line of `npm run bench` / `npm run bench:peers` asked for. */
export interface BenchOptions {
  readonly quick: boolean;
  readonly patroni: boolean;
  readonly install: boolean;
  readonly out: string | undefined;
  /** --compare OLD NEW: compare two results files instead of running. */
  readonly compare: readonly [string, string] | undefined;
  readonly failOnRegression: boolean;
}

const FLAGS = ["--quick", "--patroni", "--install", "--fail-on-regression", "--out FILE", "--compare OLD.json NEW.json"];

/** Parses the flags; unknown ones are an error naming the known ones, so a typo never runs a 10-minute bench. */
export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  let quick = false;
  let patroni = false;
  let install = false;
  let failOnRegression = false;
  let out: string | undefined;
  let compare: [string, string] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (what: string) => {
      const v = argv[++i];
      if (v === undefined || v.startsWith("--")) throw new Error(`${arg} needs ${what}`);
      return v;
    };
    if (arg === "--quick") quick = true;
    else if (arg === "--patroni") patroni = true;
    else if (arg === "--install") install = true;
    else if (arg === "--fail-on-regression") failOnRegression = true;
    else if (arg === "--out") out = value("a file name");
    else if (arg.startsWith("--out=")) out = arg.slice("--out=".length);
    else if (arg === "--compare") compare = [value("two results files"), value("two results files")];
    else throw new Error(`unknown argument ${arg}; known: ${FLAGS.join(", ")}`);
  }
  return { quick, patroni, install, out, compare, failOnRegression };
}
