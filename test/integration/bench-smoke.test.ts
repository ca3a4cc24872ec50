// The cluster-scale benchmark end to end at its smallest (`npm run bench -- --quick`, shortened):
// the operator as its own process against a fresh control plane and moto. Checks the shape of the
// results and the counts that must hold at any scale; timings are left to the real runs.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { runBenchmark } from "../../bench/benchmark.ts";
import { writeResults, type BenchResults } from "../../bench/results.ts";

const namespaces = 100;

function assertNumber(value: unknown, what: string): void {
  assert.equal(typeof value, "number", `${what} should be a number`);
  assert.ok(Number.isFinite(value), `${what} should be finite, got ${String(value)}`);
}

describe("npm run bench --quick", { timeout: 240_000 }, () => {
  it("produces every result the README reports, with the exact write and token counts", async (t) => {
    const results: BenchResults = await runBenchmark(
      {
        namespaces: [namespaces],
        memoryNamespaces: [],
        comparatorNamespaces: [],
        rounds: 1,
        shortRounds: 1,
        startups: 2,
        newNamespaces: 10,
        idleSeconds: 10,
        unmanagedSecrets: 200,
        settleSeconds: 2,
        writeConcurrency: 32,
        createConcurrency: 48,
        operatorEntry: "source",
        command: "test/integration/bench-smoke.test.ts",
      },
      (message) => {
        t.diagnostic(message);
      },
    );

    for (const key of [
      "date",
      "kubernetes",
      "cpus",
      "converge",
      "new_namespace",
      "refresh",
      "idle",
      "memory",
      "startup",
    ]) {
      assert.ok(key in results, `results lack ${key}`);
    }
    assert.match(results.kubernetes, /^v\d+\.\d+\.\d+/);
    assert.equal(results.converge.length, 1);
    const [converge] = results.converge;
    assert.equal(converge?.namespaces, namespaces);
    for (const key of ["operator_s", "baseline_s", "ratio"] as const)
      assertNumber(converge[key], `converge.${key}`);
    assert.deepEqual(
      {
        secrets: converge.operator_writes.secrets,
        serviceaccounts: converge.operator_writes.serviceaccounts,
      },
      { secrets: namespaces, serviceaccounts: namespaces },
    );
    assert.equal(results.new_namespace.samples, 10);
    for (const key of ["p50_ms", "p99_ms", "max_ms"] as const) {
      assertNumber(results.new_namespace[key], `new_namespace.${key}`);
    }
    // Each new namespace takes at least the reconcile that writes its Secret.
    const { reconciles_per_namespace: reconciles = 0, cpu_ms_per_namespace: cpuMs = 0 } =
      results.new_namespace;
    assert.ok(reconciles >= 1, `new_namespace.reconciles_per_namespace: ${reconciles}`);
    assert.ok(cpuMs > 0, `new_namespace.cpu_ms_per_namespace: ${cpuMs}`);
    assertNumber(results.refresh.seconds, "refresh.seconds");
    assertNumber(results.idle.cpu_seconds, "idle.cpu_seconds");
    assertNumber(results.memory.rss_mb, "memory.rss_mb");
    assertNumber(results.memory.rss_mb_with_unmanaged_secrets, "memory.rss_mb_with_unmanaged_secrets");
    assertNumber(results.startup.ready_s, "startup.ready_s");
    // Two fresh operators timed: the median reported is one of them.
    assert.equal(results.startup.ready_runs_s?.length, 2);
    assert.ok(results.startup.ready_runs_s.includes(results.startup.ready_s));
    assert.deepEqual(
      results.memory_by_namespaces?.map((p) => p.namespaces),
      [namespaces],
      "memory at the one count",
    );
    const [point] = results.memory_by_namespaces ?? [];
    assertNumber(point?.steady_rss_mb, "memory_by_namespaces[0].steady_rss_mb");

    assert.equal(results.refresh.namespaces, namespaces);
    assert.equal(results.refresh.secret_writes, namespaces, "a refresh writes every Secret once");
    assert.equal(results.refresh.serviceaccount_writes, 0, "a refresh leaves ServiceAccounts alone");
    assert.equal(results.refresh.token_calls, 1, "one token for one identity and region");
    assert.equal(results.idle.write_requests, 0, "an idle operator writes nothing");

    const dir = await mkdtemp(join(tmpdir(), "ecr-bench-smoke-"));
    try {
      await writeResults(dir, results);
      const latest = JSON.parse(await readFile(join(dir, "latest.json"), "utf8")) as BenchResults;
      assert.deepEqual(latest, results);
      assert.match(
        await readFile(join(dir, "converge.svg"), "utf8"),
        /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/,
      );
      const readme = await readFile(join(dir, "README.md"), "utf8");
      assert.match(readme, /\| N namespaces \| operator \(s\) \| baseline \(s\) \| ratio \|/);
      assert.match(readme, /converge\.svg/);
      assert.match(readme, /test\/integration\/bench-smoke\.test\.ts/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
