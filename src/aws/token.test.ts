import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { GetAuthorizationTokenCommand } from "@aws-sdk/client-ecr";

import { staticSource } from "./credentials.ts";
import { AwsError } from "./errors.ts";
import { ManualClock } from "../clock.ts";
import { answerAuthorizationToken } from "../../test/harness/ecr-client-stub.ts";
import { runRecordingResolves } from "../../test/harness/module-resolution.ts";
import {
  decodeAuthorizationToken,
  EcrClientPool,
  mintPrivateToken,
  sanitizeExpiry,
  type ClientSettings,
} from "./token.ts";

const hour = 3_600_000;
const mintedAt = Date.UTC(2030, 0, 1);

describe("sanitizeExpiry", () => {
  const cases: { name: string; reported: Date | undefined; expected: number }[] = [
    {
      name: "treats a missing expiry as 12 h after minting",
      reported: undefined,
      expected: mintedAt + 12 * hour,
    },
    {
      name: "treats moto's 2015-01-01 as 12 h after minting",
      reported: new Date("2015-01-01T00:00:00Z"),
      expected: mintedAt + 12 * hour,
    },
    { name: "keeps an expiry 1 h ahead", reported: new Date(mintedAt + hour), expected: mintedAt + hour },
    {
      name: "keeps an expiry 12 h ahead",
      reported: new Date(mintedAt + 12 * hour),
      expected: mintedAt + 12 * hour,
    },
    {
      name: "keeps an expiry exactly 24 h ahead",
      reported: new Date(mintedAt + 24 * hour),
      expected: mintedAt + 24 * hour,
    },
    {
      name: "distrusts an expiry 25 h ahead",
      reported: new Date(mintedAt + 25 * hour),
      expected: mintedAt + 12 * hour,
    },
    {
      name: "distrusts an expiry less than 5 minutes ahead",
      reported: new Date(mintedAt + 4 * 60_000),
      expected: mintedAt + 12 * hour,
    },
    {
      name: "treats an invalid date as missing",
      reported: new Date(Number.NaN),
      expected: mintedAt + 12 * hour,
    },
  ];
  for (const { name, reported, expected } of cases) {
    it(name, () => {
      assert.equal(sanitizeExpiry(reported, mintedAt), expected);
    });
  }
});

describe("decodeAuthorizationToken", () => {
  const encode = (text: string): string => Buffer.from(text).toString("base64");

  it("splits AWS:<password> at the first colon", () => {
    assert.deepEqual(decodeAuthorizationToken(encode("AWS:pass:with:colons"), "ctx"), {
      username: "AWS",
      password: "pass:with:colons",
    });
  });

  for (const [name, encoded] of [
    ["rejects a missing token", undefined],
    ["rejects an empty token", ""],
    ["rejects a token without a colon", encode("AWSsecretpassword")],
    ["rejects a token with an empty password", encode("AWS:")],
    ["rejects a token with an empty user", encode(":secretpassword")],
  ] as const) {
    it(`${name} without quoting it`, () => {
      assert.throws(
        () => decodeAuthorizationToken(encoded, "ECR GetAuthorizationToken in eu-west-1"),
        (err: unknown) => {
          assert.ok(err instanceof AwsError);
          assert.match(err.message, /^ECR GetAuthorizationToken in eu-west-1: ECR returned/);
          assert.doesNotMatch(err.message, /secretpassword/);
          return true;
        },
      );
    });
  }
});

describe("EcrClientPool endpoints", () => {
  /** The host a GetAuthorizationToken request would go to; stops before anything is sent. */
  async function hostFor(settings: ClientSettings): Promise<string | undefined> {
    const pool = new EcrClientPool();
    const source = staticSource({ accessKeyId: "AKIAFIPSTEST00000001", secretAccessKey: "test" });
    const client = await pool.privateClient(source, "us-west-2", settings);
    let host: string | undefined;
    client.middlewareStack.add(
      () => (args) => {
        host = (args.request as { hostname?: string }).hostname;
        return Promise.reject(new Error("stopped before sending"));
      },
      { step: "build" },
    );
    try {
      await assert.rejects(client.send(new GetAuthorizationTokenCommand({})), /stopped before sending/);
    } finally {
      pool.destroy();
    }
    return host;
  }

  it("sends a FIPS mint to ECR's FIPS endpoint", async () => {
    const fips = await hostFor({ endpoint: undefined, requestTimeoutMs: 1000, fips: true });
    assert.match(fips ?? "", /(^|\.)ecr-fips\.us-west-2\.amazonaws\.com$/);
    const standard = await hostFor({ endpoint: undefined, requestTimeoutMs: 1000 });
    assert.match(standard ?? "", /(^|\.)ecr\.us-west-2\.amazonaws\.com$/);
  });

  it("lets an endpoint override win over FIPS", async () => {
    const settings = { endpoint: "http://127.0.0.1:1", requestTimeoutMs: 1000, fips: true };
    assert.equal(await hostFor(settings), "127.0.0.1");
  });
});

