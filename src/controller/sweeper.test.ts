import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { V1Namespace, V1Secret, V1ServiceAccount } from "@kubernetes/client-node";
import type { ECRPullSecret } from "../api/types.ts";
import { fixedStore, unreachableCluster } from "../../test/harness/cache-stores.ts";
import { ManualClock } from "../clock.ts";
import { KubeClient } from "../kube/rest.ts";
import { createLogger } from "../observability/logger.ts";
import { unobserved } from "../observability/observer.ts";
import { ClusterCache } from "./cluster-cache.ts";
import { OWNER_LABEL } from "./plan/labels.ts";
import { SpecResolver } from "./spec-resolver.ts";
import { Sweeper } from "./sweeper.ts";
import { createWriter, type PlannedChange } from "./writer.ts";

/** A managed Secret whose ECRPullSecret is gone. */
const orphan: V1Secret = {
  metadata: {
    namespace: "team-a",
    name: "gone-pull",
    resourceVersion: "12",
    labels: { [OWNER_LABEL]: "gone" },
    ownerReferences: [
      { apiVersion: "ecr-creds-refresher.io/v1alpha1", kind: "ECRPullSecret", name: "gone", uid: "uid-gone" },
    ],
  },
};

function setup(): {
  sweeper: Sweeper;
  clock: ManualClock;
  changes: PlannedChange[];
  lead: (yes: boolean) => void;
} {
  const clock = new ManualClock(Date.parse("2026-01-01T00:00:00Z"));
  const changes: PlannedChange[] = [];
  let leading = true;
  const cache = new ClusterCache(
    {
      ecrPullSecrets: fixedStore<ECRPullSecret>([]),
      namespaces: fixedStore<V1Namespace>([{ metadata: { name: "team-a" } }]),
      serviceAccounts: fixedStore<V1ServiceAccount>([]),
      secrets: fixedStore<V1Secret>([orphan]),
    },
    clock,
  );
  const sweeper = new Sweeper({
    cache,
    specs: new SpecResolver({ defaultRegion: "eu-west-1", trustedNamespaces: new Set() }),
    writer: createWriter({
      kube: new KubeClient(unreachableCluster),
      events: { normal: () => undefined, warning: () => undefined },
      log: createLogger({ level: "silent", pretty: false }),
      canWrite: () => leading,
      dryRun: true,
      onPlannedChange: (change) => changes.push(change),
    }),
    writeConcurrency: 4,
    observer: unobserved,
    clock,
    log: createLogger({ level: "silent", pretty: false }),
    intervalMs: 10 * 60_000,
  });
  return {
    sweeper,
    clock,
    changes,
    lead: (yes) => {
      leading = yes;
    },
  };
}

/** Lets the sweeper's worker run what is due. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

const deleted = {
  action: "delete",
  kind: "Secret",
  namespace: "team-a",
  name: "gone-pull",
  detail: "no longer targeted",
};

describe("Sweeper", () => {
  it("sweeps once it starts, not before, and makes one sweep of the requests that wait", async () => {
    const { sweeper, changes } = setup();
    sweeper.request();
    sweeper.request();
    await settle();
    assert.deepEqual(changes, [], "no sweep before start");
    sweeper.start();
    await settle();
    assert.deepEqual(changes, [deleted]);
    await sweeper.stop();
  });

  it("retries a sweep that could not write, with backoff", async () => {
    const { sweeper, clock, changes, lead } = setup();
    lead(false);
    sweeper.start();
    await settle();
    assert.deepEqual(changes, []);
    lead(true);
    clock.advance(499);
    await settle();
    assert.deepEqual(changes, [], "the first retry waits half a second");
    clock.advance(1);
    await settle();
    assert.deepEqual(changes, [deleted]);
    await sweeper.stop();
  });
});
