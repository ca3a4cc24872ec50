// What each dependency of the operator costs in memory: every part is loaded (and, for the AWS
// clients, used once) in a fresh node started with the image's node flags, and the process reports
// its VmRSS and V8 heap after a full GC. "Alone" is the part in a fresh process against a bare node;
// "in order" loads the parts one after another in one process, as the operator does, so the code
// they share (the AWS SDK core, for one) counts once, with the first that loads it.
//   node bench/module-memory.ts [--repeat <n>] [--out <file.json>]
import { execFileSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { imageNodeArgs } from "../test/harness/image.ts";
import { repoRoot } from "../test/harness/paths.ts";
import { percentile } from "./stats.ts";

/** One part of the operator, as an ES module body run inside an async function (`await` works). */
export interface ModulePart {
  name: string;
  code: string;
}

// Requests from the AWS clients go to a closed loopback port: the first send loads the HTTP handler,
// the signer and the retry strategy as a real call does, and fails at once.
const closedEndpoint = "http://127.0.0.1:9";
const awsClient = (pkg: string, client: string, command: string): string => `
  const m = await import("${pkg}");
  const c = new m.${client}({ region: "us-east-1", endpoint: "${closedEndpoint}", maxAttempts: 1,
    credentials: { accessKeyId: "AKIAEXAMPLE", secretAccessKey: "example" } });
  await c.send(new m.${command}({})).catch(() => undefined);
  keep.push(c);`;

/**
 * In the order the operator loads them (main.js and its command line, then config, the controller with the AWS side, the
 * logger, metrics, kubeconfig); STS when a CR assumes a role, node-forge when the webhook makes its
 * own certificate.
 */
export const moduleParts: readonly ModulePart[] = [
  {
    name: "valibot",
    code: `const v = await import("valibot"); keep.push(v.parse(v.object({ a: v.string() }), { a: "x" }));`,
  },
  {
    name: "@aws-sdk/credential-providers",
    code: `const m = await import("@aws-sdk/credential-providers"); keep.push(m.fromNodeProviderChain());`,
  },
  {
    name: "@aws-sdk/client-ecr (one call)",
    code: awsClient("@aws-sdk/client-ecr", "ECRClient", "GetAuthorizationTokenCommand"),
  },
  {
    name: "@aws-sdk/client-ecr-public (one call)",
    code: awsClient("@aws-sdk/client-ecr-public", "ECRPUBLICClient", "GetAuthorizationTokenCommand"),
  },
  {
    name: "pino",
    code: `const { pino } = await import("pino"); keep.push(pino({ redact: ["password", "*.token"] }, { write() {} }));`,
  },
  {
    name: "prom-client",
    code: `const p = await import("prom-client"); const r = new p.Registry(); p.collectDefaultMetrics({ register: r }); await r.metrics(); keep.push(r);`,
  },
  { name: "yaml", code: `keep.push((await import("yaml")).parse("a: 1\\nb: [x, y]\\n"));` },
  {
    name: "picomatch + p-map",
    code: `keep.push((await import("picomatch")).default("bench-*"), (await import("p-map")).default);`,
  },
  {
    name: "STS (an assumed role's first call)",
    code: `const m = await import("@aws-sdk/credential-providers");
  const p = m.fromTemporaryCredentials({ params: { RoleArn: "arn:aws:iam::123456789012:role/x" },
    clientConfig: { region: "us-east-1", endpoint: "${closedEndpoint}", maxAttempts: 1,
      credentials: { accessKeyId: "AKIAEXAMPLE", secretAccessKey: "example" } } });
  await p().catch(() => undefined);
  keep.push(p);`,
  },
  { name: "node-forge", code: `keep.push((await import("node-forge")).default.pki);` },
];

/** Every compiled module of the operator except the entry point (which would start it). */
const operatorCode: ModulePart = {
  name: "operator code (every dist/ module but main.js)",
  code: `
  const { readdirSync } = await import("node:fs");
  const { join } = await import("node:path");
  const files = readdirSync("dist", { recursive: true }).map(String)
    .filter((f) => f.endsWith(".js") && f !== "main.js").sort();
  for (const f of files) keep.push(await import("file://" + join(process.cwd(), "dist", f)));`,
};

export interface MemoryFigures {
  rss_mb: number;
  /** The part of VmRSS that is mapped files: mostly the node binary's code. */
  rss_file_mb: number;
  heap_used_mb: number;
  heap_total_mb: number;
  external_mb: number;
}

const probeFooter = `
  for (let i = 0; i < 3; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 50)); }
  const { readFileSync } = await import("node:fs");
  const status = readFileSync("/proc/self/status", "utf8");
  const kb = (field) => Number(new RegExp("^" + field + ":\\\\s+(\\\\d+)", "m").exec(status)[1]);
  const m = process.memoryUsage();
  const mb = (b) => Math.round((b / 1048576) * 100) / 100;
  return { rss_mb: mb(kb("VmRSS") * 1024), rss_file_mb: mb(kb("RssFile") * 1024), heap_used_mb: mb(m.heapUsed), heap_total_mb: mb(m.heapTotal), external_mb: mb(m.external + m.arrayBuffers) };`;

/** Runs `parts` in order in one fresh node with the image's flags; figures after each part. */
function probe(parts: readonly ModulePart[], extraFlags: readonly string[]): MemoryFigures[] {
  const body = [
    "const keep = []; const figures = [];",
    `const measure = async () => { ${probeFooter} };`,
    "figures.push(await measure());",
    // Not a part's cost: the module loaders themselves (the first ES module and the first CommonJS
    // module from node_modules), and the young generation grown to its limit, as any running
    // process has it.
    `keep.push(await import("colorette"), await import("quick-format-unescaped"));`,
    "{ let garbage = []; for (let i = 0; i < 300000; i++) { garbage.push({ i }); if (garbage.length > 1000) garbage = []; } }",
    "figures.push(await measure());",
    ...parts.map((part) => `{ ${part.code} }\nfigures.push(await measure());`),
    "process.stdout.write(JSON.stringify(figures));",
  ].join("\n");
  const out = execFileSync(
    process.execPath,
    [...imageNodeArgs(), ...extraFlags, "--expose-gc", "--input-type=module", "-e", body],
    { cwd: repoRoot, encoding: "utf8", env: { PATH: process.env.PATH, NODE_ENV: "production" } },
  );
  return JSON.parse(out) as MemoryFigures[];
}

function medianFigures(runs: readonly MemoryFigures[]): MemoryFigures {
  const pick = (key: keyof MemoryFigures): number =>
    Math.round(
      percentile(
        runs.map((r) => r[key]),
        50,
      ) * 10,
    ) / 10;
  return {
    rss_mb: pick("rss_mb"),
    rss_file_mb: pick("rss_file_mb"),
    heap_used_mb: pick("heap_used_mb"),
    heap_total_mb: pick("heap_total_mb"),
    external_mb: pick("external_mb"),
  };
}

function minus(a: MemoryFigures, b: MemoryFigures): MemoryFigures {
  const d = (x: number, y: number): number => Math.round((x - y) * 10) / 10;
  return {
    rss_mb: d(a.rss_mb, b.rss_mb),
    rss_file_mb: d(a.rss_file_mb, b.rss_file_mb),
    heap_used_mb: d(a.heap_used_mb, b.heap_used_mb),
    heap_total_mb: d(a.heap_total_mb, b.heap_total_mb),
    external_mb: d(a.external_mb, b.external_mb),
  };
}

export interface ModuleMemory {
  date: string;
  node: string;
  node_flags: string[];
  repeat: number;
  /** A bare node with the same flags, after a full GC. */
  bare: MemoryFigures;
  /** The same after loading one ES and one CommonJS module and growing the young generation. */
  warmed: MemoryFigures;
  /** Each part in a fresh process, minus the warmed bare node. */
  alone: { name: string; cost: MemoryFigures }[];
  /** All parts, then the operator's own code, loaded in order in one process: each step's increase. */
  in_order: { name: string; cost: MemoryFigures }[];
  /** Everything loaded, absolute. */
  all_loaded: MemoryFigures;
}

/** Measures every part `repeat` times and reports medians. */
export function measureModuleMemory(repeat: number, extraFlags: readonly string[] = []): ModuleMemory {
  const bareRuns: MemoryFigures[] = [];
  const warmRuns: MemoryFigures[] = [];
  const alone = new Map<string, MemoryFigures[]>();
  const ordered = [...moduleParts, operatorCode];
  const steps: MemoryFigures[][] = ordered.map(() => []);
  const allRuns: MemoryFigures[] = [];
  for (let run = 0; run < repeat; run++) {
    for (const part of moduleParts) {
      const [bare, before, after] = probe([part], extraFlags);
      if (bare === undefined || before === undefined || after === undefined)
        throw new Error(`no figures for ${part.name}`);
      bareRuns.push(bare);
      warmRuns.push(before);
      alone.set(part.name, [...(alone.get(part.name) ?? []), minus(after, before)]);
    }
    const figures = probe(ordered, extraFlags).slice(1);
    for (let i = 0; i < ordered.length; i++) {
      const before = figures[i];
      const after = figures[i + 1];
      if (before === undefined || after === undefined) throw new Error("the in-order probe stopped early");
      steps[i]?.push(minus(after, before));
    }
    const last = figures[figures.length - 1];
    if (last !== undefined) allRuns.push(last);
  }
  return {
    date: new Date().toISOString(),
    node: process.version,
    node_flags: [...imageNodeArgs(), ...extraFlags],
    repeat,
    bare: medianFigures(bareRuns),
    warmed: medianFigures(warmRuns),
    alone: moduleParts.map((part) => ({ name: part.name, cost: medianFigures(alone.get(part.name) ?? []) })),
    in_order: ordered.map((part, i) => ({ name: part.name, cost: medianFigures(steps[i] ?? []) })),
    all_loaded: medianFigures(allRuns),
  };
}

/** The figures as a Markdown table: alone and in order, RSS and V8 heap used. */
export function moduleMemoryTable(result: ModuleMemory): string {
  const rows = result.alone.map((part) => {
    const ordered = result.in_order.find((o) => o.name === part.name)?.cost;
    return `| ${part.name} | ${part.cost.rss_mb.toFixed(1)} | ${part.cost.heap_used_mb.toFixed(1)} | ${ordered?.rss_mb.toFixed(1) ?? "-"} | ${ordered?.heap_used_mb.toFixed(1) ?? "-"} |`;
  });
  const own = result.in_order[result.in_order.length - 1];
  return [
    "| part | alone: RSS (MiB) | alone: heap used (MiB) | in order: RSS (MiB) | in order: heap used (MiB) |",
    "| --- | --- | --- | --- | --- |",
    `| node itself (\`node ${result.node_flags.join(" ")}\`, absolute) | ${result.bare.rss_mb.toFixed(1)} | ${result.bare.heap_used_mb.toFixed(1)} | | |`,
    `| module loaders and a grown young generation | ${(result.warmed.rss_mb - result.bare.rss_mb).toFixed(1)} | ${(result.warmed.heap_used_mb - result.bare.heap_used_mb).toFixed(1)} | | |`,
    ...rows,
    ...(own === undefined
      ? []
      : [`| ${own.name} | | | ${own.cost.rss_mb.toFixed(1)} | ${own.cost.heap_used_mb.toFixed(1)} |`]),
    `| everything loaded (absolute) | | | ${result.all_loaded.rss_mb.toFixed(1)} | ${result.all_loaded.heap_used_mb.toFixed(1)} |`,
  ].join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      repeat: { type: "string", default: "5" },
      out: { type: "string" },
      "node-flag": { type: "string", multiple: true, default: [] },
    },
  });
  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat must be a positive integer`);
  const result = measureModuleMemory(repeat, values["node-flag"]);
  console.log(moduleMemoryTable(result));
  if (values.out !== undefined) {
    await writeFile(values.out, `${JSON.stringify(result, null, 2)}\n`);
    console.error(`wrote ${join(values.out)}`);
  }
}
