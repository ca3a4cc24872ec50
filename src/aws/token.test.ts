import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { AwsError } from "./errors.ts";
import { decodeAuthorizationToken, sanitizeExpiry } from "./token.ts";

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
