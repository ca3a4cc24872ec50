import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ManualClock } from "../clock.ts";
import { staticSource } from "./credentials.ts";
import type { CredentialSource } from "./credentials.ts";
import { AwsError } from "./errors.ts";
import type { EcrToken } from "./token.ts";
import { minRefreshDelayMs, targetKey, TokenCache } from "./token-cache.ts";
import type { MintResult, TokenTarget } from "./token-cache.ts";

const hour = 3_600_000;
const lifetime = 12 * hour;
const start = Date.UTC(2030, 0, 1);
const euWest1: TokenTarget = { kind: "private", region: "eu-west-1" };
const usEast1: TokenTarget = { kind: "private", region: "us-east-1" };

const source = staticSource({
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
});

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A mint that records its calls and answers with a fresh 12 h token, or with a queued failure. */
function fakeMint(clock: ManualClock) {
  const calls: { source: CredentialSource; target: TokenTarget }[] = [];
  const failures: Error[] = [];
  let gate: Promise<void> | undefined;
  const mint = async (mintSource: CredentialSource, target: TokenTarget): Promise<EcrToken> => {
    calls.push({ source: mintSource, target });
    const failure = failures.shift();
    if (gate !== undefined) await gate;
    if (failure !== undefined) throw failure;
    const mintedAt = clock.now();
    return {
      kind: target.kind,
      region: target.region,
      username: "AWS",
      password: `password-${calls.length}`,
      mintedAt,
      expiresAt: mintedAt + lifetime,
    };
  };
  return {
    mint,
    calls,
    failNext(err: Error) {
      failures.push(err);
    },
    hold(): () => void {
      const open = deferred<undefined>();
      gate = open.promise;
      return () => {
        gate = undefined;
        open.resolve(undefined);
      };
    },
  };
}

function setup(random = () => 0.5) {
  const clock = new ManualClock(start);
  const fake = fakeMint(clock);
  const mints: { target: TokenTarget; result: MintResult }[] = [];
  const invalidated: string[] = [];
  const cache = new TokenCache({
    clock,
    mint: fake.mint,
    random,
    onMint: (target, result) => mints.push({ target, result }),
    onInvalidate: (prefix) => invalidated.push(prefix),
  });
  return { clock, fake, cache, mints, invalidated };
}

