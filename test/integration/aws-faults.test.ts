// AWS failing under the operator: a fault-injecting proxy in front of moto answers 500s, throttles
// or never answers. The operator backs off (few calls, further and further apart), keeps the
// Secrets it wrote, and recovers once AWS answers again.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import type { V1Secret } from "@kubernetes/client-node";

import type { Fault } from "../harness/aws-proxy.ts";
import {
  createNamespace,
  createPullSecretCr,
  operatorNamespace,
  readSecret,
  replaceCredentialsKey,
  startOperatorEnv,
  waitForPullSecret,
  waitForReady,
  type OperatorEnv,
} from "../harness/operator-env.ts";
import { eventually } from "../harness/wait.ts";

const refreshedAt = "ecr-creds-refresher.io/refreshed-at";
/** The workqueue's first retry delay (defaultBackoff.baseMs); each failure doubles it. */
const backoffBaseMs = 500;
/** HTTP calls per mint: the SDK clients make maxAttempts = 2. */
const callsPerMint = 2;

describe("AWS faults between the operator and moto", () => {
  let env: OperatorEnv;
  let rotation = 0;

  before(async () => {
    env = await startOperatorEnv();
    await env.core.createNamespacedSecret({
      namespace: operatorNamespace,
      body: {
        metadata: { name: "fault-keys" },
        stringData: { AWS_ACCESS_KEY_ID: "AKIAFAULTKEYS0000000", AWS_SECRET_ACCESS_KEY: "fault-secret" },
      },
    });
    await createNamespace(env, "faults");
    await createPullSecretCr(env, "faults", {
      namespaces: ["faults"],
      aws: { credentialsSecretRef: { namespace: operatorNamespace, name: "fault-keys" } },
    });
    await waitForPullSecret(env, "faults", "faults");
    await waitForReady(env, "faults");
  });

  after(async () => {
    env.aws.setFault("none");
    await env.stop();
  });

  /** New keys make the operator mint a new token at once; returns the new access key id. */
  async function rotateKeys(): Promise<string> {
    rotation += 1;
    const keyId = `AKIAFAULTKEYS${String(rotation).padStart(7, "0")}`;
    await replaceCredentialsKey(env, "fault-keys", "AWS_ACCESS_KEY_ID", keyId);
    return keyId;
  }

  function callTimes(keyId: string): number[] {
    return env.aws
      .calls()
      .filter((c) => c.operation === "ecr:GetAuthorizationToken" && c.accessKeyId === keyId)
      .map((c) => c.at);
  }

  /** Once AWS answers again, the CR is Synced and its Secret refreshed since `before`. */
  async function expectRefreshedSince(before: V1Secret): Promise<void> {
    await waitForReady(env, "faults", "Synced", { timeoutMs: 90_000 });
    const recovered = await readSecret(env, "faults", "faults");
    assert.notEqual(
      recovered.metadata?.annotations?.[refreshedAt],
      before.metadata?.annotations?.[refreshedAt],
    );
  }

  async function failThenRecover(fault: Fault): Promise<void> {
    const before = await readSecret(env, "faults", "faults");
    env.aws.setFault(fault);
    const keyId = await rotateKeys();
    try {
      await waitForReady(env, "faults", "TokenRefreshFailed");
      // The operator keeps retrying: wait for its 10th call, then look at when the calls came.
      const times = await eventually(
        () => {
          const seen = callTimes(keyId);
          assert.ok(seen.length >= 10, `${seen.length} calls so far`);
          return seen.slice(0, 10);
        },
        { timeoutMs: 60_000, message: "10 calls under the fault" },
      );
      const spanMs = (times.at(-1) ?? 0) - (times[0] ?? 0);
      const gaps = times.slice(1).map((t, i) => t - (times[i] ?? t));
      const shown = `calls at ${times.map((t) => t - (times[0] ?? 0)).join(", ")} ms`;
      // Without backoff ten calls take well under a second.
      assert.ok(spanMs >= 3_000, `no backoff: ${shown}`);
      // Exponential backoff allows about log2(window / base) retries in a window, each of a few
      // calls; +3 for the first try and the immediate retry a status or credentials change causes.
      const bound = callsPerMint * (Math.log2(spanMs / backoffBaseMs) + 3);
      assert.ok(times.length <= bound, `more than ${bound.toFixed(1)} calls: ${shown}`);
      // The pauses grow beyond the base delay and the SDK's own retry delay.
      assert.ok(Math.max(...gaps) >= 2_000, `the pauses do not grow: ${shown}`);
      const after = await readSecret(env, "faults", "faults");
      assert.equal(after.metadata?.resourceVersion, before.metadata?.resourceVersion);
      assert.deepEqual(after.data, before.data);
    } finally {
      env.aws.setFault("none");
    }
    await expectRefreshedSince(before);
  }

  it("backs off on 500s, keeps the Secret and recovers", async () => {
    await failThenRecover("error");
  });

  it("backs off on throttling, keeps the Secret and recovers", async () => {
    await failThenRecover("throttle");
  });

  it("gives up on a hanging AWS within the request timeout, keeps the Secret and recovers", async () => {
    const before = await readSecret(env, "faults", "faults");
    env.aws.setFault("hang");
    const keyId = await rotateKeys();
    try {
      const cr = await waitForReady(env, "faults", "TokenRefreshFailed", { timeoutMs: 60_000 });
      const ready = cr.status?.conditions?.find((c) => c.type === "Ready");
      assert.match(ready?.message ?? "", /timed out/);
      assert.ok(callTimes(keyId).length <= callsPerMint + 1, `${callTimes(keyId).length} calls`);
      const after = await readSecret(env, "faults", "faults");
      assert.equal(after.metadata?.resourceVersion, before.metadata?.resourceVersion);
    } finally {
      env.aws.setFault("none");
    }
    await expectRefreshedSince(before);
  });
});
