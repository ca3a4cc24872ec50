// What planning one ECRPullSecret over N namespaces costs the operator's process, without the API
// server: the cluster view, the content to adopt and the plan, over informer stores filled in
// memory. "cold" is a first converge (no Secret yet: a write per namespace), with the heap its plan
// holds until the last write; "steady" a reconcile that finds every namespace in sync. The token is
// the size ECR issues (about 2.4 KB). Run it with the flags the image starts node with, so the code
// runs in the tiers a fresh operator runs it in, and --expose-gc for the heap figure:
//   node --max-semi-space-size=4 --no-maglev --no-turbofan --expose-gc bench/plan-cost.ts 5000 20000
import type { V1Namespace, V1Secret, V1ServiceAccount } from "@kubernetes/client-node";
import { API_VERSION, KIND, type ECRPullSecret } from "../src/api/types.ts";
import { ManualClock } from "../src/clock.ts";
import { ClusterCache } from "../src/controller/cluster-cache.ts";
import { existingContent, planPullSecrets, type SecretContent } from "../src/controller/plan/desired.ts";
import { isSpecProblem, type ResolvedSpec } from "../src/controller/plan/spec.ts";
import { SpecResolver } from "../src/controller/spec-resolver.ts";
import { ObjectStore } from "../src/kube/informer/object-store.ts";
import { percentile } from "./stats.ts";

const owner = { name: "bench", uid: "bench-uid" };
const cr: ECRPullSecret = {
  apiVersion: API_VERSION,
  kind: KIND,
  metadata: { name: owner.name, uid: owner.uid, generation: 1 },
  spec: { secretName: "ecr-pull", namespaces: ["bench-*"] },
};
const content: SecretContent = {
  dockerConfigJson: JSON.stringify({ auths: { registry: { auth: "x".repeat(2400) } } }),
  expiresAt: "2026-01-01T12:00:00Z",
  refreshedAt: "2026-01-01T00:00:00Z",
  identity: "identity",
};
const resolved = new SpecResolver({ defaultRegion: "eu-west-1", trustedNamespaces: new Set() }).resolve(cr);
if (isSpecProblem(resolved)) throw new Error(resolved.message);
const spec: ResolvedSpec = resolved;

/** A cache of `n` namespaces with a default ServiceAccount each; `synced` adds what a converge wrote. */
function clusterOf(n: number, synced: boolean): ClusterCache {
  const stores = {
    ecrPullSecrets: new ObjectStore<ECRPullSecret>(),
    namespaces: new ObjectStore<V1Namespace>(),
    serviceAccounts: new ObjectStore<V1ServiceAccount>(),
    secrets: new ObjectStore<V1Secret>(),
  };
  stores.ecrPullSecrets.upsert(cr);
  for (let i = 0; i < n; i++) {
    const name = `bench-${i}`;
    const labels = { "kubernetes.io/metadata.name": name };
    stores.namespaces.upsert({ metadata: { name, resourceVersion: "1", labels } });
    stores.serviceAccounts.upsert({ metadata: { name: "default", namespace: name, resourceVersion: "1" } });
  }
  const cache = new ClusterCache(stores, new ManualClock());
  if (synced) {
    const plan = planPullSecrets(
      owner,
      spec,
      cache.viewFor(cr, () => undefined),
      content,
    );
    for (const write of plan.secretWrites) {
      stores.secrets.upsert({ ...write.body, metadata: { ...write.body.metadata, resourceVersion: "2" } });
    }
    for (const edit of plan.serviceAccountEdits) {
      const metadata = { name: edit.name, namespace: edit.namespace, resourceVersion: "2" };
      stores.serviceAccounts.upsert({ metadata, imagePullSecrets: edit.add.map((name) => ({ name })) });
    }
  }
  return cache;
}

/** Milliseconds of each of `rounds` plans over `cache`, checking that each plans `writes` writes. */
function timePlans(cache: ClusterCache, rounds: number, writes: number): number[] {
  const times: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const started = performance.now();
    const view = cache.viewFor(cr, () => undefined);
    const plan = planPullSecrets(owner, spec, view, existingContent(owner, spec, view) ?? content);
    times.push(performance.now() - started);
    if (plan.secretWrites.length !== writes) {
      throw new Error(`planned ${plan.secretWrites.length} Secret writes, expected ${writes}`);
    }
  }
  return times;
}

/** MiB of heap a cold plan over `cache` holds, when the process runs with --expose-gc. */
function heldByColdPlan(cache: ClusterCache): string {
  const exposed: unknown = Reflect.get(globalThis, "gc");
  if (typeof exposed !== "function") return "";
  const gc = exposed as () => void;
  const collect = (): number => {
    gc();
    return process.memoryUsage().heapUsed;
  };
  const before = collect();
  const plan = planPullSecrets(
    owner,
    spec,
    cache.viewFor(cr, () => undefined),
    content,
  );
  const held = collect() - before;
  return ` (its plan of ${plan.secretWrites.length} Secret writes holds ${(held / 1048576).toFixed(1)} MiB)`;
}

const counts = process.argv.slice(2).map(Number);
for (const n of counts.length > 0 ? counts : [1000, 5000, 20000]) {
  // The first plan of a process, as a cold converge is.
  const cold = clusterOf(n, false);
  const [coldMs = 0] = timePlans(cold, 1, n);
  const steady = timePlans(clusterOf(n, true), 50, 0);
  console.log(
    `${n} namespaces: cold ${coldMs.toFixed(0)} ms${heldByColdPlan(cold)}; steady p50 ${percentile(steady, 50).toFixed(1)} ms over ${steady.length}`,
  );
}
