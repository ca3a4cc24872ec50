// What the operator image runs, read from the Dockerfile, so tests and benchmarks that start the
// compiled operator start it the same way.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "./paths.ts";

/** The node flags of the Dockerfile's ENTRYPOINT (between the node binary and the script). */
export function imageNodeArgs(): string[] {
  const dockerfile = readFileSync(join(repoRoot, "Dockerfile"), "utf8");
  const line = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile)?.[1];
  if (line === undefined) throw new Error("the Dockerfile has no ENTRYPOINT in exec form");
  const entrypoint = JSON.parse(line) as unknown;
  if (!Array.isArray(entrypoint) || !/(^|\/)node$/.test(String(entrypoint[0]))) {
    throw new Error(`the Dockerfile's ENTRYPOINT does not start with node: ${line}`);
  }
  const args = entrypoint.slice(1).map(String);
  const script = args.findIndex((arg) => arg.endsWith("main.js"));
  if (script < 0) throw new Error(`the Dockerfile's ENTRYPOINT runs no main.js: ${line}`);
  return args.slice(0, script);
}