describe("mintPrivateToken", () => {
  it("records mint and expiry times in whole seconds, as the Secrets' annotations do", async () => {
    const pool = new EcrClientPool();
    const source = staticSource({ accessKeyId: "AKIAWHOLESECONDS0001", secretAccessKey: "test" });
    const settings: ClientSettings = {
      endpoint: "http://127.0.0.1:1",
      requestTimeoutMs: 10_000,
      fips: false,
    };
    const now = Date.UTC(2030, 0, 1, 8, 0, 0, 750);
    // ECR answers without sending anything: the mint's own arithmetic is under test.
    answerAuthorizationToken(await pool.privateClient(source, "eu-west-1", settings), {
      authorizationToken: Buffer.from("AWS:password").toString("base64"),
      expiresAt: new Date(now + 12 * hour + 250),
      proxyEndpoint: "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com",
    });
    try {
      const token = await mintPrivateToken(source, "eu-west-1", {
        clock: new ManualClock(now),
        endpoint: settings.endpoint,
        clients: pool,
      });
      assert.equal(token.mintedAt, Date.UTC(2030, 0, 1, 8, 0, 0));
      assert.equal(token.expiresAt, Date.UTC(2030, 0, 1, 20, 0, 1));
    } finally {
      pool.destroy();
    }
  });
});

describe("loading the AWS SDK", () => {
  it("loads ECR, ECR Public and the credential providers only once a mint or a preload needs them", async () => {
    // A fresh process, where nothing else has loaded them: which of them have been resolved after each step.
    const script = `
      const lazy = ["@aws-sdk/client-ecr", "@aws-sdk/client-ecr-public", "@aws-sdk/credential-providers"];
      const loaded = () => lazy.filter((name) => resolved.has(name));
      const [, tokenUrl, credentialsUrl] = process.argv;
      const { EcrClientPool } = await import(tokenUrl);
      const { assumeRoleSource, defaultChainSource, staticSource } = await import(credentialsUrl);
      const pool = new EcrClientPool();
      const keys = staticSource({ accessKeyId: "AKIAEXAMPLE", secretAccessKey: "secret" });
      const role = assumeRoleSource(keys, { roleArn: "arn:aws:iam::123456789012:role/pull" }, {
        endpoint: "http://127.0.0.1:1",
        requestTimeoutMs: 1000,
      });
      defaultChainSource();
      const atStart = loaded();
      await pool.preload();
      const preloaded = loaded();
      await pool.privateClient(keys, "eu-west-1", { endpoint: undefined, requestTimeoutMs: 1000 });
      const withPrivate = loaded();
      await pool.publicClient(role, { endpoint: undefined, requestTimeoutMs: 1000 });
      const withPublic = loaded();
      await role.provider().catch(() => undefined);
      pool.destroy();
      process.stdout.write(JSON.stringify({ atStart, preloaded, withPrivate, withPublic, withRole: loaded() }));
    `;
    const printed = await runRecordingResolves(
      script,
      [new URL("./token.ts", import.meta.url).href, new URL("./credentials.ts", import.meta.url).href],
      { PATH: process.env.PATH, AWS_EC2_METADATA_DISABLED: "true" },
    );
    assert.deepEqual(printed, {
      atStart: [],
      preloaded: ["@aws-sdk/client-ecr"],
      withPrivate: ["@aws-sdk/client-ecr"],
      withPublic: ["@aws-sdk/client-ecr", "@aws-sdk/client-ecr-public"],
      withRole: ["@aws-sdk/client-ecr", "@aws-sdk/client-ecr-public", "@aws-sdk/credential-providers"],
    });
  });
});
