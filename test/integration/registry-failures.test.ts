// One registry's token failing while the others work, against the real API server, moto and the
// ECR Public stand-in, with failures injected at the AWS proxy for one service or one region: the
// Secrets carry every registry whose token is good, a failing one keeps its last good entry until
// it expires, and status, Events and metrics name the failing host only. An offset clock moves the
// operator past refresh times and expiry.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import type { CoreV1Event } from "@kubernetes/client-node";
import type { ECRPullSecret } from "../../src/api/types.ts";
import { Metrics } from "../../src/observability/metrics.ts";
import {
  ecrPublicTarget,
  startEcrPublicStandIn,
  type EcrPublicStandIn,
} from "../harness/ecr-public-standin.ts";
import { motoDefaultCredentials } from "../harness/moto.ts";
import { OffsetClock } from "../harness/offset-clock.ts";
import {
  createNamespace,
  createPullSecretCr,
  dockerConfigOf,
  readCr,
  readSecret,
  startOperatorEnv,
  waitForPullSecret,
  waitForReady,
  type DockerConfig,
  type OperatorEnv,
} from "../harness/operator-env.ts";
import { metricValue } from "../harness/prometheus-text.ts";
import { eventually } from "../harness/wait.ts";

const hour = 3_600_000;
const hosts = {
  euWest: "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
  usEast: "123456789012.dkr.ecr.us-east-1.amazonaws.com",
  public: "public.ecr.aws",
};
const registries = [hosts.euWest, hosts.usEast, hosts.public];

function registryOf(cr: ECRPullSecret, host: string): NonNullable<ECRPullSecret["status"]>["registries"] {
  return cr.status?.registries?.filter((r) => r.host === host);
}

/** The registry hosts (label values) that have a sample of `name` for one CR. */
function seriesHosts(text: string, name: string, cr: string): string[] {
  const pattern = new RegExp(`^${name}\\{ecrpullsecret="${cr}",registry="([^"]+)"\\}`, "gm");
  return [...text.matchAll(pattern)].map((m) => m[1] ?? "").sort();
}

