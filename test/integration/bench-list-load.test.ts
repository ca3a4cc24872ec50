// The list-load benchmark at its smallest: two replicas of the operator, as processes, against a
// fresh control plane; after start-up they must make no LIST, and the watch restarts that follow a
// cut connection must resume without one. Per-hour figures are left to the real run.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { harnessKubernetesVersion } from "../../bench/benchmark.ts";
import { runListLoad, writeListLoad } from "../../bench/list-load.ts";

describe("npm run bench -- --only list-load, shortened", { timeout: 300_000 }, () => {
  it("makes no LIST after start-up, not even after every connection was cut", async (t) => {
    const result = await runListLoad(
      {
        namespaces: 20,
        serviceAccounts: 60,
        windowSeconds: 20,
        createConcurrency: 16,
        writeConcurrency: 8,
        operatorEntry: "source",
        kubernetesVersion: harnessKubernetesVersion,
        command: "test/integration/bench-list-load.test.ts",
      },
      (message) => {
        t.diagnostic(message);
      },
    );

    assert.equal(result.namespaces, 20);
    assert.equal(result.service_accounts, 60);
    assert.ok(result.startup.lists_by_resource_version.consistent > 0, "start-up lists are consistent reads");
    assert.equal(result.startup.lists_by_resource_version.any, 0);
    assert.deepEqual(result.steady.lists, {});
    assert.equal(result.steady.lists_after_cut, 0);
    assert.ok(Object.keys(result.steady.watches).length > 0, "the watches were restarted and counted");
    assert.deepEqual(
      result.targets.map((target) => target.met),
      [true, true],
    );

    const dir = await mkdtemp(join(tmpdir(), "bench-list-load-"));
    try {
      await writeListLoad(dir, result);
      const markdown = await readFile(join(dir, "list-load.md"), "utf8");
      assert.match(markdown, /^# List load of an idle operator/);
      assert.deepEqual(JSON.parse(await readFile(join(dir, "list-load.json"), "utf8")), result);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
