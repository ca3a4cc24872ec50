import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { getHeapSpaceStatistics } from "node:v8";

import { ManualClock } from "./clock.ts";
import {
  HeapRelease,
  releaseHeap,
  shouldReleaseHeap,
  type IntervalSample,
  type ReleaseState,
} from "./heap-release.ts";
import { createLogger } from "./observability/logger.ts";

const MiB = 1024 * 1024;
const policy = { busyUtilization: 0.5, idleUtilization: 0.05, idleIntervals: 3, minGrowthBytes: 8 * MiB };

describe("shouldReleaseHeap", () => {
  const cases: { name: string; state: ReleaseState; expected: boolean }[] = [
    {
      name: "burst over, never released",
      state: { burst: true, idleIntervals: 3, rssBytes: 90 * MiB, lowestRssBytes: undefined },
      expected: true,
    },
    {
      name: "idle too briefly, never released",
      state: { burst: true, idleIntervals: 2, rssBytes: 90 * MiB, lowestRssBytes: undefined },
      expected: false,
    },
    {
      name: "burst over, grown by the margin",
      state: { burst: true, idleIntervals: 5, rssBytes: 88 * MiB, lowestRssBytes: 80 * MiB },
      expected: true,
    },
    {
      name: "burst over, grown by less",
      state: { burst: true, idleIntervals: 5, rssBytes: 87.9 * MiB, lowestRssBytes: 80 * MiB },
      expected: false,
    },
    {
      name: "busy, grown a lot",
      state: { burst: true, idleIntervals: 0, rssBytes: 200 * MiB, lowestRssBytes: 80 * MiB },
      expected: false,
    },
    {
      name: "burst over, shrunk",
      state: { burst: true, idleIntervals: 9, rssBytes: 70 * MiB, lowestRssBytes: 80 * MiB },
      expected: false,
    },
    {
      name: "grown by light work, no burst",
      state: { burst: false, idleIntervals: 9, rssBytes: 120 * MiB, lowestRssBytes: 80 * MiB },
      expected: false,
    },
  ];
  for (const c of cases) {
    it(`${c.expected ? "releases" : "waits"}: ${c.name}`, () => {
      assert.equal(shouldReleaseHeap(c.state, policy), c.expected);
    });
  }
});

/** A process whose samples come from a script, one per interval; release() drops RSS to `releasedTo`. */
function scriptedProcess(samples: { utilization: number; rssMiB: number }[], releasedTo: number) {
  const releases: number[] = [];
  let rss = 0;
  let next = 0;
  let releasing = false;
  const sample = (): IntervalSample => {
    // The sample taken right after a release reads the released level and is no interval of its own.
    if (releasing) {
      releasing = false;
      return { utilization: 0, rssBytes: rss };
    }
    const step = samples[next];
    next += 1;
    if (step !== undefined) rss = step.rssMiB * MiB;
    return { utilization: step?.utilization ?? 0, rssBytes: rss };
  };
  const release = (): void => {
    releases.push(rss / MiB);
    rss = releasedTo * MiB;
    releasing = true;
  };
  return { sample, release, releases };
}

function heapReleaseWith(clock: ManualClock, scripted: ReturnType<typeof scriptedProcess>): HeapRelease {
  return new HeapRelease({
    clock,
    log: createLogger({ level: "silent", pretty: false }),
    intervalMs: 1_000,
    policy,
    sample: scripted.sample,
    release: scripted.release,
  });
}

const idle = (rssMiB: number) => ({ utilization: 0.01, rssMiB });
const light = (rssMiB: number) => ({ utilization: 0.2, rssMiB });
const busy = (rssMiB: number) => ({ utilization: 0.5, rssMiB });

describe("HeapRelease", () => {
  it("releases once three idle seconds follow a busy start-up, however little it grew", () => {
    const clock = new ManualClock();
    const scripted = scriptedProcess(
      [busy(95), busy(96), idle(96), idle(96), busy(96), idle(96), idle(96), idle(96)],
      80,
    );
    const release = heapReleaseWith(clock, scripted);
    release.start();
    clock.advance(7_000);
    assert.deepEqual(scripted.releases, []);
    clock.advance(1_000);
    assert.deepEqual(scripted.releases, [96]);
    release.stop();
  });

  it("releases again only after a burst that grew the resident set by the margin", () => {
    const clock = new ManualClock();
    const scripted = scriptedProcess(
      [
        ...[busy(90), idle(90), idle(90), idle(90)],
        // Idle growth below the margin: the young generation filling up again.
        ...[idle(85), idle(86), idle(87), idle(87)],
        // A converge, then idle again.
        ...[busy(140), busy(150), idle(150), idle(150), idle(150)],
        ...[idle(86), idle(86), idle(86)],
      ],
      80,
    );
    const release = heapReleaseWith(clock, scripted);
    release.start();
    clock.advance(21_000);
    assert.deepEqual(scripted.releases, [90, 150]);
    release.stop();
  });

  it("measures growth from the lowest level seen since the last release", () => {
    const clock = new ManualClock();
    const scripted = scriptedProcess(
      [busy(90), idle(90), idle(90), idle(90), idle(74), busy(81), idle(81), idle(81), idle(82)],
      80,
    );
    const release = heapReleaseWith(clock, scripted);
    release.start();
    clock.advance(9_000);
    // 82 is 8 MiB over the 74 seen after the release at 90, though only 2 over the released 80.
    assert.deepEqual(scripted.releases, [90, 82]);
    release.stop();
  });

  it("never releases while the work is light, however much the resident set grows", () => {
    const clock = new ManualClock();
    const scripted = scriptedProcess(
      [
        light(90),
        idle(92),
        idle(94),
        idle(96),
        light(100),
        light(104),
        idle(108),
        idle(112),
        idle(116),
        idle(120),
      ],
      80,
    );
    const release = heapReleaseWith(clock, scripted);
    release.releaseNow("the caches are filled");
    release.start();
    clock.advance(12_000);
    assert.deepEqual(scripted.releases, [90]);
    release.stop();
  });

  it("releases after work it was told is a burst, though the event loop was never busy", () => {
    const clock = new ManualClock();
    const scripted = scriptedProcess([light(110), idle(112), idle(112), idle(112)], 95);
    const release = heapReleaseWith(clock, scripted);
    release.releaseNow("the caches are filled");
    release.markBurst();
    release.start();
    clock.advance(10_000);
    // 110 was the release's own sample; the burst grew 112 from the released 95.
    assert.deepEqual(scripted.releases, [110, 112]);
    release.stop();
  });

  it("releases at once when told a burst has ended, and counts growth from there", () => {
    const clock = new ManualClock();
    const scripted = scriptedProcess([idle(120), idle(85), idle(86), idle(87)], 80);
    const release = heapReleaseWith(clock, scripted);
    release.releaseNow("the caches are filled");
    assert.deepEqual(scripted.releases, [120]);
    release.start();
    clock.advance(10_000);
    assert.deepEqual(scripted.releases, [120]);
    release.stop();
  });

  it("stops sampling when stopped", () => {
    const clock = new ManualClock();
    const scripted = scriptedProcess([idle(90)], 80);
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
