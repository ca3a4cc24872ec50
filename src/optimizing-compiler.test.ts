import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { describe, it } from "node:test";
import { promisify } from "node:util";

import { imageNodeArgs } from "../test/harness/image.ts";
import { createLogger } from "./observability/logger.ts";
import type { Observation } from "./observability/observer.ts";
import { MaglevOnDemand, maglevOffAtStart } from "./optimizing-compiler.ts";

describe("maglevOffAtStart", () => {
  const cases: { execArgv: string[]; off: boolean }[] = [
    { execArgv: [], off: false },
    { execArgv: ["--max-semi-space-size=4"], off: false },
    { execArgv: ["--no-maglev", "--no-turbofan"], off: true },
    { execArgv: ["--no_maglev"], off: true },
    { execArgv: ["--no-maglev", "--maglev"], off: false },
    { execArgv: ["--maglev", "--no-maglev"], off: true },
    { execArgv: ["--no-turbofan"], off: false },
  ];
  for (const { execArgv, off } of cases) {
    it(`${JSON.stringify(execArgv)} → ${off ? "off" : "on"}`, () => {
      assert.equal(maglevOffAtStart(execArgv), off);
    });
  }
});

describe("MaglevOnDemand", () => {
  const log = createLogger({ level: "silent", pretty: false });
  const planned = (writes: number): Observation => ({ type: "WritesPlanned", writes });

  function subject(off: boolean): { onDemand: MaglevOnDemand; enabled: () => number } {
    let calls = 0;
    const onDemand = new MaglevOnDemand({ log, off, threshold: 100, enable: () => (calls += 1) });
    return { onDemand, enabled: () => calls };
  }

  it("stays off through small batches and other observations", () => {
    const { onDemand, enabled } = subject(true);
    onDemand.observe(planned(1));
    onDemand.observe(planned(99));
    onDemand.observe({ type: "QueueDepth", depth: 5000 });
    assert.equal(enabled(), 0);
    assert.equal(onDemand.off, true);
  });

  it("turns Maglev on once, at the first batch of the threshold or more", () => {
    const { onDemand, enabled } = subject(true);
    onDemand.observe(planned(100));
    onDemand.observe(planned(5000));
    assert.equal(enabled(), 1);
    assert.equal(onDemand.off, false);
  });

  it("does nothing when Maglev was on from the start", () => {
    const { onDemand, enabled } = subject(false);
    onDemand.observe(planned(5000));
    assert.equal(enabled(), 0);
  });

  // In a process started with the image's node flags: a hot function stays in the baseline tiers
  // through a batch just under the threshold, Maglev compiles it after a large batch, and Turbofan
  // never does (bits of %GetOptimizationStatus: 32 Maglev, 64 Turbofan).
  it("lets Maglev, and only Maglev, optimize hot code after a large batch", async () => {
    const script = `
      const { MaglevOnDemand, largeBatchWrites } = await import(process.argv[1]);
      const { createLogger } = await import(process.argv[2]);
      const status = new Function("f", "return %GetOptimizationStatus(f)");
      const tier = (f) => ((status(f) & 32) !== 0 ? "maglev" : (status(f) & 64) !== 0 ? "turbofan" : "none");
      function hot(n) { let s = 0; for (let i = 0; i < n; i++) s += (i % 7) * 3; return s; }
      const onDemand = new MaglevOnDemand({ log: createLogger({ level: "silent", pretty: false }) });
      const offAtStart = onDemand.off;
      onDemand.observe({ type: "WritesPlanned", writes: largeBatchWrites - 1 });
      for (let k = 0; k < 5000; k++) hot(1000);
      const before = tier(hot);
      onDemand.observe({ type: "WritesPlanned", writes: largeBatchWrites });
      const deadline = Date.now() + 20000;
      while (tier(hot) === "none" && Date.now() < deadline) for (let k = 0; k < 1000; k++) hot(1000);
      const after = tier(hot);
      for (let k = 0; k < 50000; k++) hot(1000);
      process.stdout.write(JSON.stringify({ offAtStart, before, after, later: tier(hot) }));
    `;
    const modules = ["./optimizing-compiler.ts", "./observability/logger.ts"].map(
      (path) => new URL(path, import.meta.url).href,
    );
    const { stdout } = await promisify(execFile)(process.execPath, [
      ...imageNodeArgs(),
      "--allow-natives-syntax",
      "--input-type=module",
      "--eval",
      script,
      ...modules,
    ]);
    assert.deepEqual(JSON.parse(stdout), {
      offAtStart: true,
      before: "none",
      after: "maglev",
      later: "maglev",
    });
  });
});
