import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ECRPullSecret } from "../api/types.ts";
import type { CredentialSource } from "../aws/credentials.ts";
import { TokenCache } from "../aws/token-cache.ts";
import type { EcrToken } from "../aws/token.ts";
import { ManualClock } from "../kube/clock.ts";
import { createTokenContentSource, identityOf } from "./content.ts";
import { resolveSpec, type ResolvedSpec } from "./spec.ts";

const hour = 3_600_000;
const source: CredentialSource = {
  key: "static:test",
  description: "test keys",
  provider: () => Promise.resolve({ accessKeyId: "AKIATEST", secretAccessKey: "not-a-real-secret" }),
};

function spec(): ResolvedSpec {
  const cr: ECRPullSecret = {
    apiVersion: "ecr-creds-refresher.io/v1alpha1",
    kind: "ECRPullSecret",
    metadata: { name: "cr", uid: "u1" },
    spec: { namespaces: ["a"], region: "eu-west-1" },
  };
  const resolved = resolveSpec(cr, { defaultRegion: undefined, trustedNamespaces: new Set() });
  assert.ok(!("reason" in resolved));
  return resolved;
}

function setup(): {
  clock: ManualClock;
  failWith: (err: Error | undefined) => void;
  content: ReturnType<typeof createTokenContentSource>;
  mints: () => number;
} {
  const clock = new ManualClock(Date.parse("2026-01-01T00:00:00Z"));
  let failure: Error | undefined;
  let minted = 0;
  const tokens = new TokenCache({
    clock,
    random: () => 0.5,
    mint: (_source, target): Promise<EcrToken> => {
      minted += 1;
      if (failure !== undefined) return Promise.reject(failure);
      const mintedAt = clock.now();
      return Promise.resolve({
        kind: "private",
        region: target.region,
        username: "AWS",
        password: `pw-${mintedAt}`,
        proxyEndpoint: "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        mintedAt,
        expiresAt: mintedAt + 12 * hour,
      });
    },
  });
  const content = createTokenContentSource({ credentials: { resolve: () => source }, tokens, clock });
  return { clock, failWith: (err) => (failure = err), content, mints: () => minted };
}

const cr = {} as ECRPullSecret;

describe("token content for a CR", () => {
  it("keeps offering the last good token while refreshing fails", async () => {
    const { clock, failWith, content } = setup();
    const first = await content.contentFor(cr, spec(), undefined);
    assert.ok(first.ok);
    failWith(
      Object.assign(new Error("boom"), { name: "ServiceException", $metadata: { httpStatusCode: 500 } }),
    );
    clock.advance(7 * hour);
    const failed = await content.contentFor(cr, spec(), undefined);
    assert.ok(!failed.ok);
    assert.equal(failed.problem.reason, "TokenRefreshFailed");
    assert.deepEqual(failed.lastGood, first.content);
  });

  it("says TokenExpired once the last good token has expired and refreshing still fails", async () => {
    const { clock, failWith, content } = setup();
    const first = await content.contentFor(cr, spec(), undefined);
    assert.ok(first.ok);
    failWith(
      Object.assign(new Error("boom"), { name: "ServiceException", $metadata: { httpStatusCode: 500 } }),
    );
    clock.advance(13 * hour);
    const failed = await content.contentFor(cr, spec(), undefined);
    assert.ok(!failed.ok);
    assert.equal(failed.problem.reason, "TokenExpired");
    assert.match(failed.problem.message, /expired at 2026-01-01T12:00:00Z/);
    assert.deepEqual(failed.lastGood, first.content, "the expired content is kept, never emptied");
  });

  it("reports rejected keys as AwsAuthFailed", async () => {
    const { failWith, content } = setup();
    failWith(
      Object.assign(new Error("bad keys"), {
        name: "UnrecognizedClientException",
        $metadata: { httpStatusCode: 400 },
      }),
    );
    const failed = await content.contentFor(cr, spec(), undefined);
    assert.ok(!failed.ok);
    assert.equal(failed.problem.reason, "AwsAuthFailed");
    assert.equal(failed.lastGood, undefined);
  });

  it("writes the token under its own registry when no registries are listed", async () => {
    const { content } = setup();
    const result = await content.contentFor(cr, spec(), undefined);
    assert.ok(result.ok);
    const config = JSON.parse(result.content.dockerConfigJson) as {
      auths: Record<string, { password: string }>;
    };
    assert.deepEqual(Object.keys(config.auths), ["123456789012.dkr.ecr.eu-west-1.amazonaws.com"]);
    assert.equal(result.content.expiresAt, "2026-01-01T12:00:00Z");
  });

  it("adopts the tokens an earlier run wrote instead of minting, when the identity matches", async () => {
    const first = setup();
    const written = await first.content.contentFor(cr, spec(), undefined);
    assert.ok(written.ok);
    const restarted = setup();
    restarted.clock.advance(hour);
    const adopted = await restarted.content.contentFor(cr, spec(), written.content);
    assert.ok(adopted.ok);
    assert.equal(restarted.mints(), 0);
    assert.deepEqual(adopted.content, written.content);
    assert.equal(adopted.minted, false);
    assert.equal(written.content.identity, identityOf(source));
  });

  it("mints anew when the Secrets were written by another identity or their token is due", async () => {
    const first = setup();
    const written = await first.content.contentFor(cr, spec(), undefined);
    assert.ok(written.ok);
    const other = setup();
    await other.content.contentFor(cr, spec(), { ...written.content, identity: "someone-else" });
    assert.equal(other.mints(), 1);
    const late = setup();
    late.clock.advance(7 * hour);
    const refreshed = await late.content.contentFor(cr, spec(), written.content);
    assert.ok(refreshed.ok);
    assert.equal(late.mints(), 1);
    assert.notEqual(refreshed.content.refreshedAt, written.content.refreshedAt);
  });
});