describe("one failing registry does not take the others down", () => {
  let env: OperatorEnv;
  let ecrPublic: EcrPublicStandIn;
  const clock = new OffsetClock();
  const metrics = new Metrics();
  /** Goes into every private token's password, so that a refresh shows in the Secret. */
  let generation = 1;

  before(async () => {
    env = await startOperatorEnv({ startOperator: false });
    ecrPublic = await startEcrPublicStandIn();
    env.aws.routeTarget(ecrPublicTarget, ecrPublic.endpoint);
    env.aws.setEcrTokenPassword((region) => `${region ?? "unsigned"}-pw-${generation}`);
    await env.startOperator({}, { clock, metrics });
  });

  after(async () => {
    await env.stop();
    await ecrPublic.stop();
  });

  async function events(cr: string): Promise<CoreV1Event[]> {
    const list = await env.core.listNamespacedEvent({ namespace: "default" });
    return list.items.filter((e) => e.involvedObject.name === cr);
  }

  async function auths(namespace: string, name: string): Promise<DockerConfig["auths"]> {
    return dockerConfigOf(await readSecret(env, namespace, name)).auths;
  }

  /** No password, secret key or token of the test in a CR's status or Events. */
  async function assertNoSecrets(cr: string, secrets: readonly string[]): Promise<void> {
    const shown = JSON.stringify((await readCr(env, cr)).status) + JSON.stringify(await events(cr));
    for (const secret of [...secrets, motoDefaultCredentials.secretAccessKey, ecrPublic.password]) {
      assert.ok(!shown.includes(secret), `status or Events of ${cr} reveal a secret`);
    }
  }

  it("writes the private hosts at once while ECR Public fails, and adds it after recovery", async () => {
    env.aws.setFault("error", { service: "ecr-public" });
    try {
      await createNamespace(env, "public-first");
      const createdAt = Date.now();
      await createPullSecretCr(env, "public-first", { namespaces: ["public-first"], registries });
      const secret = await waitForPullSecret(env, "public-first", "public-first", "default", {
        timeoutMs: 10_000,
      });
      assert.ok(Date.now() - createdAt < 10_000);
      assert.deepEqual(Object.keys(dockerConfigOf(secret).auths).sort(), [hosts.euWest, hosts.usEast].sort());

      const cr = await waitForReady(env, "public-first", "PartiallyRefreshed");
      const ready = cr.status?.conditions?.find((c) => c.type === "Ready");
      assert.equal(ready?.status, "False");
      assert.match(
        ready.message,
        /^2 of 3 registries refreshed; failing: public\.ecr\.aws \(no token yet\): ECR Public GetAuthorizationToken .*ServerException/,
      );
      const [publicStatus] = registryOf(cr, hosts.public) ?? [];
      assert.equal(publicStatus?.lastError?.reason, "TokenRefreshFailed");
      assert.equal(publicStatus.tokenExpiresAt, undefined, "it never had a token");
      for (const host of [hosts.euWest, hosts.usEast]) {
        const [status] = registryOf(cr, host) ?? [];
        assert.ok(status?.tokenExpiresAt !== undefined && status.lastError === undefined, host);
      }

      const text = await metrics.registry.metrics();
      const failing = "ecr_creds_refresher_registry_refresh_failing";
      assert.equal(metricValue(text, failing, { ecrpullsecret: "public-first", registry: hosts.public }), 1);
      assert.equal(metricValue(text, failing, { ecrpullsecret: "public-first", registry: hosts.euWest }), 0);
      assert.deepEqual(seriesHosts(text, failing, "public-first"), [...registries].sort());
      assert.deepEqual(
        seriesHosts(text, "ecr_creds_refresher_token_expiry_timestamp_seconds", "public-first"),
        [hosts.euWest, hosts.usEast].sort(),
      );
      assert.ok((await events("public-first")).some((e) => e.reason === "PartiallyRefreshed"));
    } finally {
      env.aws.setFault("none", { service: "ecr-public" });
    }

    const before = await readSecret(env, "public-first", "public-first");
    await eventually(
      async () => {
        const now = await auths("public-first", "public-first");
        assert.equal(now[hosts.public]?.password, ecrPublic.password);
      },
      { timeoutMs: 60_000, message: "public.ecr.aws added after recovery" },
    );
    const recovered = await waitForReady(env, "public-first", "Synced");
    assert.ok(recovered.status?.registries?.every((r) => r.lastError === undefined));
    const after = await readSecret(env, "public-first", "public-first");
    assert.equal(after.metadata?.uid, before.metadata?.uid, "updated in place");
    const text = await metrics.registry.metrics();
    assert.equal(
      metricValue(text, "ecr_creds_refresher_registry_refresh_failing", {
        ecrpullsecret: "public-first",
        registry: hosts.public,
      }),
      0,
    );
    await assertNoSecrets(
      "public-first",
      Object.values(await auths("public-first", "public-first")).map((a) => a.password),
    );
  });

  it("keeps a failing region's last good entry through a refresh, and removes only it at expiry", async () => {
    await createNamespace(env, "regions");
    await createPullSecretCr(env, "regions", { namespaces: ["regions"], registries });
    await waitForPullSecret(env, "regions", "regions");
    const first = await waitForReady(env, "regions", "Synced");
    const initial = await auths("regions", "regions");
    const [usEastFirst] = registryOf(first, hosts.usEast) ?? [];
    const usEastExpiry = usEastFirst?.tokenExpiresAt;
    assert.ok(usEastExpiry !== undefined);
    const operator = env.operator;
    assert.ok(operator !== undefined);

    env.aws.setFault("error", { service: "ecr", region: "us-east-1" });
    try {
      // Past the tokens' refresh time (half their 12 h): eu-west-1 refreshes, us-east-1 cannot.
      generation = 2;
      clock.jump(7 * hour);
      operator.queue.add("regions");
      const refreshed = await eventually(
        async () => {
          const now = await auths("regions", "regions");
          assert.equal(now[hosts.euWest]?.password, "eu-west-1-pw-2");
          return now;
        },
        { timeoutMs: 30_000, message: "eu-west-1 refreshed" },
      );
      assert.equal(
        refreshed[hosts.usEast]?.password,
        initial[hosts.usEast]?.password,
        "the last good entry is kept",
      );
      assert.equal(refreshed[hosts.usEast]?.password, "us-east-1-pw-1");
      assert.ok(refreshed[hosts.public] !== undefined);

      const partial = await waitForReady(env, "regions", "PartiallyRefreshed");
      const ready = partial.status?.conditions?.find((c) => c.type === "Ready");
      assert.match(
        ready?.message ?? "",
        /^2 of 3 registries refreshed; failing: 123456789012\.dkr\.ecr\.us-east-1\.amazonaws\.com \(last good token kept until [^)]+\): ECR GetAuthorizationToken in us-east-1 .*ServerException/,
      );
      const [kept] = registryOf(partial, hosts.usEast) ?? [];
      assert.equal(kept?.tokenExpiresAt, usEastExpiry);
      assert.equal(kept.lastError?.reason, "TokenRefreshFailed");
      let text = await metrics.registry.metrics();
      for (const [host, value] of [
        [hosts.euWest, 0],
        [hosts.usEast, 1],
        [hosts.public, 0],
      ] as const) {
        const labels = { ecrpullsecret: "regions", registry: host };
        assert.equal(metricValue(text, "ecr_creds_refresher_registry_refresh_failing", labels), value, host);
      }

      // Past the kept token's expiry while us-east-1 still fails.
      clock.jump(6 * hour);
      operator.queue.add("regions");
      await eventually(
        async () => {
          const now = await auths("regions", "regions");
          assert.deepEqual(Object.keys(now).sort(), [hosts.euWest, hosts.public].sort());
        },
        { timeoutMs: 30_000, message: "only the expired entry removed" },
      );
      const removal = await eventually(
        async () => {
          const found = (await events("regions")).find((e) => e.reason === "RegistryTokenExpired");
          assert.ok(found !== undefined, "no RegistryTokenExpired Event yet");
          return found;
        },
        { timeoutMs: 30_000, message: "an Event about the removed entry" },
      );
      assert.equal(removal.type, "Warning");
      assert.match(
        removal.message ?? "",
        /123456789012\.dkr\.ecr\.us-east-1\.amazonaws\.com: the token expired at/,
      );
      assert.doesNotMatch(removal.message ?? "", /eu-west-1\.amazonaws\.com|public\.ecr\.aws/);
      const expired = await eventually(
        async () => {
          const cr = await readCr(env, "regions");
          const [status] = registryOf(cr, hosts.usEast) ?? [];
          assert.equal(status?.lastError?.reason, "TokenExpired");
          return cr;
        },
        { timeoutMs: 30_000, message: "us-east-1 reported as expired" },
      );
      const [usEast] = registryOf(expired, hosts.usEast) ?? [];
      assert.equal(usEast?.tokenExpiresAt, usEastExpiry, "the expiry it had, now past");
      // The expiring-soon alert compares each host's expiry with the time: only us-east-1 is near.
      text = await metrics.registry.metrics();
      const nowSeconds = clock.now() / 1000;
      for (const host of registries) {
        const left =
          metricValue(text, "ecr_creds_refresher_token_expiry_timestamp_seconds", {
            ecrpullsecret: "regions",
            registry: host,
          }) - nowSeconds;
        assert.equal(left < 3600, host === hosts.usEast, `${host}: ${left} s left`);
      }
    } finally {
      env.aws.setFault("none", { service: "ecr", region: "us-east-1" });
    }

    operator.queue.add("regions");
    await eventually(
      async () => {
        const now = await auths("regions", "regions");
        assert.equal(now[hosts.usEast]?.password, "us-east-1-pw-2");
      },
      { timeoutMs: 30_000, message: "us-east-1 back after recovery" },
    );
    await waitForReady(env, "regions", "Synced");
    await assertNoSecrets("regions", [
      "eu-west-1-pw-1",
      "eu-west-1-pw-2",
      "us-east-1-pw-1",
      "us-east-1-pw-2",
    ]);
  });
});
