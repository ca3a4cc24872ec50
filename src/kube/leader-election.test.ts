import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../clock.ts";
import { LeaderElector, type Lease, type LeaseApi } from "./leader-election.ts";

/** An in-memory Lease endpoint with resourceVersion checks, that can be made unreachable. */
class LeaseStore {
  lease: Lease | undefined;
  version = 0;
  reachable = true;

  /** Requests are sent but never answered, as on a connection that went silent. */
  silent = false;

  private check(): void {
    if (!this.reachable) throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
  }

  private answer<T>(respond: () => Promise<T>): Promise<T> {
    return this.silent ? new Promise<T>(() => undefined) : respond();
  }

  private store(body: Lease): Lease {
    this.version += 1;
    const stored = structuredClone(body);
    stored.metadata = {
      name: body.metadata?.name,
      namespace: body.metadata?.namespace,
      resourceVersion: String(this.version),
    };
    this.lease = stored;
    return structuredClone(stored);
  }

  api(): LeaseApi {
    return {
      read: () =>
        this.answer(() => {
          this.check();
          if (this.lease === undefined) {
            return Promise.reject(
              Object.assign(new Error("not found"), {
                code: 404,
                body: '{"kind":"Status","reason":"NotFound","code":404}',
              }),
            );
          }
          return Promise.resolve(structuredClone(this.lease));
        }),
      create: (_namespace, body) => {
        this.check();
        return Promise.resolve(this.store(body));
      },
      replace: (_namespace, _name, body) => {
        this.check();
        if (body.metadata?.resourceVersion !== this.lease?.metadata?.resourceVersion) {
          return Promise.reject(
            Object.assign(new Error("conflict"), {
              code: 409,
              body: '{"kind":"Status","reason":"Conflict","code":409}',
            }),
          );
        }
        return Promise.resolve(this.store(body));
      },
    };
  }
}

/** Lets the promise chains of a tick settle. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

async function advance(clock: ManualClock, ms: number, step = 100): Promise<void> {
  for (let done = 0; done < ms; done += step) {
    clock.advance(step);
    await settle();
  }
}

function elector(store: LeaseStore, clock: ManualClock, identity: string, events: string[]): LeaderElector {
  return new LeaderElector({
    api: store.api(),
    namespace: "ns",
    name: "lease",
    identity,
    clock,
    onStartedLeading: () => events.push(`${identity} started`),
    onStoppedLeading: () => events.push(`${identity} stopped`),
  });
}

/** Replica "a" holding the lease it took, with the store, the clock and the log of both. */
async function leaderA(): Promise<{
  store: LeaseStore;
  clock: ManualClock;
  events: string[];
  a: LeaderElector;
}> {
  const store = new LeaseStore();
  const clock = new ManualClock(1_000_000);
  const events: string[] = [];
  const a = elector(store, clock, "a", events);
  a.start();
  await advance(clock, 500);
  return { store, clock, events, a };
}

describe("LeaderElector", () => {
  it("makes the first candidate leader and keeps the second waiting while the lease is renewed", async () => {
    const store = new LeaseStore();
    const clock = new ManualClock(1_000_000);
    const events: string[] = [];
    const a = elector(store, clock, "a", events);
    const b = elector(store, clock, "b", events);
    a.start();
    await advance(clock, 500);
    b.start();
    await advance(clock, 60_000);
    assert.deepEqual(events, ["a started"]);
    assert.ok(a.isLeader());
    assert.ok(!b.isLeader());
    assert.equal(store.lease?.spec?.holderIdentity, "a");
  });

  it("stops leading within the renew deadline, before the lease can be taken over", async () => {
    const { store, clock, events, a } = await leaderA();
    const renewedAt = clock.now();
    store.reachable = false;
    await advance(clock, 9_000);
    assert.ok(a.isLeader(), "still within the renew deadline");
    await advance(clock, 2_000);
    assert.ok(!a.isLeader(), "past the renew deadline");
    assert.deepEqual(events, ["a started", "a stopped"]);
    // A rival may take the lease only leaseDuration (15 s) after it last saw it change.
    assert.ok(clock.now() - renewedAt < 15_000);
  });

  it("stops leading at the renew deadline when a renewal never gets an answer", async () => {
    const { store, clock, events, a } = await leaderA();
    store.silent = true;
    await advance(clock, 9_000);
    assert.deepEqual(events, ["a started"], "still within the renew deadline");
    await advance(clock, 2_000);
    assert.ok(!a.isLeader());
    assert.deepEqual(events, ["a started", "a stopped"]);
  });

  it("takes over an expired lease and counts the transition", async () => {
    const { store, clock, events, a } = await leaderA();
    await a.stop();
    // Simulate a leader that died without releasing: put its identity back.
    const spec = store.lease?.spec;
    assert.ok(spec !== undefined);
    spec.holderIdentity = "a";
    spec.leaseDurationSeconds = 15;
    const b = elector(store, clock, "b", events);
    b.start();
    await advance(clock, 10_000);
    assert.ok(!b.isLeader(), "the lease is still valid");
    await advance(clock, 10_000);
    assert.ok(b.isLeader());
    const taken = store.lease?.spec;
    assert.deepEqual(
      { holder: taken?.holderIdentity, transitions: taken?.leaseTransitions },
      { holder: "b", transitions: 1 },
    );
  });

  it("releases the lease on stop so a successor takes over at once", async () => {
    const { store, clock, events, a } = await leaderA();
    await a.stop();
    assert.equal(store.lease?.spec?.holderIdentity, "");
    const b = elector(store, clock, "b", events);
    b.start();
    await advance(clock, 500);
    assert.ok(b.isLeader());
  });

  it("counts taking a released lease as a transition, as client-go does", async () => {
    const store = new LeaseStore();
    const clock = new ManualClock(1_000_000);
    const events: string[] = [];
    // Read afresh each time: an assertion on one reading narrows the type of the next.
    const spec = (): Lease["spec"] => store.lease?.spec;
    const a = elector(store, clock, "a", events);
    a.start();
    await advance(clock, 500);
    assert.equal(spec()?.leaseTransitions, 0, "creating the lease is no transition");
    await a.stop();
    const b = elector(store, clock, "b", events);
    b.start();
    await advance(clock, 500);
    assert.ok(b.isLeader());
    assert.deepEqual(
      { holder: spec()?.holderIdentity, transitions: spec()?.leaseTransitions },
      { holder: "b", transitions: 1 },
    );
    await advance(clock, 10_000);
    assert.equal(spec()?.leaseTransitions, 1, "renewals are no transitions");
  });

  it("waits out the holder's leaseDurationSeconds from the record, not its own lease duration", async () => {
    const store = new LeaseStore();
    const clock = new ManualClock(1_000_000);
    const events: string[] = [];
    // A holder configured with a 60 s lease that stopped renewing without releasing it.
    store.lease = {
      metadata: { name: "lease", namespace: "ns", resourceVersion: "1" },
      spec: {
        holderIdentity: "other",
        leaseDurationSeconds: 60,
        renewTime: "2030-01-01T00:00:00.000000Z",
        acquireTime: "2030-01-01T00:00:00.000000Z",
        leaseTransitions: 4,
      },
    };
    store.version = 1;
    const b = elector(store, clock, "b", events);
    b.start();
    await advance(clock, 55_000);
    assert.ok(!b.isLeader(), "within the holder's 60 s, though past our own 15 s");
    await advance(clock, 10_000);
    assert.ok(b.isLeader());
    assert.equal(store.lease.spec?.leaseTransitions, 5);
  });
});
