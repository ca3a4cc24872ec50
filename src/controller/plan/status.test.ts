import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ECRPullSecret } from "../../api/types.ts";
import type { CredentialSource } from "../../aws/credentials.ts";
import { TokenCache } from "../../aws/token-cache.ts";
import type { EcrToken } from "../../aws/token.ts";
import { ManualClock } from "../../clock.ts";
import { createTokenContentSource } from "../content.ts";
import { isSpecProblem, resolveSpec } from "./spec.ts";
import { buildStatus, type Outcome, type RegistryState, type TokenProblem } from "./status.ts";

const now = "2026-01-01T07:00:00Z";
const hosts = {
  euWest: "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
  usEast: "123456789012.dkr.ecr.us-east-1.amazonaws.com",
  public: "public.ecr.aws",
};

function reconciled(registries: RegistryState[], tokenProblem?: TokenProblem): Outcome {
  return {
    kind: "reconciled",
    desired: 2,
    synced: 2,
    failures: [],
    token: {
      expiresAt: "2026-01-01T12:00:00Z",
      refreshedAt: "2026-01-01T07:00:00Z",
      nextRefreshAt: undefined,
    },
    tokenProblem,
    registries,
  };
}

const fresh: RegistryState = {
  host: hosts.euWest,
  state: "Fresh",
  expiresAt: Date.parse("2026-01-01T19:00:00Z"),
  mintedAt: Date.parse("2026-01-01T07:00:00Z"),
  problem: undefined,
};

describe("status.registries", () => {
  it("lists each host with its own token times, and the error only where refreshing fails", () => {
    const failing: RegistryState = {
      host: hosts.public,
      state: "Kept",
      expiresAt: Date.parse("2026-01-01T12:00:00Z"),
      mintedAt: Date.parse("2026-01-01T00:00:00Z"),
      problem: {
        reason: "TokenRefreshFailed",
        message: "ECR Public GetAuthorizationToken: ServerException: x",
      },
    };
    const missing: RegistryState = {
      host: hosts.usEast,
      state: "Missing",
      expiresAt: undefined,
      mintedAt: undefined,
      problem: { reason: "AwsAuthFailed", message: "AccessDeniedException: no" },
    };
    const problem = {
      reason: "PartiallyRefreshed" as const,
      message: "1 of 3 registries refreshed; failing: ...",
    };
    const status = buildStatus(undefined, 4, reconciled([fresh, failing, missing], problem), now);
    assert.deepEqual(status.registries, [
      { host: hosts.euWest, tokenExpiresAt: "2026-01-01T19:00:00Z", lastRefreshTime: "2026-01-01T07:00:00Z" },
      {
        host: hosts.public,
        tokenExpiresAt: "2026-01-01T12:00:00Z",
        lastRefreshTime: "2026-01-01T00:00:00Z",
        lastError: failing.problem,
      },
      { host: hosts.usEast, lastError: missing.problem },
    ]);
    const ready = status.conditions?.find((c) => c.type === "Ready");
    assert.deepEqual(
      [ready?.status, ready?.reason, ready?.message],
      ["False", problem.reason, problem.message],
    );
    assert.equal(status.tokenExpiresAt, "2026-01-01T12:00:00Z");
    assert.equal(status.nextRefreshTime, undefined, "a failing refresh is retried on the backoff");
  });

  it("cuts an error message to the status bound", () => {
    const long: RegistryState = {
      ...fresh,
      state: "Kept",
      problem: { reason: "TokenRefreshFailed", message: "x".repeat(5000) },
    };
    const status = buildStatus(undefined, 1, reconciled([long]), now);
    assert.equal(status.registries?.[0]?.lastError?.message.length, 1024);
  });

  it("drops the list when the CR is suspended", () => {
    const previous = buildStatus(undefined, 1, reconciled([fresh]), now);
    assert.equal(buildStatus(previous, 2, { kind: "suspended" }, now).registries, undefined);
  });

  it("never carries a secret from what AWS answered into a registry's error", async () => {
    const secretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const sessionToken = "FwoGZXIvYXdzEXAMPLESESSIONTOKENdGhpcyBpcyBub3QgYSByZWFsIHRva2Vu";
    const accessKeyId = "AKIAIOSFODNN7EXAMPLE";
    const source: CredentialSource = {
      key: "static:AKIA****MPLE:0123",
      description: "static credentials AKIA****MPLE",
      provider: () => Promise.resolve({ accessKeyId, secretAccessKey, sessionToken }),
    };
    const clock = new ManualClock(Date.parse(now));
    const tokens = new TokenCache({
      clock,
      mint: (_source, target): Promise<EcrToken> => {
        if (target.kind === "public") {
          const quoted = `key ${accessKeyId} secret ${secretAccessKey} token ${sessionToken} rejected`;
          return Promise.reject(
            Object.assign(new Error(quoted), {
              name: "AccessDeniedException",
              $metadata: { httpStatusCode: 403 },
            }),
          );
        }
        return Promise.resolve({
          kind: "private",
          region: target.region,
          username: "AWS",
          password: "ecr-password-never-in-status",
          mintedAt: clock.now(),
          expiresAt: clock.now() + 12 * 3_600_000,
        });
      },
    });
    const content = createTokenContentSource({ credentials: { resolve: () => source }, tokens, clock });
    const cr: ECRPullSecret = {
      apiVersion: "ecr-creds-refresher.io/v1alpha1",
      kind: "ECRPullSecret",
      metadata: { name: "cr", uid: "u" },
      spec: { registries: [hosts.euWest, hosts.public] },
    };
    const spec = resolveSpec(cr, { defaultRegion: undefined, trustedNamespaces: new Set() });
    assert.ok(!isSpecProblem(spec));
    const result = await content.contentFor(cr, spec, undefined);
    const status = buildStatus(undefined, 1, reconciled(result.registries, result.problem), now);
    const shown = JSON.stringify(status);
    assert.match(shown, /AccessDeniedException/);
    assert.match(shown, /AKIA\*\*\*\*MPLE/, "the key id is named masked");
    for (const secret of [secretAccessKey, sessionToken, accessKeyId, "ecr-password-never-in-status"]) {
      assert.ok(!shown.includes(secret), `status reveals a secret: ${shown}`);
    }
  });
});
