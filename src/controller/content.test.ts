import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ECRPullSecret, ECRPullSecretSpec } from "../api/types.ts";
import type { CredentialSource } from "../aws/credentials.ts";
import { TokenCache, type TokenTarget } from "../aws/token-cache.ts";
import type { EcrToken } from "../aws/token.ts";
import { ManualClock } from "../clock.ts";
import type { Observer } from "../observability/observer.ts";
import { createTokenContentSource, identityOf, tokensFromContent, type ContentResult } from "./content.ts";
import type { SecretContent } from "./plan/desired.ts";
import { parseAuths } from "./plan/dockerconfig.ts";
import { isSpecProblem, resolveSpec, type ResolvedSpec } from "./plan/spec.ts";
import type { TokenProblem } from "./plan/status.ts";

const hour = 3_600_000;
const source: CredentialSource = {
  key: "static:test",
  description: "test keys",
  provider: () => Promise.resolve({ accessKeyId: "AKIATEST", secretAccessKey: "not-a-real-secret" }),
};
const hosts = {
  euWest: "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
  euWestOther: "210987654321.dkr.ecr.eu-west-1.amazonaws.com",
  usEast: "123456789012.dkr.ecr.us-east-1.amazonaws.com",
  public: "public.ecr.aws",
};

function spec(fields: ECRPullSecretSpec = { namespaces: ["a"], region: "eu-west-1" }): ResolvedSpec {
  const cr: ECRPullSecret = {
    apiVersion: "ecr-creds-refresher.io/v1alpha1",
    kind: "ECRPullSecret",
    metadata: { name: "cr", uid: "u1" },
    spec: fields,
  };
  const resolved = resolveSpec(cr, { defaultRegion: undefined, trustedNamespaces: new Set() });
  assert.ok(!isSpecProblem(resolved));
  return resolved;
}

const multi = (): ResolvedSpec => spec({ namespaces: ["a"], registries: Object.values(hosts) });

const serverError = (): Error =>
  Object.assign(new Error("boom"), { name: "ServiceException", $metadata: { httpStatusCode: 500 } });

/** Which tokens fail: "all", "public" (ECR Public) or a private region, mapped to the error to throw. */
type Failures = Map<string, Error>;

function setup(resolve: () => CredentialSource | TokenProblem = () => source): {
  clock: ManualClock;
  failing: Failures;
  failWith: (err: Error | undefined) => void;
  content: ReturnType<typeof createTokenContentSource>;
  mints: () => number;
  /** The kind of each AWS error the content source reported so far. */
  awsErrors: () => string[];
} {
  const clock = new ManualClock(Date.parse("2026-01-01T00:00:00Z"));
  const failing: Failures = new Map();
  let minted = 0;
  const tokens = new TokenCache({
    clock,
    random: () => 0.5,
    mint: (_source, target: TokenTarget): Promise<EcrToken> => {
      minted += 1;
      const failure = failing.get("all") ?? failing.get(target.kind === "public" ? "public" : target.region);
      if (failure !== undefined) return Promise.reject(failure);
      const mintedAt = clock.now();
      return Promise.resolve({
        kind: target.kind,
        region: target.region,
        username: "AWS",
        password: `pw-${target.kind}-${target.region}-${mintedAt}`,
        proxyEndpoint: `https://123456789012.dkr.ecr.${target.region}.amazonaws.com`,
        mintedAt,
        expiresAt: mintedAt + 12 * hour,
      });
    },
  });
  const awsErrors: string[] = [];
  const observer: Observer = {
    observe: (observation) => {
      if (observation.type === "AwsError") awsErrors.push(observation.kind);
    },
  };
  const content = createTokenContentSource({ credentials: { resolve }, tokens, clock, observer });
  return {
    clock,
    failing,
    failWith: (err) => (err === undefined ? failing.delete("all") : failing.set("all", err)),
    content,
    mints: () => minted,
    awsErrors: () => [...awsErrors],
  };
}

