import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { buildDockerConfigJson } from "./dockerconfig.ts";
import type { RegistryCredential } from "./dockerconfig.ts";

const base64 = (text: string): string => Buffer.from(text).toString("base64");

const euWest = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const otherAccount = "210987654321.dkr.ecr.eu-west-1.amazonaws.com";
const usEast = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const publicHost = "public.ecr.aws";

describe("buildDockerConfigJson", () => {
  const cases: {
    name: string;
    credentials: RegistryCredential[];
    auths: Record<string, { username: string; password: string; auth: string }>;
    hostOrder: string[];
  }[] = [
    {
      name: "writes an empty auths object for no credentials",
      credentials: [],
      auths: {},
      hostOrder: [],
    },
    {
      name: "writes username, password and auth = base64(username:password) for one host",
      credentials: [{ host: euWest, username: "AWS", password: "token-eu" }],
      auths: { [euWest]: { username: "AWS", password: "token-eu", auth: base64("AWS:token-eu") } },
      hostOrder: [euWest],
    },
    {
      name: "keeps a colon in the password intact inside auth",
      credentials: [{ host: euWest, username: "AWS", password: "a:b:c" }],
      auths: { [euWest]: { username: "AWS", password: "a:b:c", auth: base64("AWS:a:b:c") } },
      hostOrder: [euWest],
    },
    {
      name: "writes one entry per host, sorted by host",
      credentials: [
        { host: publicHost, username: "AWS", password: "token-public" },
        { host: usEast, username: "AWS", password: "token-us" },
        { host: otherAccount, username: "AWS", password: "token-eu" },
        { host: euWest, username: "AWS", password: "token-eu" },
      ],
      auths: {
        [euWest]: { username: "AWS", password: "token-eu", auth: base64("AWS:token-eu") },
        [usEast]: { username: "AWS", password: "token-us", auth: base64("AWS:token-us") },
        [otherAccount]: { username: "AWS", password: "token-eu", auth: base64("AWS:token-eu") },
        [publicHost]: { username: "AWS", password: "token-public", auth: base64("AWS:token-public") },
      },
      hostOrder: [euWest, usEast, otherAccount, publicHost],
    },
  ];

  for (const { name, credentials, auths, hostOrder } of cases) {
    it(name, () => {
      const parsed = JSON.parse(buildDockerConfigJson(credentials)) as {
        auths: Record<string, { username: string; password: string; auth: string }>;
      };
      assert.deepEqual(parsed, { auths });
      assert.deepEqual(Object.keys(parsed.auths), hostOrder);
    });
  }

  it("gives byte-identical output for the same credentials in any order", () => {
    const credentials: RegistryCredential[] = [
      { host: usEast, username: "AWS", password: "token-us" },
      { host: publicHost, username: "AWS", password: "token-public" },
      { host: euWest, username: "AWS", password: "token-eu" },
    ];
    const expected =
      `{"auths":{` +
      `"${euWest}":{"username":"AWS","password":"token-eu","auth":"${base64("AWS:token-eu")}"},` +
      `"${usEast}":{"username":"AWS","password":"token-us","auth":"${base64("AWS:token-us")}"},` +
      `"${publicHost}":{"username":"AWS","password":"token-public","auth":"${base64("AWS:token-public")}"}` +
      `}}`;
    const orders = [
      [0, 1, 2],
      [0, 2, 1],
      [1, 0, 2],
      [1, 2, 0],
      [2, 0, 1],
      [2, 1, 0],
    ];
    for (const order of orders) {
      const permuted = order.map((index) => credentials[index]).filter((c) => c !== undefined);
      assert.equal(buildDockerConfigJson(permuted), expected, `order ${order.join(",")}`);
    }
  });

  it("does not reorder the caller's array", () => {
    const credentials: RegistryCredential[] = [
      { host: publicHost, username: "AWS", password: "p" },
      { host: euWest, username: "AWS", password: "e" },
    ];
    buildDockerConfigJson(credentials);
    assert.deepEqual(
      credentials.map((c) => c.host),
      [publicHost, euWest],
    );
  });
});
