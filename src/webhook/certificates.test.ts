import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  planTls,
  rotationPolicy,
  validityWindow,
  type CertificateFacts,
  type ServingFacts,
  type TlsState,
} from "./certificates.ts";

const hour = 3_600_000;
const day = 24 * hour;
// 90-day serving certificates, 360-day CAs, a minute to propagate a new CA.
const policy = rotationPolicy(90 * day);
const now = 1_000 * day;

function ca(fingerprint: string, notBefore: number, lifetime = policy.caValidityMs): CertificateFacts {
  return { fingerprint, notBefore, notAfter: notBefore + lifetime };
}

function serving(
  issuer: string | undefined,
  notBefore: number,
  extra: Partial<ServingFacts> = {},
): ServingFacts {
  return {
    fingerprint: "leaf",
    notBefore,
    notAfter: notBefore + policy.servingValidityMs,
    issuer,
    coversHosts: true,
    ...extra,
  };
}

const never = (): number | undefined => undefined;

describe("rotationPolicy", () => {
  it("gives the CA four serving lifetimes and at most a minute to propagate", () => {
    assert.deepEqual(rotationPolicy(90 * day), {
      servingValidityMs: 90 * day,
      caValidityMs: 360 * day,
      propagationMs: 60_000,
      backdateMs: 60_000,
    });
    assert.equal(rotationPolicy(10_000).propagationMs, 1_000);
  });
});

describe("planTls", () => {
  it("issues a CA and a serving certificate when the Secret is empty", () => {
    const plan = planTls({ cas: [], signingCa: undefined, serving: undefined }, now, policy, never);
    assert.deepEqual(
      { newCa: plan.newCa, newServing: plan.newServing, keepCas: plan.keepCas },
      {
        newCa: true,
        newServing: true,
        keepCas: [],
      },
    );
  });

  it("does nothing while both are young, and looks again when the serving certificate is due", () => {
    const state: TlsState = {
      cas: [ca("ca1", now - day)],
      signingCa: "ca1",
      serving: serving("ca1", now - day),
    };
    const plan = planTls(state, now, policy, never);
    assert.equal(plan.newCa, false);
    assert.equal(plan.newServing, false);
    assert.equal(plan.recheckAt, now - day + policy.servingValidityMs - policy.servingValidityMs / 3);
  });

  it("renews the serving certificate from the same CA when a third of its life is left", () => {
    const issued = now - 61 * day;
    const plan = planTls(
      { cas: [ca("ca1", now - 100 * day)], signingCa: "ca1", serving: serving("ca1", issued) },
      now,
      policy,
      never,
    );
    assert.equal(plan.newCa, false);
    assert.equal(plan.newServing, true, "same CA: no need to wait for trust");
  });

  it("adds a new CA when a third of the CA's life is left, and keeps serving from the old one", () => {
    const oldCa = ca("ca1", now - 250 * day);
    const plan = planTls(
      { cas: [oldCa], signingCa: "ca1", serving: serving("ca1", now - day) },
      now,
      policy,
      () => now - 200 * day,
    );
    assert.equal(plan.newCa, true);
    assert.equal(plan.newServing, false, "the API server does not trust the new CA yet");
    assert.deepEqual(plan.keepCas, ["ca1"], "the old CA stays trusted");
  });

  it("moves the serving certificate to the new CA only after the configuration has trusted it for a while", () => {
    const state: TlsState = {
      cas: [ca("ca1", now - 250 * day), ca("ca2", now - 10_000)],
      signingCa: "ca2",
      serving: serving("ca1", now - day),
    };
    const notYet = planTls(state, now, policy, () => undefined);
    assert.equal(notYet.newServing, false, "not trusted yet");
    assert.equal(notYet.recheckAt, now + policy.propagationMs);
    const tooSoon = planTls(state, now, policy, (fp) => (fp === "ca2" ? now - 1_000 : undefined));
    assert.equal(tooSoon.newServing, false);
    assert.equal(tooSoon.recheckAt, now - 1_000 + policy.propagationMs);
    const ready = planTls(state, now, policy, (fp) =>
      fp === "ca2" ? now - policy.propagationMs : undefined,
    );
    assert.equal(ready.newServing, true);
    assert.equal(ready.newCa, false);
    assert.deepEqual(ready.keepCas, ["ca1", "ca2"]);
  });

  it("drops a CA from the bundle once it has expired", () => {
    const state: TlsState = {
      cas: [ca("old", now - policy.caValidityMs - 1), ca("ca2", now - 10 * day)],
      signingCa: "ca2",
      serving: serving("ca2", now - day),
    };
    assert.deepEqual(planTls(state, now, policy, never).keepCas, ["ca2"]);
  });

  it("replaces at once a serving certificate that is expired, signed by an untrusted CA, or for other hosts", () => {
    const cas = [ca("ca1", now - day)];
    for (const broken of [
      serving("ca1", now - policy.servingValidityMs - 1),
      serving(undefined, now - day),
      serving("gone", now - day),
      serving("ca1", now - day, { coversHosts: false }),
    ]) {
      const plan = planTls({ cas, signingCa: "ca1", serving: broken }, now, policy, never);
      assert.equal(plan.newServing, true, JSON.stringify(broken));
      assert.equal(plan.newCa, false);
    }
  });

  it("issues a new CA when the Secret has no key for its newest CA", () => {
    const plan = planTls(
      { cas: [ca("ca1", now - day)], signingCa: undefined, serving: serving("ca1", now - day) },
      now,
      policy,
      never,
    );
    assert.equal(plan.newCa, true);
    assert.equal(plan.newServing, false);
    assert.deepEqual(plan.keepCas, ["ca1"]);
  });

  it("looks again by a CA's expiry at the latest", () => {
    const soon = now + 1_000;
    const state: TlsState = {
      cas: [{ fingerprint: "expiring", notBefore: now - day, notAfter: soon }, ca("ca2", now - day)],
      signingCa: "ca2",
      serving: serving("ca2", now - day),
    };
    assert.equal(planTls(state, now, policy, never).recheckAt, soon);
  });
});

describe("validityWindow", () => {
  it("backdates notBefore and never outlives the issuer", () => {
    assert.deepEqual(validityWindow(now, policy.servingValidityMs, policy), {
      notBefore: now - policy.backdateMs,
      notAfter: now + policy.servingValidityMs,
    });
    assert.equal(validityWindow(now, policy.servingValidityMs, policy, now + day).notAfter, now + day);
  });
});
