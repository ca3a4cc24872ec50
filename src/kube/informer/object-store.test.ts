import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubernetesObject } from "@kubernetes/client-node";

import { ObjectStore } from "./object-store.ts";

function secret(name: string, resourceVersion: string, namespace = "ns1"): KubernetesObject {
  return { kind: "Secret", apiVersion: "v1", metadata: { name, namespace, resourceVersion } };
}

describe("ObjectStore", () => {
  it("reports adds, updates only for a changed resourceVersion, and deletes when replaced", () => {
    const store = new ObjectStore();
    const a1 = secret("a", "1");
    const b1 = secret("b", "1");
    assert.deepEqual(store.replace([a1, b1]), [
      { type: "add", obj: a1 },
      { type: "add", obj: b1 },
    ]);

    const b2 = secret("b", "2");
    const c1 = secret("c", "1");
    assert.deepEqual(store.replace([secret("a", "1"), b2, c1]), [
      { type: "update", obj: b2, old: b1 },
      { type: "add", obj: c1 },
    ]);
    assert.equal(store.get("a", "ns1"), a1, "an unchanged object keeps its stored instance");

    assert.deepEqual(store.replace([c1]), [
      { type: "delete", obj: a1 },
      { type: "delete", obj: b2 },
    ]);
    assert.equal(store.size(), 1);
  });

  it("ignores an upsert with the stored resourceVersion and a delete of an unknown object", () => {
    const store = new ObjectStore();
    const a1 = secret("a", "1");
    assert.deepEqual(store.upsert(a1), { type: "add", obj: a1 });
    assert.equal(store.upsert(secret("a", "1")), undefined);
    assert.equal(store.get("a", "ns1"), a1);
    assert.equal(store.delete(secret("zzz", "1")), undefined);
    const gone = secret("a", "2");
    assert.deepEqual(store.delete(gone), { type: "delete", obj: gone });
    assert.equal(store.size(), 0);
  });

  it("lists one namespace, cluster-scoped objects under the empty namespace, or everything", () => {
    const store = new ObjectStore();
    store.replace([
      secret("a", "1", "ns1"),
      secret("b", "1", "ns2"),
      secret("c", "1", "ns2"),
      { kind: "Namespace", apiVersion: "v1", metadata: { name: "ns1", resourceVersion: "1" } },
    ]);
    const names = (objects: KubernetesObject[]): string[] =>
      objects.map((o) => o.metadata?.name ?? "").sort();
    assert.deepEqual(names(store.list("ns2")), ["b", "c"]);
    assert.deepEqual(names(store.list("")), ["ns1"]);
    assert.deepEqual(names(store.list("absent")), []);
    assert.deepEqual(names(store.list()), ["a", "b", "c", "ns1"]);
    assert.equal(store.get("ns1")?.kind, "Namespace");
    assert.equal(store.get("a"), undefined, "a namespaced object is not found without its namespace");
    assert.equal(store.size(), 4);
  });
});
