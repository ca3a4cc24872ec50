import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ECRPullSecret, ECRPullSecretSpec } from "../../api/types.ts";
import { claimedByOther, rivalsOf, type Claimant } from "./ownership.ts";
import { isSpecProblem, resolveSpec, type ResolvedSpec } from "./spec.ts";

const self: Claimant = { name: "team-pull", createdAt: "2026-01-02T00:00:00Z" };
const older: Claimant = { name: "zz-older", createdAt: "2026-01-01T00:00:00Z" };
const newer: Claimant = { name: "aa-newer", createdAt: "2026-01-03T00:00:00Z" };
const oldest: Claimant = { name: "oldest", createdAt: "2025-12-01T00:00:00Z" };
const sameAgeBefore: Claimant = { name: "a-same-age", createdAt: self.createdAt };
const sameAgeAfter: Claimant = { name: "z-same-age", createdAt: self.createdAt };

describe("claimedByOther", () => {
  const cases: {
    name: string;
    wanting: Claimant[];
    owner?: string;
    expected: string | undefined;
  }[] = [
    { name: "gives the name to the only CR that wants it", wanting: [], expected: undefined },
    {
      name: "keeps the name with the CR whose Secret is there, even against an older one",
      wanting: [older],
      owner: self.name,
      expected: undefined,
    },
    {
      name: "leaves the name to another CR whose Secret is there, even when this one is older",
      wanting: [newer],
      owner: newer.name,
      expected: newer.name,
    },
    {
      name: "gives an unheld name to the older CR",
      wanting: [older],
      expected: older.name,
    },
    { name: "takes an unheld name from a newer CR", wanting: [newer], expected: undefined },
    {
      name: "gives the name to the oldest of several",
      wanting: [newer, older, oldest],
      expected: oldest.name,
    },
    {
      name: "decides between CRs as old as each other by the smaller name",
      wanting: [sameAgeBefore],
      expected: sameAgeBefore.name,
    },
    {
      name: "takes the name from a CR as old with a larger name",
      wanting: [sameAgeAfter],
      expected: undefined,
    },
    {
      name: "decides by age when the Secret names a CR that does not want it any more",
      wanting: [newer],
      owner: "gone",
      expected: undefined,
    },
  ];
  for (const { name, wanting, owner, expected } of cases) {
    it(name, () => {
      assert.equal(claimedByOther(self, wanting, owner), expected);
    });
  }
});

describe("rivalsOf", () => {
  const context = { defaultRegion: "eu-west-1", trustedNamespaces: new Set<string>() };
  const cr = (name: string, spec: ECRPullSecretSpec, deleting = false): ECRPullSecret => ({
    apiVersion: "ecr-creds-refresher.io/v1alpha1",
    kind: "ECRPullSecret",
    metadata: {
      name,
      uid: `uid-${name}`,
      // As the informer holds it: the JSON text, not the Date the client-node type promises.
      creationTimestamp: "2026-01-01T00:00:00Z" as unknown as Date,
      ...(deleting ? { deletionTimestamp: new Date(0) } : {}),
    },
    spec,
  });
  const specOf = (resource: ECRPullSecret): ResolvedSpec | undefined => {
    const resolved = resolveSpec(resource, context);
    return isSpecProblem(resolved) ? undefined : resolved;
  };
  const targets = { secretName: "team-pull", namespaces: ["team-*"] };

  it("counts every other live CR with a valid spec that is not suspended", () => {
    const me = cr("me", targets);
    const crs = [
      me,
      cr("live", targets),
      cr("deleting", targets, true),
      cr("suspended", { ...targets, suspend: true }),
      cr("invalid", { ...targets, refreshInterval: "soon" }),
    ];
    const rivals = rivalsOf(me, crs, specOf);
    assert.deepEqual(
      rivals.map((r) => r.claimant),
      [{ name: "live", createdAt: "2026-01-01T00:00:00Z" }],
    );
    assert.equal(rivals[0]?.spec.secretName, "team-pull");
  });
});
