// npm run bench:race [-- --rounds N]: the create-before-patch race on a real node, with the
// operator installed by its Helm chart: a Namespace and a 3-replica Deployment in one
// `kubectl apply -f`, N rounds with the Pod webhook (the chart's default) and N rounds with
// webhook.enabled=false. Writes bench/results/race.json and race.md, and the race's section of
// bench/results/README.md.
import { writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { API_VERSION, KIND } from "../src/api/types.ts";
import {
  installOperatorChart,
  startNodeEnv,
  upgradeOperatorChart,
  type NodeEnv,
} from "../test/harness/node-env.ts";
import { repoRoot } from "../test/harness/paths.ts";
import { stopStarted } from "../test/harness/processes.ts";
import { describeRace, runRace } from "../test/harness/race.ts";
import { renderRaceMarkdown, type RaceResults, type RaceVariant } from "./race-results.ts";
import { rewriteReadme } from "./results.ts";

const { values } = parseArgs({
  options: { rounds: { type: "string", default: "20" }, out: { type: "string" } },
  strict: true,
});
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1)
  throw new Error(`--rounds must be a positive integer, got ${values.rounds}`);
const out = values.out ?? join(repoRoot, "bench", "results");
const replicas = 3;
const secretName = "ecr-race";

let env: NodeEnv | undefined;
try {
  env = await startNodeEnv();
  const cluster = env;
  await installOperatorChart(cluster);
  const cr = {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: "race" },
    spec: { secretName, namespaces: ["race-*"] },
  };
  await cluster.kubectl(["apply", "-f", "-"], JSON.stringify(cr));
  await cluster.kubectl(["wait", "ecrpullsecret", "race", "--for=condition=Ready", "--timeout=60s"]);
  const variants: RaceVariant[] = [];
  for (const [label, webhook, prefix] of [
    ["with the Pod webhook (chart default)", true, "race-on-"],
    ["webhook.enabled=false", false, "race-off-"],
  ] as const) {
    if (!webhook) await upgradeOperatorChart(cluster, ["webhook.enabled=false"]);
    const result = await runRace(cluster, { rounds, replicas, namespacePrefix: prefix, secretName });
    console.log(`${label}: ${describeRace(result)}`);
    variants.push({ label, webhook, result });
  }
  const results: RaceResults = {
    date: new Date().toISOString(),
    cpus: availableParallelism(),
    rounds,
    replicas,
    variants,
  };
  await writeFile(join(out, "race.json"), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(join(out, "race.md"), renderRaceMarkdown(results));
  await rewriteReadme(out);
  console.log(`wrote race.json, race.md and README.md in ${out}`);
} finally {
  await stopStarted(env);
}
