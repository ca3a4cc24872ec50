import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { patterns } from "./crd.ts";
import { isInvalidInput } from "./invalid-input.ts";
import { defaultRegistryHost, parseRegistryHost } from "./registry-host.ts";
import type { RegistryHost } from "./registry-host.ts";

const account = "123456789012";

describe("parseRegistryHost", () => {
  const valid: { name: string; host: string; expected: RegistryHost }[] = [
    {
      name: "a commercial-region registry",
      host: `${account}.dkr.ecr.eu-west-1.amazonaws.com`,
      expected: {
        kind: "private",
        host: `${account}.dkr.ecr.eu-west-1.amazonaws.com`,
        accountId: account,
        region: "eu-west-1",
        partition: "aws",
        fips: false,
      },
    },
    {
      name: "a FIPS registry",
      host: `${account}.dkr.ecr-fips.us-east-1.amazonaws.com`,
      expected: {
        kind: "private",
        host: `${account}.dkr.ecr-fips.us-east-1.amazonaws.com`,
        accountId: account,
        region: "us-east-1",
        partition: "aws",
        fips: true,
      },
    },
    {
      name: "a GovCloud registry",
      host: `${account}.dkr.ecr.us-gov-west-1.amazonaws.com`,
      expected: {
        kind: "private",
        host: `${account}.dkr.ecr.us-gov-west-1.amazonaws.com`,
        accountId: account,
        region: "us-gov-west-1",
        partition: "aws-us-gov",
        fips: false,
      },
    },
    {
      name: "a GovCloud FIPS registry",
      host: `${account}.dkr.ecr-fips.us-gov-east-1.amazonaws.com`,
      expected: {
        kind: "private",
        host: `${account}.dkr.ecr-fips.us-gov-east-1.amazonaws.com`,
        accountId: account,
        region: "us-gov-east-1",
        partition: "aws-us-gov",
        fips: true,
      },
    },
    {
      name: "a China registry",
      host: `${account}.dkr.ecr.cn-northwest-1.amazonaws.com.cn`,
      expected: {
        kind: "private",
        host: `${account}.dkr.ecr.cn-northwest-1.amazonaws.com.cn`,
        accountId: account,
        region: "cn-northwest-1",
        partition: "aws-cn",
        fips: false,
      },
    },
    {
      name: "a registry in Canada, whose region starts with c like China's",
      host: `${account}.dkr.ecr.ca-central-1.amazonaws.com`,
      expected: {
        kind: "private",
        host: `${account}.dkr.ecr.ca-central-1.amazonaws.com`,
        accountId: account,
        region: "ca-central-1",
        partition: "aws",
        fips: false,
      },
    },
    {
      name: "ECR Public",
      host: "public.ecr.aws",
      expected: { kind: "public", host: "public.ecr.aws", region: "us-east-1" },
    },
  ];

  for (const { name, host, expected } of valid) {
    it(`parses ${name}`, () => {
      assert.deepEqual(parseRegistryHost(host), expected);
    });
  }

  const invalid: { name: string; host: string; message: RegExp }[] = [
    { name: "an empty host", host: "", message: /registry host is empty/ },
    {
      name: "a registry host without an account id",
      host: "dkr.ecr.eu-west-1.amazonaws.com",
      message: /has no account id/,
    },
    {
      name: "an 11-digit account id",
      host: "12345678901.dkr.ecr.eu-west-1.amazonaws.com",
      message: /account id "12345678901", which is not 12 digits/,
    },
    {
      name: "a non-numeric account id",
      host: "myaccount0001.dkr.ecr.eu-west-1.amazonaws.com",
      message: /not 12 digits/,
    },
    {
      name: "a host with https://",
      host: `https://${account}.dkr.ecr.eu-west-1.amazonaws.com`,
      message: /must not include a scheme/,
    },
    {
      name: "a host with a path",
      host: `${account}.dkr.ecr.eu-west-1.amazonaws.com/app`,
      message: /without a path/,
    },
    {
      name: "a host with a port",
      host: `${account}.dkr.ecr.eu-west-1.amazonaws.com:443`,
      message: /must not include a port/,
    },
    {
      name: "an upper-case host",
      host: `${account}.DKR.ECR.eu-west-1.amazonaws.com`,
      message: /must be lower case/,
    },
    {
      name: "the ECR API endpoint",
      host: "ecr.eu-west-1.amazonaws.com",
      message: /ECR API endpoint, not a registry/,
    },
    {
      name: "the ECR FIPS API endpoint",
      host: "ecr-fips.us-east-1.amazonaws.com",
      message: /ECR API endpoint/,
    },
    { name: "the api.ecr endpoint", host: "api.ecr.eu-west-1.amazonaws.com", message: /ECR API endpoint/ },
    {
      name: "a misspelt region",
      host: `${account}.dkr.ecr.euwest1.amazonaws.com`,
      message: /"euwest1", which is not an AWS region/,
    },
    {
      name: "a China region under .com",
      host: `${account}.dkr.ecr.cn-north-1.amazonaws.com`,
      message: /China region, so must end in \.com\.cn/,
    },
    {
      name: "a .com.cn host outside China",
      host: `${account}.dkr.ecr.eu-west-1.amazonaws.com.cn`,
      message: /ends in \.com\.cn but is not in a China region/,
    },
    {
      name: "FIPS in China",
      host: `${account}.dkr.ecr-fips.cn-north-1.amazonaws.com.cn`,
      message: /FIPS, which ECR does not offer in China/,
    },
    {
      name: "an ISO-partition host",
      host: `${account}.dkr.ecr.us-iso-east-1.amazonaws.com`,
      message: /ISO partition, which is not supported/,
    },
    { name: "a non-ECR registry", host: "registry.example.org", message: /is not an ECR registry/ },
    { name: "a public ECR lookalike", host: "public.ecr.aws.example.com", message: /is not an ECR registry/ },
    {
      name: "a host with a trailing dot",
      host: `${account}.dkr.ecr.eu-west-1.amazonaws.com.`,
      message: /is not an ECR registry/,
    },
  ];

  for (const { name, host, message } of invalid) {
    it(`rejects ${name}`, () => {
      const result = parseRegistryHost(host);
      assert.ok(isInvalidInput(result), `parsed ${host}`);
      assert.match(result.message, message);
      assert.match(result.message, /expected <12-digit account>\.dkr\.ecr\.<region>\.amazonaws\.com/);
    });
  }

  it("accepts exactly the hosts the CRD's registries pattern accepts", () => {
    const pattern = new RegExp(patterns.registryHost);
    for (const { host } of [...valid, ...invalid]) {
      assert.equal(!isInvalidInput(parseRegistryHost(host)), pattern.test(host), host);
    }
  });
});

