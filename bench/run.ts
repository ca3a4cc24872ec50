// npm run bench [-- options]: the cluster-scale benchmarks and the list load of an idle operator,
// against a local control plane and moto. Writes bench/results/ (latest.json, a dated copy,
// README.md, converge.svg, list-load.json, list-load.md); --quick runs N=100 with short waits and
// prints the results without writing them unless --out is given; --only list-load runs that
// scenario alone and writes only its files; --only memory measures memory alone and prints it;
// --only converge runs the cold-converge rounds alone and prints them.
import { execFileSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { parseArgs } from "node:util";
import { join } from "node:path";
import { repoRoot } from "../test/harness/paths.ts";
import {
  harnessKubernetesVersion,
  runBenchmark,
  runConvergePoints,
  runMemoryPoints,
  type BenchmarkOptions,
} from "./benchmark.ts";
import { runListLoad, writeListLoad, type ListLoadOptions } from "./list-load.ts";
import { rewriteReadme, writeResults } from "./results.ts";
import type { TargetCheck } from "./run-info.ts";

const usage = `usage: npm run bench -- [options]
  --namespaces <list>         namespace counts for cold converge (default 100,1000,5000); the other
                              scenarios run at the largest up to 5000, refresh and memory at any larger
  --scale-20k                 add 20000 to --namespaces: cold converge, refresh and memory there
                              (about 3 minutes more per round)
  --memory-namespaces <list>  more counts at which memory alone is measured (default 10,500)
  --comparator-namespaces <list>
                              counts (of --namespaces) at which the CronJob-style script runs too
                              (default 100,1000; "none" for none)
  --rounds <n>                cold-converge rounds per count, medians reported (default 3); counts up to
                              1000, whose rounds take seconds, run three times as many
  --startups <n>              fresh operators started at the scenarios' N for the start-up time, median
                              reported (default 3)
  --new-namespaces <n>        namespaces created one at a time for the latency scenario (default 200)
  --idle-seconds <s>          quiet period of the idle scenario (default 180)
  --unmanaged-secrets <n>     unmanaged Secrets for the second memory run (default 20000)
  --settle-seconds <s>        RSS sampling window after each start-up (default 20)
  --write-concurrency <n>     operator --write-concurrency and baseline concurrency (default 32)
  --create-concurrency <n>    driver requests in flight for bulk set-up (default 48)
  --only <scenario>           run one part alone: list-load (writes list-load.json and list-load.md only),
                              memory (at --memory-namespaces; prints, writes nothing), or converge (the
                              cold-converge rounds at --namespaces; prints, writes nothing)
  --skip-list-load            leave the list-load scenario out; its saved results stay in the README
  --list-load-namespaces <n>  namespaces of the list-load scenario (default 5000)
  --list-load-service-accounts <n>
                              ServiceAccounts in all, spread over those namespaces (default 20000)
  --list-load-seconds <s>     quiet window of the list-load scenario, per-hour figures from it (default 900)
  --quick                     N=100, 1 round, 20 new namespaces, 15 s idle, 400 unmanaged Secrets, 3 s settle,
                              memory alone at 10, the CronJob-style script at 100;
                              list load at 100 namespaces, 400 ServiceAccounts, 60 s
  --out <dir>                 where results go (default bench/results; none with --quick)
  --profile <dir>             operator CPU profiles, sampled heap profiles (--heap-prof) and heap snapshots
                              into <dir>; bench/heap-snapshot.ts summarises a snapshot
  --operator-from-source      run src/main.ts instead of the compiled build the image ships
  --operator-node-options <s> NODE_OPTIONS for the operator process (e.g. --max-semi-space-size=16)
  --note <text>               a remark stored with the results (e.g. about machine load)`;

function counts(name: string, value: string): number[] {
  if (value === "none") return [];
  return value.split(",").map((n) => positive(name, n.trim(), 0));
}

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

interface ParsedOptions {
  options: BenchmarkOptions;
  listLoad: ListLoadOptions;
  only: "list-load" | "memory" | "converge" | undefined;
  skipListLoad: boolean;
  out: string | undefined;
}

function parseOptions(argv: string[]): ParsedOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      namespaces: { type: "string" },
      "scale-20k": { type: "boolean", default: false },
      "memory-namespaces": { type: "string" },
      "comparator-namespaces": { type: "string" },
      rounds: { type: "string" },
      startups: { type: "string" },
      "new-namespaces": { type: "string" },
      "idle-seconds": { type: "string" },
      "unmanaged-secrets": { type: "string" },
      "settle-seconds": { type: "string" },
      "write-concurrency": { type: "string" },
      "create-concurrency": { type: "string" },
      only: { type: "string" },
      "skip-list-load": { type: "boolean", default: false },
      "list-load-namespaces": { type: "string" },
      "list-load-service-accounts": { type: "string" },
      "list-load-seconds": { type: "string" },
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
  const rounds = positive("rounds", values.rounds, quick ? 1 : 3);
  const namespaces = [
    ...counts("namespaces", values.namespaces ?? (quick ? "100" : "100,1000,5000")),
    ...(values["scale-20k"] ? [20_000] : []),
  ];
  const options: BenchmarkOptions = {
    namespaces,
    memoryNamespaces: counts("memory-namespaces", values["memory-namespaces"] ?? (quick ? "10" : "10,500")),
    comparatorNamespaces: counts(
      "comparator-namespaces",
      values["comparator-namespaces"] ?? (quick ? "100" : "100,1000"),
    ),
    rounds,
    shortRounds: quick ? rounds : rounds * 3,
    startups: positive("startups", values.startups, quick ? 1 : 3),
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
  const only = values.only;
  if (only !== undefined && only !== "list-load" && only !== "memory" && only !== "converge") {
    throw new Error(`--only takes list-load, memory or converge, got ${only}`);
  }
  const listLoad: ListLoadOptions = {
    namespaces: positive("list-load-namespaces", values["list-load-namespaces"], quick ? 100 : 5000),
    serviceAccounts: positive(
      "list-load-service-accounts",
      values["list-load-service-accounts"],
      quick ? 400 : 20_000,
    ),
    windowSeconds: positive("list-load-seconds", values["list-load-seconds"], quick ? 60 : 900),
    createConcurrency: options.createConcurrency,
    writeConcurrency: options.writeConcurrency,
    operatorEntry: options.operatorEntry,
    operatorNodeOptions: options.operatorNodeOptions,
    kubernetesVersion: harnessKubernetesVersion,
    command: options.command,
    note: options.note,
  };
  const out = values.out ?? (quick ? undefined : join(repoRoot, "bench", "results"));
  if (values["skip-list-load"] && only === "list-load") {
    throw new Error("--skip-list-load and --only list-load exclude each other");
  }
  return { options, listLoad, only, skipListLoad: values["skip-list-load"], out };
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
  // From an empty dist/: a module left from an earlier layout would be measured as the operator's.
  rmSync(join(repoRoot, "dist"), { recursive: true, force: true });
  execFileSync(
    process.execPath,
    [join(repoRoot, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.build.json"],
    {
      cwd: repoRoot,
      stdio: "inherit",
    },
  );
}
if (parsed.only === "memory") {
  const points = await runMemoryPoints(parsed.options, log);
  console.log(JSON.stringify(points, null, 2));
  process.exit(0);
}
if (parsed.only === "converge") {
  const points = await runConvergePoints(parsed.options, log);
  console.log(JSON.stringify(points, null, 2));
  process.exit(0);
}
const targets: TargetCheck[] = [];
if (parsed.only === undefined) {
  const results = await runBenchmark(parsed.options, log);
  console.log(JSON.stringify(results, null, 2));
  if (parsed.out !== undefined) {
    const files = await writeResults(parsed.out, results);
    log(`wrote ${files.join(", ")}`);
  }
  targets.push(...results.targets);
}
if (!parsed.skipListLoad) {
  const listLoad = await runListLoad(parsed.listLoad, log);
  console.log(JSON.stringify(listLoad, null, 2));
  if (parsed.out !== undefined) {
    const files = await writeListLoad(parsed.out, listLoad);
    if (existsSync(join(parsed.out, "latest.json"))) {
      await rewriteReadme(parsed.out);
      files.push(join(parsed.out, "README.md"));
    }
    log(`wrote ${files.join(", ")}`);
  }
  targets.push(...listLoad.targets);
}
const missed = targets.filter((t) => !t.met);
log(
  missed.length === 0
    ? "all targets met"
    : `targets missed: ${missed.map((t) => `${t.target} (${t.value})`).join("; ")}`,
);
