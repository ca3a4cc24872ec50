// npm run test:reliability: every scenario at full scale, one test file at a time (they start
// their own control planes and compete for the same 2 cores otherwise), with fresh results.
import { spawnSync } from "node:child_process";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../harness/paths.ts";

const dir = join(repoRoot, "test", "reliability");
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".test.ts"))
  .sort()
  .map((f) => join(dir, f));
rmSync(join(dir, "results.json"), { force: true });
const run = spawnSync(
  process.execPath,
  ["--test", "--test-concurrency=1", "--test-timeout=1800000", ...process.argv.slice(2), ...files],
  { stdio: "inherit", env: { ...process.env, RELIABILITY_SCALE: "full" } },
);
process.exit(run.status ?? 1);
