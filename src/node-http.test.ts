import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { describe, it } from "node:test";
import { promisify } from "node:util";

// In a fresh process: whether Node's bundled undici is loaded once the operator's modules are in,
// and once something imports node:http as an ES module (which shows the check can see it).
const script = `
  const undiciLoaded = () => process.moduleLoadList.some((name) => name.includes("undici"));
  for (const url of process.argv.slice(1)) await import(url);
  const operator = undiciLoaded();
  await import("node:http");
  process.stdout.write(JSON.stringify({ operator, esmImportOfHttp: undiciLoaded() }));
`;

describe("node:http through require", () => {
  it("leaves Node's bundled undici unloaded in the operator's process", async () => {
    const modules = [
      "./observability/metrics-observer.ts",
      "./operator.ts",
      "./observability/server.ts",
      "./kube/leader-election.ts",
    ].map((path) => new URL(path, import.meta.url).href);
    const { stdout } = await promisify(execFile)(process.execPath, [
      "--input-type=module",
      "--eval",
      script,
      ...modules,
    ]);
    assert.deepEqual(JSON.parse(stdout), { operator: false, esmImportOfHttp: true });
  });
});
