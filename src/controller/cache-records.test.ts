import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { V1Namespace, V1Secret } from "@kubernetes/client-node";

import { StringInterner } from "../kube/interner.ts";
import { namespaceRecord, objectRecord } from "./cache-records.ts";
import { namespaceView } from "./cluster-cache.ts";

/** As a list or watch would give it: a fresh object with its own copy of every string. */
const parsedNamespace = (json = namespaceJson): V1Namespace => JSON.parse(json) as V1Namespace;
const parsedSecret = (json = secretJson): V1Secret => JSON.parse(json) as V1Secret;

const namespaceJson = JSON.stringify({
  kind: "Namespace",
  apiVersion: "v1",
  metadata: {
    name: "team-a",
    uid: "9b1c8f5e-2f7a-4c1e-9d3b-2a7f1e0c6d44",
    resourceVersion: "4711",
    creationTimestamp: "2026-11-30T10:00:00Z",
    labels: { "kubernetes.io/metadata.name": "team-a", env: "prod" },
    annotations: { "scheduler.alpha.kubernetes.io/node-selector": "pool=a" },
    managedFields: [{ manager: "kubectl", operation: "Update", apiVersion: "v1" }],
  },
  spec: { finalizers: ["kubernetes"] },
  status: { phase: "Active" },
});

describe("namespaceRecord", () => {
  it("keeps the name, resourceVersion, labels and phase, and nothing else", () => {
    const record = namespaceRecord(parsedNamespace(), new StringInterner(16));
    assert.deepEqual(record, {
      metadata: {
        name: "team-a",
        resourceVersion: "4711",
        labels: { "kubernetes.io/metadata.name": "team-a", env: "prod" },
      },
      status: { phase: "Active" },
    });
  });

  it("keeps what tells a terminating namespace", () => {
    const terminating = parsedNamespace();
    if (terminating.metadata !== undefined) {
      terminating.metadata.deletionTimestamp = "2026-11-30T11:00:00Z" as unknown as Date;
    }
    terminating.status = { phase: "Terminating" };
    const record = namespaceRecord(terminating, new StringInterner(16));
    assert.equal(record.status?.phase, "Terminating");
    assert.equal(String(record.metadata?.deletionTimestamp), "2026-11-30T11:00:00Z");
    assert.deepEqual(namespaceView(record), namespaceView(parsedNamespace(JSON.stringify(terminating))));
  });

  it("gives the controller the same view as the whole object", () => {
    const whole = parsedNamespace();
    assert.deepEqual(
      namespaceView(namespaceRecord(parsedNamespace(), new StringInterner(16))),
      namespaceView(whole),
    );
  });

  it("has no status when the API server sent none", () => {
    const record = namespaceRecord({ metadata: { name: "bare" } }, new StringInterner(16));
    assert.deepEqual(record, { metadata: { name: "bare" } });
  });
});

const secretJson = JSON.stringify({
  kind: "Secret",
  apiVersion: "v1",
  metadata: {
    name: "ecr-pull",
    namespace: "team-a",
    resourceVersion: "5000",
    labels: { "app.kubernetes.io/managed-by": "ecr-creds-refresher", "ecr-creds-refresher.io/owner": "prod" },
    annotations: {
      "ecr-creds-refresher.io/expires-at": "2026-12-01T06:00:00Z",
      "kubectl.kubernetes.io/last-applied-configuration": '{"apiVersion":"v1"}',
      "example.com/blob": "x".repeat(300),
    },
    managedFields: [{ manager: "ecr-creds-refresher", operation: "Update" }],
  },
  type: "kubernetes.io/dockerconfigjson",
  data: { ".dockerconfigjson": "e30=" },
});

describe("objectRecord", () => {
  it("drops managed fields and kubectl's last-applied configuration and keeps the rest", () => {
    const record = objectRecord(parsedSecret(), new StringInterner(16));
    const expected = parsedSecret();
    delete expected.metadata?.managedFields;
    delete expected.metadata?.annotations?.["kubectl.kubernetes.io/last-applied-configuration"];
    assert.deepEqual(record, expected);
  });

  it("keeps repeated label and annotation values in the shared table, long ones not", () => {
    const shared = new StringInterner(16);
    objectRecord(parsedSecret(), shared);
    objectRecord(parsedSecret(secretJson.replace('"team-a"', '"team-b"')), shared);
    assert.ok(shared.has("ecr-creds-refresher"));
    assert.ok(shared.has("prod"));
    assert.ok(shared.has("2026-12-01T06:00:00Z"));
    assert.equal(shared.has("x".repeat(300)), false);
    // Three distinct short values, however many objects carry them.
    assert.equal(shared.size, 3);
  });

  it("does not put a namespace's own name in the shared table", () => {
    const shared = new StringInterner(16);
    namespaceRecord(parsedNamespace(), shared);
    assert.equal(shared.has("team-a"), false);
    assert.ok(shared.has("prod"));
  });
});