describe("defaultRegistryHost", () => {
  const cases: { region: string; host: string; partition: string }[] = [
    { region: "eu-west-1", host: `${account}.dkr.ecr.eu-west-1.amazonaws.com`, partition: "aws" },
    {
      region: "us-gov-west-1",
      host: `${account}.dkr.ecr.us-gov-west-1.amazonaws.com`,
      partition: "aws-us-gov",
    },
    { region: "cn-north-1", host: `${account}.dkr.ecr.cn-north-1.amazonaws.com.cn`, partition: "aws-cn" },
  ];
  for (const { region, host, partition } of cases) {
    it(`builds the ${region} registry host as the token's proxy endpoint names it`, () => {
      const result = defaultRegistryHost(account, region);
      assert.ok(!isInvalidInput(result));
      assert.equal(result.host, host);
      assert.equal(result.partition, partition);
      assert.equal(result.fips, false);
    });
  }

  it("rejects an account id that is not 12 digits", () => {
    const result = defaultRegistryHost("1234", "eu-west-1");
    assert.ok(isInvalidInput(result));
    assert.match(result.message, /account id "1234"/);
  });

  it("rejects a malformed region", () => {
    const result = defaultRegistryHost(account, "Europe");
    assert.ok(isInvalidInput(result));
  });
});
