// npm run bench [-- options]: the cluster-scale benchmarks of issue 7 against a local control plane
// and moto. Writes bench/results/ (latest.json, a dated copy, README.md, converge.svg); --quick runs
// N=100 with short waits and prints the results without writing them unless --out is given.
import { execFileSync } from "node:child_process";
import { parseArgs } from "node:util";
import { join } from "node:path";
import { repoRoot } from "../test/harness/paths.ts";
import { runBenchmark, type BenchmarkOptions } from "./benchmark.ts";
import { writeResults } from "./results.ts";

const usage = `usage: npm run bench -- [options]
  --namespaces <list>         namespace counts for cold converge (default 100,1000,5000)
  --rounds <n>                cold-converge rounds per count, medians reported (default 3)
  --new-namespaces <n>        namespaces created one at a time for the latency scenario (default 200)
  --idle-seconds <s>          quiet period of the idle scenario (default 180)
  --unmanaged-secrets <n>     unmanaged Secrets for the second memory run (default 20000)
  --settle-seconds <s>        RSS sampling window after each start-up (default 20)
  --write-concurrency <n>     operator --write-concurrency and baseline concurrency (default 32)
  --create-concurrency <n>    driver requests in flight for bulk set-up (default 48)
  --quick                     N=100, 1 round, 20 new namespaces, 15 s idle, 400 unmanaged Secrets, 3 s settle
  --out <dir>                 where results go (default bench/results; none with --quick)
  --profile <dir>             operator CPU profiles and heap snapshots into <dir>
  --operator-from-source      run src/main.ts instead of the compiled build the image ships
  --operator-node-options <s> NODE_OPTIONS for the operator process (e.g. --max-semi-space-size=16)
  --note <text>               a remark stored with the results (e.g. about machine load)`;

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0)
    throw new Error(`--${name} must be a positive number, got ${value}`);
  return parsed;
}

/** An argument as a POSIX shell would need it typed, so the recorded command can be run again. */
function shellQuoted(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'"'"'`)}'`;
}

function parseOptions(argv: string[]): { options: BenchmarkOptions; out: string | undefined } {
  const { values } = parseArgs({
    args: argv,
    options: {
      namespaces: { type: "string" },
      rounds: { type: "string" },
      "new-namespaces": { type: "string" },
      "idle-seconds": { type: "string" },
      "unmanaged-secrets": { type: "string" },
      "settle-seconds": { type: "string" },
      "write-concurrency": { type: "string" },
      "create-concurrency": { type: "string" },
      quick: { type: "boolean", default: false },
      out: { type: "string" },
      profile: { type: "string" },
      "operator-node-options": { type: "string" },
      "operator-from-source": { type: "boolean", default: false },
      note: { type: "string" },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  const quick = values.quick;
  const namespaces = (values.namespaces ?? (quick ? "100" : "100,1000,5000"))
    .split(",")
    .map((n) => positive("namespaces", n.trim(), 0));
  const options: BenchmarkOptions = {
    namespaces,
    rounds: positive("rounds", values.rounds, quick ? 1 : 3),
    newNamespaces: positive("new-namespaces", values["new-namespaces"], quick ? 20 : 200),
    idleSeconds: positive("idle-seconds", values["idle-seconds"], quick ? 15 : 180),
    unmanagedSecrets: positive("unmanaged-secrets", values["unmanaged-secrets"], quick ? 400 : 20_000),
    settleSeconds: positive("settle-seconds", values["settle-seconds"], quick ? 3 : 20),
    writeConcurrency: positive("write-concurrency", values["write-concurrency"], 32),
    createConcurrency: positive("create-concurrency", values["create-concurrency"], 48),
    profileDir: values.profile,
    operatorNodeOptions: values["operator-node-options"],
    operatorEntry: values["operator-from-source"] ? "source" : "build",
    command: ["npm run bench", ...(argv.length > 0 ? ["--", ...argv.map(shellQuoted)] : [])].join(" "),
    note: values.note,
  };
  const out = values.out ?? (quick ? undefined : join(repoRoot, "bench", "results"));
  return { options, out };
}

const startedAt = Date.now();
const log = (message: string): void => {
  const elapsed = ((Date.now() - startedAt) / 1000).toFixed(1).padStart(7);
  console.error(`[bench ${elapsed} s] ${message}`);
};

let parsed: ReturnType<typeof parseOptions>;
try {
  parsed = parseOptions(process.argv.slice(2));
} catch (err) {
  console.error(`${err instanceof Error ? err.message : String(err)}\n${usage}`);
  process.exit(2);
}
if (parsed.options.operatorEntry === "build") {
  log("compiling the operator (npm run build)");
  execFileSync(
    process.execPath,
    [join(repoRoot, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.build.json"],
    {
      cwd: repoRoot,
      stdio: "inherit",
    },
  );
}
const results = await runBenchmark(parsed.options, log);
console.log(JSON.stringify(results, null, 2));
if (parsed.out !== undefined) {
  const files = await writeResults(parsed.out, results);
  log(`wrote ${files.join(", ")}`);
}
const missed = results.targets.filter((t) => !t.met);
log(
  missed.length === 0
    ? "all targets met"
    : `targets missed: ${missed.map((t) => `${t.target} (${t.value})`).join("; ")}`,
);
