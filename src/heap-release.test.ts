import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { getHeapSpaceStatistics } from "node:v8";

import { ManualClock } from "./clock.ts";
import {
  HeapRelease,
  defaultHeapReleasePolicy,
  releaseHeap,
  shouldReleaseHeap,
  type IntervalSample,
} from "./heap-release.ts";
import { createLogger } from "./observability/logger.ts";

const MiB = 1024 * 1024;
const policy = { idleUtilization: 0.05, minGrowthBytes: 8 * MiB };

describe("shouldReleaseHeap", () => {
  const cases: { name: string; sample: IntervalSample; lowest: number | undefined; expected: boolean }[] = [
    {
      name: "idle, never released",
      sample: { utilization: 0.01, rssBytes: 90 * MiB },
      lowest: undefined,
      expected: true,
    },
    {
      name: "busy, never released",
      sample: { utilization: 0.6, rssBytes: 90 * MiB },
      lowest: undefined,
      expected: false,
    },
    {
      name: "idle, grown by the margin",
      sample: { utilization: 0.05, rssBytes: 88 * MiB },
      lowest: 80 * MiB,
      expected: true,
    },
    {
      name: "idle, grown by less",
      sample: { utilization: 0, rssBytes: 87.9 * MiB },
      lowest: 80 * MiB,
      expected: false,
    },
    {
      name: "busy, grown a lot",
      sample: { utilization: 0.051, rssBytes: 200 * MiB },
      lowest: 80 * MiB,
      expected: false,
    },
    {
      name: "idle, shrunk",
      sample: { utilization: 0, rssBytes: 70 * MiB },
      lowest: 80 * MiB,
      expected: false,
    },
  ];
  for (const c of cases) {
    it(`${c.expected ? "releases" : "waits"}: ${c.name}`, () => {
      assert.equal(shouldReleaseHeap(c.sample, c.lowest, policy), c.expected);
    });
  }

  it("counts a few percent of event-loop use as idle by default", () => {
    assert.ok(
      defaultHeapReleasePolicy.idleUtilization > 0 && defaultHeapReleasePolicy.idleUtilization <= 0.1,
    );
  });
});

/** A process whose samples come from a script; release() drops RSS to `releasedTo`. */
function scriptedProcess(samples: { utilization: number; rssMiB: number }[], releasedTo: number) {
  const releases: number[] = [];
  let rss = 0;
  let next = 0;
  const sample = (): IntervalSample => {
    const step = samples[next];
    if (step === undefined) return { utilization: 0, rssBytes: rss };
    next += 1;
    rss = step.rssMiB * MiB;
    return { utilization: step.utilization, rssBytes: rss };
  };
  const release = (): void => {
    releases.push(rss / MiB);
    rss = releasedTo * MiB;
    // The sample taken right after a release reads the released level, not the next scripted step.
    samples.splice(next, 0, { utilization: 0, rssMiB: releasedTo });
  };
  return { sample, release, releases };
}

function heapReleaseWith(clock: ManualClock, scripted: ReturnType<typeof scriptedProcess>): HeapRelease {
  return new HeapRelease({
    clock,
    log: createLogger({ level: "silent", pretty: false }),
    intervalMs: 5_000,
    policy,
    sample: scripted.sample,
    release: scripted.release,
  });
}

describe("HeapRelease", () => {
  it("releases once start-up is over, however little it grew, and not while it is busy", () => {
    const clock = new ManualClock();
    const scripted = scriptedProcess(
      [
        { utilization: 0.9, rssMiB: 95 },
        { utilization: 0.3, rssMiB: 96 },
        { utilization: 0.01, rssMiB: 96 },
      ],
      80,
    );
    const release = heapReleaseWith(clock, scripted);
    release.start();
    clock.advance(10_000);
    assert.deepEqual(scripted.releases, []);
    clock.advance(5_000);
    assert.deepEqual(scripted.releases, [96]);
    release.stop();
  });

  it("releases again only after a burst that grew the resident set by the margin", () => {
    const clock = new ManualClock();
    const scripted = scriptedProcess(
      [
        { utilization: 0, rssMiB: 90 },
        // Idle growth below the margin: the young generation filling up again.
        { utilization: 0.01, rssMiB: 85 },
        { utilization: 0.02, rssMiB: 87 },
        // A converge, then idle again.
        { utilization: 0.8, rssMiB: 140 },
        { utilization: 0.7, rssMiB: 150 },
        { utilization: 0.01, rssMiB: 150 },
        { utilization: 0.01, rssMiB: 86 },
      ],
      80,
    );
    const release = heapReleaseWith(clock, scripted);
    release.start();
    clock.advance(40_000);
    assert.deepEqual(scripted.releases, [90, 150]);
    release.stop();
  });

  it("measures growth from the lowest level seen since the last release", () => {
    const clock = new ManualClock();
    const scripted = scriptedProcess(
      [
        { utilization: 0, rssMiB: 90 },
        { utilization: 0, rssMiB: 74 },
        { utilization: 0, rssMiB: 81 },
        { utilization: 0, rssMiB: 82 },
      ],
      80,
    );
    const release = heapReleaseWith(clock, scripted);
    release.start();
    clock.advance(25_000);
    // 82 is 8 MiB over the 74 seen after the release at 90, though only 2 over the released 80.
    assert.deepEqual(scripted.releases, [90, 82]);
    release.stop();
  });

  it("stops sampling when stopped", () => {
    const clock = new ManualClock();
    const scripted = scriptedProcess([{ utilization: 0, rssMiB: 90 }], 80);
    const release = heapReleaseWith(clock, scripted);
    release.start();
    assert.equal(clock.pendingTimers(), 1);
    release.stop();
    assert.equal(clock.pendingTimers(), 0);
    clock.advance(60_000);
    assert.deepEqual(scripted.releases, []);
  });
});

describe("releaseHeap", () => {
  const newSpaceBytes = (): number =>
    getHeapSpaceStatistics().find((space) => space.space_name === "new_space")?.space_size ?? Number.NaN;

  it("shrinks the young generation and gives the emptied old generation back", () => {
    // Enough short-lived objects for V8 to grow the young generation, and a large list that dies old.
    let survivors: { index: number; text: string }[] = [];
    for (let round = 0; round < 30; round++) {
      survivors = Array.from({ length: 100_000 }, (_, index) => ({ index, text: `item ${String(index)}` }));
    }
    const grown = { heap: process.memoryUsage().heapTotal, young: newSpaceBytes() };
    assert.equal(survivors.length, 100_000);
    survivors = [];
    releaseHeap();
    const released = { heap: process.memoryUsage().heapTotal, young: newSpaceBytes() };
    const shown = `heap ${String(Math.round(grown.heap / MiB))} → ${String(Math.round(released.heap / MiB))} MiB, young generation ${String(grown.young / MiB)} → ${String(released.young / MiB)} MiB`;
    assert.ok(released.young < grown.young, shown);
    assert.ok(released.heap < grown.heap - 8 * MiB, shown);
  });

  it("leaves no global gc behind", () => {
    releaseHeap();
    assert.equal("gc" in globalThis, false);
  });
});