function auths(content: SecretContent | undefined): Record<string, string> {
  assert.ok(content !== undefined, "no content");
  return Object.fromEntries(
    Object.entries(parseAuths(content.dockerConfigJson)).map(([host, entry]) => [
      host,
      String(entry?.password),
    ]),
  );
}

function registry(result: ContentResult, host: string): ContentResult["registries"][number] {
  const found = result.registries.find((r) => r.host === host);
  assert.ok(found !== undefined, `no registry ${host}`);
  return found;
}

describe("token content for a CR", () => {
  it("keeps offering the last good token while refreshing fails", async () => {
    const { clock, failWith, content, awsErrors } = setup();
    const first = await content.contentFor(spec(), undefined);
    assert.equal(first.problem, undefined);
    failWith(serverError());
    clock.advance(7 * hour);
    const failed = await content.contentFor(spec(), first.content);
    assert.equal(failed.problem?.reason, "TokenRefreshFailed");
    assert.deepEqual(failed.content, first.content);
    assert.equal(failed.registries[0]?.state, "Kept");
    assert.equal(failed.refreshAt, undefined);
    assert.deepEqual(awsErrors(), ["Unavailable"]);
  });

  it("says TokenExpired once the last good token has expired, and never empties the Secrets", async () => {
    const { clock, failWith, content } = setup();
    const first = await content.contentFor(spec(), undefined);
    failWith(serverError());
    clock.advance(13 * hour);
    const failed = await content.contentFor(spec(), first.content);
    assert.equal(failed.problem?.reason, "TokenExpired");
    assert.match(failed.problem.message, /expired at 2026-01-01T12:00:00Z/);
    assert.equal(failed.content, undefined, "the Secrets are left as they are");
    assert.deepEqual(failed.droppedEntries, [], "so no entry is dropped");
    assert.equal(failed.registries[0]?.state, "Expired");
  });

  it("reports rejected keys as AwsAuthFailed", async () => {
    const { failWith, content } = setup();
    failWith(
      Object.assign(new Error("bad keys"), {
        name: "UnrecognizedClientException",
        $metadata: { httpStatusCode: 400 },
      }),
    );
    const failed = await content.contentFor(spec(), undefined);
    assert.equal(failed.problem?.reason, "AwsAuthFailed");
    assert.equal(failed.content, undefined);
    assert.deepEqual(failed.registries, [], "without registries the host is unknown until a token names it");
  });

  it("writes the token under its own registry when no registries are listed", async () => {
    const { content } = setup();
    const result = await content.contentFor(spec(), undefined);
    assert.deepEqual(Object.keys(auths(result.content)), [hosts.euWest]);
    assert.equal(result.content?.expiresAt, "2026-01-01T12:00:00Z");
    assert.deepEqual(result.registries, [
      {
        host: hosts.euWest,
        state: "Fresh",
        expiresAt: Date.parse("2026-01-01T12:00:00Z"),
        mintedAt: Date.parse("2026-01-01T00:00:00Z"),
        problem: undefined,
      },
    ]);
  });

  it("adopts the tokens an earlier run wrote instead of minting, when the identity matches", async () => {
    const first = setup();
    const written = await first.content.contentFor(spec(), undefined);
    const restarted = setup();
    restarted.clock.advance(hour);
    const adopted = await restarted.content.contentFor(spec(), written.content);
    assert.equal(restarted.mints(), 0);
    assert.deepEqual(adopted.content, written.content);
    assert.equal(adopted.minted, false);
    assert.equal(written.content?.identity, identityOf(source));
  });

  it("mints anew when the Secrets were written by another identity or their token is due", async () => {
    const first = setup();
    const written = await first.content.contentFor(spec(), undefined);
    assert.ok(written.content !== undefined);
    const other = setup();
    await other.content.contentFor(spec(), { ...written.content, identity: "someone-else" });
    assert.equal(other.mints(), 1);
    const late = setup();
    late.clock.advance(7 * hour);
    const refreshed = await late.content.contentFor(spec(), written.content);
    assert.equal(late.mints(), 1);
    assert.notEqual(refreshed.content?.refreshedAt, written.content.refreshedAt);
  });
});