describe("TokenCache", () => {
  it("mints once for 10 concurrent callers of the same identity and region", async () => {
    const { fake, cache } = setup();
    const release = fake.hold();
    const pending = Array.from({ length: 10 }, () => cache.get(source, euWest1));
    release();
    const tokens = await Promise.all(pending);
    assert.equal(fake.calls.length, 1);
    assert.equal(new Set(tokens).size, 1);
  });

  it("mints separately per region and per identity", async () => {
    const { fake, cache } = setup();
    const other = staticSource({ accessKeyId: "AKIAOTHERKEY00000001", secretAccessKey: "other-secret" });
    await Promise.all([cache.get(source, euWest1), cache.get(source, usEast1), cache.get(other, euWest1)]);
    assert.equal(fake.calls.length, 3);
  });

  it("mints one ECR Public token whatever region callers name", async () => {
    const { fake, cache } = setup();
    await cache.get(source, { kind: "public", region: "us-east-1" });
    await cache.get(source, { kind: "public", region: "eu-west-1" });
    assert.equal(fake.calls.length, 1);
  });

  it("returns the cached token until half its lifetime, then mints a new one", async () => {
    const { clock, fake, cache } = setup();
    const first = await cache.get(source, euWest1);
    clock.advance(lifetime / 2 - 1);
    assert.equal(await cache.get(source, euWest1), first);
    clock.advance(1);
    const second = await cache.get(source, euWest1);
    assert.notEqual(second, first);
    assert.equal(fake.calls.length, 2);
  });

  it("refreshes sooner when a caller's maxAgeMs is shorter than half the lifetime", async () => {
    const { clock, fake, cache } = setup();
    const first = await cache.get(source, euWest1, { maxAgeMs: hour });
    assert.equal(cache.refreshAt(first, hour), start + hour);
    clock.advance(hour - 1);
    assert.equal(await cache.get(source, euWest1, { maxAgeMs: hour }), first);
    clock.advance(1);
    assert.notEqual(await cache.get(source, euWest1, { maxAgeMs: hour }), first);
    assert.equal(fake.calls.length, 2);
  });

  it("lets a caller without maxAgeMs keep a token another caller would refresh", async () => {
    const { clock, cache } = setup();
    const first = await cache.get(source, euWest1);
    clock.advance(2 * hour);
    assert.equal(await cache.get(source, euWest1), first);
  });

  it("never refreshes sooner than the floor after minting", async () => {
    const { cache } = setup();
    const token = await cache.get(source, euWest1);
    assert.equal(cache.refreshAt(token, 1), token.mintedAt + minRefreshDelayMs);
    const shortLived: EcrToken = { ...token, expiresAt: token.mintedAt + 30_000 };
    assert.equal(cache.refreshAt(shortLived), token.mintedAt + minRefreshDelayMs);
  });

  it("varies the refresh time by at most 10 % either way", async () => {
    for (const [random, expected] of [
      [0, 0.9 * (lifetime / 2)],
      [0.5, lifetime / 2],
      [0.75, 1.05 * (lifetime / 2)],
    ] as const) {
      const { cache } = setup(() => random);
      const token = await cache.get(source, euWest1);
      assert.equal(cache.refreshAt(token) - token.mintedAt, expected, `random ${random}`);
    }
    const { cache } = setup(() => 0.9999999);
    const token = await cache.get(source, euWest1);
    const delay = cache.refreshAt(token) - token.mintedAt;
    assert.ok(delay > lifetime / 2 && delay <= 1.1 * (lifetime / 2), `delay ${delay}`);
  });

  it("keeps a token's jitter fixed however often its refresh time is asked for", async () => {
    let draws = 0;
    const { cache } = setup(() => [0.1, 0.9][draws++ % 2] ?? 0);
    const token = await cache.get(source, euWest1);
    const first = cache.refreshAt(token);
    assert.equal(cache.refreshAt(token), first);
    assert.equal(cache.refreshAt(token, 11 * hour), first);
    assert.equal(draws, 1);
  });

  it("does not cache a failed mint, and the next call mints again", async () => {
    const { fake, cache, mints } = setup();
    fake.failNext(new AwsError({ kind: "Throttled", message: "slow down" }));
    await assert.rejects(cache.get(source, euWest1), { kind: "Throttled" });
    assert.equal(cache.peek(source, euWest1), undefined);
    const token = await cache.get(source, euWest1);
    assert.equal(token.password, "password-2");
    assert.deepEqual(
      mints.map((m) => m.result),
      ["error", "success"],
    );
  });

  it("gives every concurrent caller the failure of the one shared mint", async () => {
    const { fake, cache } = setup();
    fake.failNext(new AwsError({ kind: "AwsAuth", message: "denied" }));
    const release = fake.hold();
    const pending = Array.from({ length: 3 }, () => cache.get(source, euWest1));
    release();
    const results = await Promise.allSettled(pending);
    assert.deepEqual(
      results.map((r) => r.status),
      ["rejected", "rejected", "rejected"],
    );
    assert.equal(fake.calls.length, 1);
  });

  it("keeps the last good token available through peek when a refresh fails", async () => {
    const { clock, fake, cache } = setup();
    const good = await cache.get(source, euWest1);
    clock.advance(lifetime / 2);
    fake.failNext(new AwsError({ kind: "Unavailable", message: "ECR down" }));
    await assert.rejects(cache.get(source, euWest1), { kind: "Unavailable" });
    assert.equal(cache.peek(source, euWest1), good);
  });

  it("drops tokens of an invalidated source and of roles assumed on top of it", async () => {
    const { fake, cache, invalidated } = setup();
    const role: CredentialSource = {
      ...source,
      key: `${source.key}>role:arn:aws:iam::123456789012:role/x:-`,
    };
    const other = staticSource({ accessKeyId: "AKIAOTHERKEY00000001", secretAccessKey: "other-secret" });
    await Promise.all([cache.get(source, euWest1), cache.get(role, euWest1), cache.get(other, euWest1)]);
    cache.invalidate(source.key);
    assert.equal(cache.peek(source, euWest1), undefined);
    assert.equal(cache.peek(role, euWest1), undefined);
    assert.notEqual(cache.peek(other, euWest1), undefined);
    assert.deepEqual(invalidated, [source.key]);
    await cache.get(source, euWest1);
    assert.equal(fake.calls.length, 4);
  });

  it("does not store a token whose mint was under way when its source was invalidated", async () => {
    const { fake, cache } = setup();
    const release = fake.hold();
    const pending = cache.get(source, euWest1);
    cache.invalidate(source.key);
    release();
    await pending;
    assert.equal(cache.peek(source, euWest1), undefined);
    await cache.get(source, euWest1);
    assert.equal(fake.calls.length, 2);
  });

  it("reports an invalidated source to onInvalidate only once its mints under way have settled", async () => {
    const { fake, cache, invalidated } = setup();
    const release = fake.hold();
    const pending = cache.get(source, euWest1);
    cache.invalidate(source.key);
    assert.deepEqual(invalidated, [], "its SDK clients are still in use");
    release();
    await pending;
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(invalidated, [source.key]);
  });

  it("waits for a failing mint under way before reporting its source invalidated", async () => {
    const { fake, cache, invalidated } = setup();
    const release = fake.hold();
    fake.failNext(new AwsError({ kind: "Unavailable", message: "ECR down" }));
    const pending = cache.get(source, euWest1);
    cache.invalidate(source.key);
    assert.deepEqual(invalidated, []);
    release();
    await assert.rejects(pending, { kind: "Unavailable" });
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(invalidated, [source.key]);
  });

  it("keeps waiting while a mint of the invalidated source started meanwhile is under way", async () => {
    const { fake, cache, invalidated } = setup();
    const releaseFirst = fake.hold();
    const first = cache.get(source, euWest1);
    cache.invalidate(source.key);
    const releaseSecond = fake.hold();
    const second = cache.get(source, usEast1);
    releaseFirst();
    await first;
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(invalidated, [], "the second mint still uses the clients");
    releaseSecond();
    await second;
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(invalidated, [source.key]);
  });

  it("reports each mint's target and result to onMint", async () => {
    const { cache, mints } = setup();
    await cache.get(source, euWest1);
    await cache.get(source, euWest1);
    assert.deepEqual(mints, [{ target: euWest1, result: "success" }]);
  });
});

