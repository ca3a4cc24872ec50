import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { inspect } from "node:util";

import type { AwsCredentialIdentity } from "@smithy/types";

import { isInvalidInput } from "../api/invalid-input.ts";
import { ManualClock } from "../clock.ts";
import {
  assumeRoleSource,
  credentialRefreshWindowMs,
  parseCredentialsSecret,
  renewBeforeExpiry,
  staticSource,
} from "./credentials.ts";

const accessKeyId = "AKIAIOSFODNN7EXAMPLE";
const secretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const sessionToken = "FwoGZXIvYXdzEXAMPLESESSIONTOKENdGhpcyBpcyBub3QgYSByZWFsIHRva2Vu";

const b64 = (text: string): string => Buffer.from(text).toString("base64");

describe("parseCredentialsSecret", () => {
  it("reads access key id and secret key", () => {
    assert.deepEqual(
      parseCredentialsSecret({
        AWS_ACCESS_KEY_ID: b64(accessKeyId),
        AWS_SECRET_ACCESS_KEY: b64(secretAccessKey),
      }),
      { accessKeyId, secretAccessKey },
    );
  });

  it("reads a session token when present", () => {
    const temporaryId = "ASIAIOSFODNN7EXAMPLE";
    assert.deepEqual(
      parseCredentialsSecret({
        AWS_ACCESS_KEY_ID: b64(temporaryId),
        AWS_SECRET_ACCESS_KEY: b64(secretAccessKey),
        AWS_SESSION_TOKEN: b64(sessionToken),
      }),
      { accessKeyId: temporaryId, secretAccessKey, sessionToken },
    );
  });

  it("drops the trailing newline that echo adds, and surrounding spaces", () => {
    assert.deepEqual(
      parseCredentialsSecret({
        AWS_ACCESS_KEY_ID: b64(`${accessKeyId}\n`),
        AWS_SECRET_ACCESS_KEY: b64(` ${secretAccessKey}\r\n`),
      }),
      { accessKeyId, secretAccessKey },
    );
  });

  it("accepts every access key id shape AWS defines (16 to 128 word characters) and LocalStack's test", () => {
    for (const id of [
      accessKeyId,
      accessKeyId.toLowerCase(),
      "AKIA_0123456789ab",
      "A".repeat(16),
      `AKIA${"Z9".repeat(62)}`,
      "LSIAQAAAAAAVNCBMPNSG",
      "test",
    ]) {
      assert.deepEqual(
        parseCredentialsSecret({ AWS_ACCESS_KEY_ID: b64(id), AWS_SECRET_ACCESS_KEY: b64("test") }),
        { accessKeyId: id, secretAccessKey: "test" },
        `${id.length} characters`,
      );
    }
  });

  it("ignores keys it does not use", () => {
    const parsed = parseCredentialsSecret({
      AWS_ACCESS_KEY_ID: b64(accessKeyId),
      AWS_SECRET_ACCESS_KEY: b64(secretAccessKey),
      AWS_REGION: b64("eu-west-1"),
    });
    assert.deepEqual(parsed, { accessKeyId, secretAccessKey });
  });

  it("reports a Secret without data", () => {
    for (const data of [undefined, {}]) {
      const parsed = parseCredentialsSecret(data);
      assert.ok(isInvalidInput(parsed));
      assert.match(parsed.message, /no data; it needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
    }
  });

  const good = { AWS_ACCESS_KEY_ID: b64(accessKeyId), AWS_SECRET_ACCESS_KEY: b64(secretAccessKey) };
  const badValue = "s3cr3t-Value-Never-Shown";
  const cases: { name: string; data: Record<string, string>; key: string; problem: RegExp }[] = [
    {
      name: "a missing access key id, listing the keys that are there",
      data: { aws_access_key_id: b64(accessKeyId), AWS_SECRET_ACCESS_KEY: b64(secretAccessKey) },
      key: "AWS_ACCESS_KEY_ID",
      problem: /has no AWS_ACCESS_KEY_ID \(it has aws_access_key_id, AWS_SECRET_ACCESS_KEY\)/,
    },
    {
      name: "a missing secret key",
      data: { AWS_ACCESS_KEY_ID: b64(accessKeyId) },
      key: "AWS_SECRET_ACCESS_KEY",
      problem: /has no AWS_SECRET_ACCESS_KEY/,
    },
    {
      name: "an empty secret key",
      data: { ...good, AWS_SECRET_ACCESS_KEY: "" },
      key: "AWS_SECRET_ACCESS_KEY",
      problem: /is empty/,
    },
    {
      name: "a whitespace-only secret key",
      data: { ...good, AWS_SECRET_ACCESS_KEY: b64(" \n") },
      key: "AWS_SECRET_ACCESS_KEY",
      problem: /is only whitespace/,
    },
    {
      name: "an empty session token",
      data: { ...good, AWS_SESSION_TOKEN: "" },
      key: "AWS_SESSION_TOKEN",
      problem: /is empty/,
    },
    {
      name: "a secret key that is not UTF-8",
      data: {
        ...good,
        AWS_SECRET_ACCESS_KEY: Buffer.from([0xff, 0xfe, 0x73, 0x33, 0x63]).toString("base64"),
      },
      key: "AWS_SECRET_ACCESS_KEY",
      problem: /is binary, not UTF-8 text/,
    },
    {
      name: "a secret key with control characters",
      data: { ...good, AWS_SECRET_ACCESS_KEY: b64(`${badValue}\u0000x`) },
      key: "AWS_SECRET_ACCESS_KEY",
      problem: /contains whitespace or control characters/,
    },
    {
      name: "a secret key with a space inside",
      data: { ...good, AWS_SECRET_ACCESS_KEY: b64(`${badValue} ${badValue}`) },
      key: "AWS_SECRET_ACCESS_KEY",
      problem: /contains whitespace or control characters/,
    },
    {
      name: "a value that is plain text, not base64",
      data: { ...good, AWS_SECRET_ACCESS_KEY: badValue },
      key: "AWS_SECRET_ACCESS_KEY",
      problem: /is not base64; put plain text under stringData/,
    },
    {
      name: "an access key id with characters AWS never uses",
      data: { ...good, AWS_ACCESS_KEY_ID: b64(badValue) },
      key: "AWS_ACCESS_KEY_ID",
      problem: /is not an AWS access key id .*found 24 characters, some of them other/,
    },
    {
      name: "an access key id longer than AWS allows",
      data: { ...good, AWS_ACCESS_KEY_ID: b64(`AKIA${"X".repeat(125)}`) },
      key: "AWS_ACCESS_KEY_ID",
      problem:
        /is not an AWS access key id \(up to 128 letters, digits and underscores.*found 129 characters\)/,
    },
    {
      name: "an empty access key id",
      data: { ...good, AWS_ACCESS_KEY_ID: "" },
      key: "AWS_ACCESS_KEY_ID",
      problem: /is empty/,
    },
    {
      name: "a whitespace-only access key id",
      data: { ...good, AWS_ACCESS_KEY_ID: b64("  \n") },
      key: "AWS_ACCESS_KEY_ID",
      problem: /is only whitespace/,
    },
    {
      name: "an access key id with a space inside",
      data: { ...good, AWS_ACCESS_KEY_ID: b64("AKIAIOSF ODNN7EXAMPLE") },
      key: "AWS_ACCESS_KEY_ID",
      problem: /contains whitespace or control characters/,
    },
    {
      name: "a temporary access key id without a session token",
      data: { ...good, AWS_ACCESS_KEY_ID: b64("ASIAIOSFODNN7EXAMPLE") },
      key: "AWS_ACCESS_KEY_ID",
      problem: /temporary key \(ASIA\.\.\.\), which needs AWS_SESSION_TOKEN/,
    },
  ];
  for (const { name, data, key, problem } of cases) {
    it(`names the key and hides the value for ${name}`, () => {
      const parsed = parseCredentialsSecret(data);
      assert.ok(isInvalidInput(parsed), `expected InvalidInput, got ${inspect(parsed)}`);
      assert.ok(parsed.message.includes(key), parsed.message);
      assert.match(parsed.message, problem);
      for (const secret of [
        badValue,
        secretAccessKey,
        accessKeyId,
        accessKeyId.toLowerCase(),
        "ASIAIOSFODNN7EXAMPLE",
      ]) {
        assert.ok(!parsed.message.includes(secret), `message reveals a value: ${parsed.message}`);
      }
    });
  }
});

describe("staticSource", () => {
  it("gives a key and description without the secret key, session token or full access key id", async () => {
    const source = staticSource({ accessKeyId, secretAccessKey, sessionToken });
    for (const text of [source.key, source.description]) {
      assert.ok(!text.includes(secretAccessKey));
      assert.ok(!text.includes(sessionToken));
      assert.ok(!text.includes(accessKeyId));
    }
    assert.match(source.key, /^static:AKIA\*\*\*\*MPLE:[0-9a-f]{12}$/);
    assert.equal(source.description, "static credentials AKIA****MPLE");
    assert.deepEqual(await source.provider(), { accessKeyId, secretAccessKey, sessionToken });
  });

  it("gives a different key when only the secret key or session token differs", () => {
    const keys = new Set([
      staticSource({ accessKeyId, secretAccessKey }).key,
      staticSource({ accessKeyId, secretAccessKey: `${secretAccessKey}2` }).key,
      staticSource({ accessKeyId, secretAccessKey, sessionToken }).key,
    ]);
    assert.equal(keys.size, 3);
  });

  it("gives the same key for the same keys", () => {
    assert.equal(
      staticSource({ accessKeyId, secretAccessKey }).key,
      staticSource({ accessKeyId, secretAccessKey }).key,
    );
  });
});

describe("assumeRoleSource", () => {
  const base = staticSource({ accessKeyId, secretAccessKey });
  const roleArn = "arn:aws:iam::123456789012:role/ecr-pull";
  const clock = new ManualClock(0);

  it("starts its key with the base key, so invalidating the base also drops the role", () => {
    const source = assumeRoleSource(base, { roleArn }, { clock });
    assert.ok(source.key.startsWith(`${base.key}>role:${roleArn}:`), source.key);
    assert.equal(source.description, `role ${roleArn} assumed with ${base.description}`);
  });

  it("tells external ids apart without revealing them", () => {
    const one = assumeRoleSource(base, { roleArn, externalId: "tenant-one-external" }, { clock });
    const two = assumeRoleSource(base, { roleArn, externalId: "tenant-two-external" }, { clock });
    const none = assumeRoleSource(base, { roleArn }, { clock });
    assert.equal(new Set([one.key, two.key, none.key]).size, 3);
    assert.ok(!one.key.includes("tenant-one-external"));
    assert.ok(!one.description.includes("tenant-one-external"));
  });
});

describe("renewBeforeExpiry", () => {
  const start = Date.UTC(2030, 0, 1);
  const lifetime = 3_600_000;

  function counting(clock: ManualClock) {
    const calls = { count: 0, fail: false };
    const fetch = (): Promise<AwsCredentialIdentity> => {
      calls.count++;
      if (calls.fail) return Promise.reject(new Error("sts down"));
      return Promise.resolve({
        accessKeyId: `ASIA${String(calls.count).padStart(16, "0")}`,
        secretAccessKey: "secret",
        sessionToken: "token",
        expiration: new Date(clock.now() + lifetime),
      });
    };
    return { calls, fetch };
  }

  it("reuses credentials until the refresh window before expiry, then fetches new ones", async () => {
    const clock = new ManualClock(start);
    const { calls, fetch } = counting(clock);
    const provider = renewBeforeExpiry(fetch, clock);
    const first = await provider();
    clock.advance(lifetime - credentialRefreshWindowMs - 1);
    assert.equal(await provider(), first);
    assert.equal(calls.count, 1);
    clock.advance(1);
    const second = await provider();
    assert.notEqual(second.accessKeyId, first.accessKeyId);
    assert.equal(calls.count, 2);
  });

  it("shares one fetch between concurrent callers", async () => {
    const clock = new ManualClock(start);
    const { calls, fetch } = counting(clock);
    const provider = renewBeforeExpiry(fetch, clock);
    const results = await Promise.all(Array.from({ length: 5 }, () => provider()));
    assert.equal(calls.count, 1);
    assert.equal(new Set(results).size, 1);
  });

  it("keeps still-valid credentials when a renewal fails, and fails once they have expired", async () => {
    const clock = new ManualClock(start);
    const { calls, fetch } = counting(clock);
    const provider = renewBeforeExpiry(fetch, clock);
    const first = await provider();
    calls.fail = true;
    clock.advance(lifetime - 1000);
    assert.equal(await provider(), first);
    clock.advance(1000);
    await assert.rejects(provider(), /sts down/);
  });

  it("does not remember a failed first fetch", async () => {
    const clock = new ManualClock(start);
    const { calls, fetch } = counting(clock);
    const provider = renewBeforeExpiry(fetch, clock);
    calls.fail = true;
    await assert.rejects(provider(), /sts down/);
    calls.fail = false;
    assert.ok((await provider()).accessKeyId.startsWith("ASIA"));
    assert.equal(calls.count, 2);
  });
});
