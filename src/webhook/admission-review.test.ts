import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { allowResponse, InvalidReview, isPodCreate, parseAdmissionReview } from "./admission-review.ts";

function review(request: Record<string, unknown>): unknown {
  return { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request };
}

const podKind = { group: "", version: "v1", kind: "Pod" };

describe("parseAdmissionReview", () => {
  it("reads a Pod CREATE: namespace from the request, ServiceAccount, labels and pull secrets", () => {
    const parsed = parseAdmissionReview(
      review({
        uid: "u1",
        kind: podKind,
        operation: "CREATE",
        namespace: "team-a",
        dryRun: true,
        object: {
          metadata: { generateName: "web-7d9f-", labels: { app: "web" } },
          spec: { serviceAccountName: "builder", imagePullSecrets: [{ name: "theirs" }] },
        },
      }),
    );
    assert.deepEqual(parsed, {
      uid: "u1",
      podName: "web-7d9f-",
      dryRun: true,
      pod: {
        namespace: "team-a",
        serviceAccountName: "builder",
        labels: { app: "web" },
        annotations: undefined,
        imagePullSecrets: ["theirs"],
      },
    });
  });

  it("tells an absent imagePullSecrets from an empty one", () => {
    const parse = (spec: object) => {
      const parsed = parseAdmissionReview(
        review({
          uid: "u",
          kind: podKind,
          operation: "CREATE",
          namespace: "n",
          object: { metadata: {}, spec },
        }),
      );
      assert.ok(isPodCreate(parsed));
      return parsed.pod.imagePullSecrets;
    };
    assert.equal(parse({}), undefined);
    assert.deepEqual(parse({ imagePullSecrets: [] }), []);
  });

  it("passes over other kinds, operations and subresources", () => {
    for (const request of [
      {
        uid: "u",
        kind: { group: "apps", version: "v1", kind: "Deployment" },
        operation: "CREATE",
        object: {},
      },
      { uid: "u", kind: podKind, operation: "UPDATE", object: {} },
      { uid: "u", kind: podKind, operation: "CREATE", subResource: "binding", object: {} },
    ]) {
      assert.deepEqual(parseAdmissionReview(review(request)), { uid: "u" });
    }
  });

  it("rejects what is not an admission.k8s.io/v1 AdmissionReview with a uid", () => {
    for (const body of [
      null,
      "text",
      { apiVersion: "admission.k8s.io/v1beta1", kind: "AdmissionReview", request: { uid: "u" } },
      review({}),
      review({ uid: "" }),
    ]) {
      assert.throws(() => parseAdmissionReview(body), InvalidReview);
    }
  });
});

describe("allowResponse", () => {
  it("allows without a patch when there is nothing to change", () => {
    assert.deepEqual(allowResponse("u"), {
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      response: { uid: "u", allowed: true },
    });
  });

  it("carries the JSON patch base64-encoded", () => {
    const patch = [{ op: "add" as const, path: "/spec/imagePullSecrets", value: [{ name: "a" }] }];
    const response = (allowResponse("u", patch) as { response: { patchType: string; patch: string } })
      .response;
    assert.equal(response.patchType, "JSONPatch");
    assert.deepEqual(JSON.parse(Buffer.from(response.patch, "base64").toString()), patch);
  });
});