describe("TokenCache refresh schedule across restarts", () => {
  it("gives an adopted token the refresh time it had when it was minted", () => {
    const clock = new ManualClock(1_000_000);
    const token: EcrToken = {
      kind: "private",
      region: "eu-west-1",
      username: "AWS",
      password: "pw",
      mintedAt: 1_000_000,
      expiresAt: 1_000_000 + 12 * 3_600_000,
    };
    const mint = (): Promise<EcrToken> => Promise.resolve(token);
    const first = new TokenCache({ clock, mint });
    const restarted = new TokenCache({ clock, mint });
    const adopted = { ...token };
    assert.equal(restarted.refreshAt(adopted), first.refreshAt(token));
    const other = { ...token, password: "another" };
    assert.notEqual(first.refreshAt(other), first.refreshAt(token), "other tokens get their own jitter");
  });
});

describe("targetKey", () => {
  it("keys targets by kind and region", () => {
    assert.equal(targetKey(euWest1), "private:eu-west-1");
    assert.equal(targetKey({ kind: "public", region: "us-east-1" }), "public:us-east-1");
    assert.equal(targetKey({ ...usEast1, fips: true }), "private-fips:us-east-1");
  });

  it("gives every ECR Public target one key, since its tokens come from us-east-1 only", () => {
    assert.equal(targetKey({ kind: "public", region: "eu-west-1", fips: true }), "public:us-east-1");
  });
});