describe("tokens that fail and recover per registry", () => {
  it("writes every registry whose token is good and leaves out one that never had a token", async () => {
    const { failing, content, awsErrors } = setup();
    failing.set("public", serverError());
    const result = await content.contentFor(multi(), undefined);
    assert.deepEqual(
      Object.keys(auths(result.content)).sort(),
      [hosts.euWest, hosts.euWestOther, hosts.usEast].sort(),
    );
    assert.equal(result.problem?.reason, "PartiallyRefreshed");
    assert.match(
      result.problem.message,
      /^3 of 4 registries refreshed; failing: public\.ecr\.aws \(no token yet\): /,
    );
    assert.deepEqual(
      result.registries.map((r) => [r.host, r.state]),
      [
        [hosts.euWest, "Fresh"],
        [hosts.euWestOther, "Fresh"],
        [hosts.usEast, "Fresh"],
        [hosts.public, "Missing"],
      ],
    );
    const publicState = registry(result, hosts.public);
    assert.equal(publicState.expiresAt, undefined);
    assert.equal(publicState.problem?.reason, "TokenRefreshFailed");
    assert.deepEqual(awsErrors(), ["Unavailable"]);
    assert.ok(result.refreshAt !== undefined, "the good tokens' refresh is still planned");
  });

  it("adds a registry once its token can be minted", async () => {
    const { failing, content } = setup();
    failing.set("public", serverError());
    const partial = await content.contentFor(multi(), undefined);
    failing.clear();
    const whole = await content.contentFor(multi(), partial.content);
    assert.equal(whole.problem, undefined);
    assert.deepEqual(Object.keys(auths(whole.content)).sort(), Object.values(hosts).sort());
    assert.equal(
      auths(whole.content)[hosts.euWest],
      auths(partial.content)[hosts.euWest],
      "no needless mint",
    );
    assert.ok(whole.minted);
  });

  /** Mints everything, then refreshes 7 h later with us-east-1 failing. */
  async function usEastFailsOnRefresh() {
    const fixture = setup();
    const first = await fixture.content.contentFor(multi(), undefined);
    fixture.failing.set("us-east-1", serverError());
    fixture.clock.advance(7 * hour);
    const result = await fixture.content.contentFor(multi(), first.content);
    return { ...fixture, first, result };
  }

  it("keeps a failing region's last good entry while it is valid and refreshes the others", async () => {
    const { first, result } = await usEastFailsOnRefresh();
    const before = auths(first.content);
    const after = auths(result.content);
    assert.equal(after[hosts.usEast], before[hosts.usEast], "the failing region keeps its entry");
    assert.notEqual(after[hosts.euWest], before[hosts.euWest], "the other region is refreshed");
    assert.notEqual(after[hosts.public], before[hosts.public]);
    assert.equal(result.problem?.reason, "PartiallyRefreshed");
    assert.match(
      result.problem.message,
      /^3 of 4 registries refreshed; failing: 123456789012\.dkr\.ecr\.us-east-1\.amazonaws\.com \(last good token kept until 2026-01-01T12:00:00Z\): /,
    );
    assert.equal(registry(result, hosts.usEast).state, "Kept");
    assert.equal(registry(result, hosts.usEast).expiresAt, Date.parse("2026-01-01T12:00:00Z"));
    assert.equal(result.content?.expiresAt, "2026-01-01T12:00:00Z", "the earliest entry's expiry");
  });

  it("removes only the failing registry's entry once its token has expired", async () => {
    const { clock, content, result: kept } = await usEastFailsOnRefresh();
    clock.advance(6 * hour);
    const expired = await content.contentFor(multi(), kept.content);
    assert.deepEqual(
      Object.keys(auths(expired.content)).sort(),
      [hosts.euWest, hosts.euWestOther, hosts.public].sort(),
    );
    const usEast = registry(expired, hosts.usEast);
    assert.equal(usEast.state, "Expired");
    assert.equal(usEast.problem?.reason, "TokenExpired");
    assert.equal(usEast.expiresAt, Date.parse("2026-01-01T12:00:00Z"));
    assert.match(
      expired.problem?.message ?? "",
      /us-east-1\.amazonaws\.com \(entry removed\): the token expired at/,
    );
  });

  it("names the registry whose expired entry it drops, once", async () => {
    const { clock, content, result: kept } = await usEastFailsOnRefresh();
    assert.deepEqual(kept.droppedEntries, [], "a kept entry is not dropped");
    clock.advance(6 * hour);
    const expired = await content.contentFor(multi(), kept.content);
    assert.deepEqual(
      expired.droppedEntries.map((r) => r.host),
      [hosts.usEast],
    );
    const after = await content.contentFor(multi(), expired.content);
    assert.equal(registry(after, hosts.usEast).state, "Expired");
    assert.deepEqual(after.droppedEntries, [], "the Secrets no longer hold it");
  });

  it("keeps every entry when every registry fails, with the reason the tokens share", async () => {
    const { clock, failWith, content, awsErrors } = setup();
    const first = await content.contentFor(multi(), undefined);
    failWith(serverError());
    clock.advance(7 * hour);
    const failed = await content.contentFor(multi(), first.content);
    assert.deepEqual(failed.content, first.content);
    assert.equal(failed.problem?.reason, "TokenRefreshFailed");
    assert.match(failed.problem.message, /public\.ecr\.aws: /);
    assert.equal(awsErrors().length, 3, "one error per token");
  });

  it("falls back to what the Secrets hold after a restart, and keeps it until it expires", async () => {
    const first = setup();
    const written = await first.content.contentFor(multi(), undefined);
    const restarted = setup();
    restarted.failing.set("public", serverError());
    restarted.clock.advance(7 * hour);
    const result = await restarted.content.contentFor(multi(), written.content);
    assert.equal(auths(result.content)[hosts.public], auths(written.content)[hosts.public]);
    assert.equal(registry(result, hosts.public).state, "Kept");
  });

  it("keeps what the Secrets hold when new credentials cannot mint, without rewriting them", async () => {
    const first = setup();
    const written = await first.content.contentFor(multi(), undefined);
    assert.ok(written.content !== undefined);
    const rotated = setup();
    rotated.failWith(serverError());
    const held = { ...written.content, identity: "earlier-keys" };
    const result = await rotated.content.contentFor(multi(), held);
    assert.deepEqual(result.content, held);
  });

  it("reports each registry as the Secrets hold it when the credentials are unusable", async () => {
    const first = setup();
    const written = await first.content.contentFor(multi(), undefined);
    const problem: TokenProblem = {
      reason: "CredentialsInvalid",
      message: "the credentials Secret is empty",
    };
    const broken = setup(() => problem);
    const result = await broken.content.contentFor(multi(), written.content);
    assert.deepEqual(result.problem, problem);
    assert.equal(result.content, undefined);
    assert.deepEqual(
      result.registries.map((r) => [r.host, r.state, r.problem?.reason]),
      Object.values(hosts).map((host) => [host, "Kept", "CredentialsInvalid"]),
    );
  });
});

describe("tokens read back from a Secret", () => {
  it("returns the hosts it holds and leaves out those of a token whose hosts disagree", () => {
    const content: SecretContent = {
      dockerConfigJson: JSON.stringify({
        auths: {
          [hosts.euWest]: { username: "AWS", password: "a" },
          [hosts.euWestOther]: { username: "AWS", password: "b" },
          [hosts.public]: { username: "AWS", password: "p" },
        },
      }),
      expiresAt: "2026-01-01T12:00:00Z",
      refreshedAt: "2026-01-01T00:00:00Z",
      identity: "x",
    };
    const tokens = tokensFromContent(multi(), content);
    assert.deepEqual([...tokens.keys()], ["public:us-east-1"]);
    assert.equal(tokens.get("public:us-east-1")?.expiresAt, Date.parse("2026-01-01T12:00:00Z"));
    assert.equal(tokensFromContent(multi(), { ...content, dockerConfigJson: "null" }).size, 0);
    assert.equal(tokensFromContent(multi(), { ...content, dockerConfigJson: "{" }).size, 0);
  });
});
