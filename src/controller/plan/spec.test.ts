import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { API_VERSION, KIND } from "../../api/types.ts";
import type { ECRPullSecret, ECRPullSecretSpec } from "../../api/types.ts";
import type { TokenTarget } from "../../aws/token-cache.ts";
import { isSpecProblem, resolveSpec } from "./spec.ts";
import type { RegistryBinding, ResolvedSpec, SpecContext, SpecProblem } from "./spec.ts";

const context: SpecContext = { defaultRegion: "eu-west-1", trustedNamespaces: new Set(["ecr-system"]) };

function cr(spec: ECRPullSecretSpec, name = "prod-ecr"): ECRPullSecret {
  return { apiVersion: API_VERSION, kind: KIND, metadata: { name, uid: "uid-1" }, spec };
}

function resolved(spec: ECRPullSecretSpec, within: SpecContext = context): ResolvedSpec {
  const result = resolveSpec(cr(spec), within);
  if (isSpecProblem(result)) {
    assert.fail(`unexpected ${result.reason}: ${result.message}`);
  }
  return result;
}

function problem(spec: ECRPullSecretSpec, within: SpecContext = context): SpecProblem {
  const result = resolveSpec(cr(spec), within);
  if (!isSpecProblem(result)) {
    assert.fail("expected a SpecProblem");
  }
  return result;
}

const euWest = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const euWestOtherAccount = "210987654321.dkr.ecr.eu-west-1.amazonaws.com";
const usEast = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const fipsUsEast = "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com";
const china = "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn";
const publicHost = "public.ecr.aws";

const privateIn = (region: string): TokenTarget => ({ kind: "private", region });
const publicTarget: TokenTarget = { kind: "public", region: "us-east-1" };

describe("resolveSpec", () => {
  describe("defaults", () => {
    it("names the secret after the CR when secretName is left out", () => {
      assert.equal(resolved({ namespaces: ["default"] }).secretName, "prod-ecr");
    });

    it("uses secretName when it is set", () => {
      assert.equal(resolved({ secretName: "ecr-pull", namespaces: ["default"] }).secretName, "ecr-pull");
    });

    it("resolves the original operator's CR (secretName + namespaces) with every default", () => {
      const spec = resolved({ secretName: "ecr-pull", namespaces: ["default", "team-a"] });
      assert.equal(spec.secretName, "ecr-pull");
      assert.deepEqual(spec.serviceAccounts, { all: false, names: new Set(["default"]) });
      assert.deepEqual(spec.registries, [{ host: undefined, target: privateIn("eu-west-1") }]);
      assert.deepEqual(spec.targets, [privateIn("eu-west-1")]);
      assert.equal(spec.refreshIntervalMs, undefined);
      assert.equal(spec.suspend, false);
      assert.deepEqual(spec.credentials, { kind: "default" });
      assert.equal(spec.assumeRole, undefined);
      assert.equal(spec.matchesNamespace({ name: "default" }), true);
      assert.equal(spec.matchesNamespace({ name: "team-a" }), true);
      assert.equal(spec.matchesNamespace({ name: "team-b" }), false);
    });
  });

  describe("serviceAccounts", () => {
    const cases: {
      name: string;
      serviceAccounts: string[] | undefined;
      expected: ResolvedSpec["serviceAccounts"];
    }[] = [
      {
        name: "selects only default when left out",
        serviceAccounts: undefined,
        expected: { all: false, names: new Set(["default"]) },
      },
      { name: "selects every ServiceAccount for [*]", serviceAccounts: ["*"], expected: { all: true } },
      { name: "selects none for []", serviceAccounts: [], expected: { all: false, names: new Set() } },
      {
        name: "selects exactly the listed names",
        serviceAccounts: ["builder", "deployer"],
        expected: { all: false, names: new Set(["builder", "deployer"]) },
      },
    ];
    for (const { name, serviceAccounts, expected } of cases) {
      it(name, () => {
        const spec: ECRPullSecretSpec = { namespaces: ["default"] };
        if (serviceAccounts !== undefined) spec.serviceAccounts = serviceAccounts;
        assert.deepEqual(resolved(spec).serviceAccounts, expected);
      });
    }
  });

  describe("region", () => {
    const cases: {
      name: string;
      region: string | undefined;
      defaultRegion: string | undefined;
      expected: string;
    }[] = [
      { name: "uses spec.region", region: "ap-south-1", defaultRegion: undefined, expected: "ap-south-1" },
      {
        name: "prefers spec.region over the default region",
        region: "ap-south-1",
        defaultRegion: "eu-west-1",
        expected: "ap-south-1",
      },
      {
        name: "falls back to the operator's default region",
        region: undefined,
        defaultRegion: "us-west-2",
        expected: "us-west-2",
      },
    ];
    for (const { name, region, defaultRegion, expected } of cases) {
      it(name, () => {
        const spec: ECRPullSecretSpec = { namespaces: ["default"] };
        if (region !== undefined) spec.region = region;
        const result = resolved(spec, { ...context, defaultRegion });
        assert.deepEqual(result.registries, [{ host: undefined, target: privateIn(expected) }]);
        assert.deepEqual(result.targets, [privateIn(expected)]);
      });
    }

    it("reports InvalidSpec when neither the CR nor the operator names a region", () => {
      assert.deepEqual(problem({ namespaces: ["default"] }, { ...context, defaultRegion: undefined }), {
        reason: "InvalidSpec",
        message: "set spec.region or spec.registries: the operator has no default region",
      });
    });

    it("needs no region when registries are listed", () => {
      const result = resolved({ registries: [usEast] }, { ...context, defaultRegion: undefined });
      assert.deepEqual(result.targets, [privateIn("us-east-1")]);
    });
  });

  describe("registries", () => {
    const cases: {
      name: string;
      registries: string[];
      bindings: RegistryBinding[];
      targets: TokenTarget[];
    }[] = [
      {
        name: "binds one host to the token of its region",
        registries: [usEast],
        bindings: [{ host: usEast, target: privateIn("us-east-1") }],
        targets: [privateIn("us-east-1")],
      },
      {
        name: "shares one token between two accounts in the same region",
        registries: [euWest, euWestOtherAccount],
        bindings: [
          { host: euWest, target: privateIn("eu-west-1") },
          { host: euWestOtherAccount, target: privateIn("eu-west-1") },
        ],
        targets: [privateIn("eu-west-1")],
      },
      {
        name: "adds a second token for a host in another region",
        registries: [euWest, euWestOtherAccount, usEast],
        bindings: [
          { host: euWest, target: privateIn("eu-west-1") },
          { host: euWestOtherAccount, target: privateIn("eu-west-1") },
          { host: usEast, target: privateIn("us-east-1") },
        ],
        targets: [privateIn("eu-west-1"), privateIn("us-east-1")],
      },
      {
        name: "takes ECR Public's token from us-east-1, apart from private us-east-1",
        registries: [usEast, publicHost],
        bindings: [
          { host: usEast, target: privateIn("us-east-1") },
          { host: publicHost, target: publicTarget },
        ],
        targets: [privateIn("us-east-1"), publicTarget],
      },
      {
        name: "groups the design's example into eu-west-1, us-east-1 and public",
        registries: [euWest, euWestOtherAccount, usEast, publicHost],
        bindings: [
          { host: euWest, target: privateIn("eu-west-1") },
          { host: euWestOtherAccount, target: privateIn("eu-west-1") },
          { host: usEast, target: privateIn("us-east-1") },
          { host: publicHost, target: publicTarget },
        ],
        targets: [privateIn("eu-west-1"), privateIn("us-east-1"), publicTarget],
      },
      {
        name: "reads the region of FIPS and China hosts",
        registries: [fipsUsEast, china],
        bindings: [
          { host: fipsUsEast, target: { ...privateIn("us-east-1"), fips: true } },
          { host: china, target: privateIn("cn-north-1") },
        ],
        targets: [{ ...privateIn("us-east-1"), fips: true }, privateIn("cn-north-1")],
      },
    ];
    for (const { name, registries, bindings, targets } of cases) {
      it(name, () => {
        const result = resolved({ namespaces: ["default"], registries, region: "sa-east-1" });
        assert.deepEqual(result.registries, bindings);
        assert.deepEqual(result.targets, targets);
      });
    }

    it("reports InvalidSpec naming spec.registries and the host for a host that is not ECR", () => {
      const result = problem({ registries: [euWest, "registry.example.org"] });
      assert.equal(result.reason, "InvalidSpec");
      assert.match(
        result.message,
        /^spec\.registries: registry host "registry\.example\.org" is not an ECR registry/,
      );
    });
  });

  describe("credentials", () => {
    it("uses the operator's default credentials without a credentialsSecretRef", () => {
      assert.deepEqual(resolved({ namespaces: ["default"], aws: {} }).credentials, { kind: "default" });
    });

    it("takes credentials from a Secret in a trusted namespace", () => {
      const result = resolved({
        namespaces: ["default"],
        aws: { credentialsSecretRef: { namespace: "ecr-system", name: "aws-creds" } },
      });
      assert.deepEqual(result.credentials, { kind: "secret", namespace: "ecr-system", name: "aws-creds" });
    });

    it("reports CredentialsNotTrusted naming the namespace and the trusted ones", () => {
      const result = problem(
        {
          namespaces: ["default"],
          aws: { credentialsSecretRef: { namespace: "team-a", name: "aws-creds" } },
        },
        { ...context, trustedNamespaces: new Set(["ops", "ecr-system"]) },
      );
      assert.deepEqual(result, {
        reason: "CredentialsNotTrusted",
        message:
          'spec.aws.credentialsSecretRef: namespace "team-a" is not trusted for credentials ' +
          "(trusted: ecr-system, ops)",
      });
    });

    it("passes assumeRole through", () => {
      const assumeRole = {
        roleArn: "arn:aws:iam::123456789012:role/ecr-pull",
        externalId: "x1",
        sessionName: "ecr",
      };
      assert.deepEqual(resolved({ namespaces: ["default"], aws: { assumeRole } }).assumeRole, assumeRole);
    });
  });

  describe("refreshInterval and suspend", () => {
    const cases: { name: string; refreshInterval: string; expected: number }[] = [
      { name: "parses hours", refreshInterval: "6h", expected: 21_600_000 },
      { name: "parses mixed units", refreshInterval: "1h30m", expected: 5_400_000 },
      { name: "accepts the minimum", refreshInterval: "1m", expected: 60_000 },
      { name: "accepts the maximum", refreshInterval: "12h", expected: 43_200_000 },
    ];
    for (const { name, refreshInterval, expected } of cases) {
      it(`${name} in refreshInterval`, () => {
        assert.equal(resolved({ namespaces: ["default"], refreshInterval }).refreshIntervalMs, expected);
      });
    }

    const invalid: { name: string; refreshInterval: string; message: RegExp }[] = [
      { name: "an unknown unit", refreshInterval: "6d", message: /"6d" is not a duration/ },
      { name: "a missing unit", refreshInterval: "90", message: /has no unit/ },
      { name: "an interval below 1m", refreshInterval: "30s", message: /shorter than the minimum 1m/ },
      { name: "an interval above 12h", refreshInterval: "13h", message: /longer than the maximum 12h/ },
    ];
    for (const { name, refreshInterval, message } of invalid) {
      it(`reports InvalidSpec naming spec.refreshInterval for ${name}`, () => {
        const result = problem({ namespaces: ["default"], refreshInterval });
        assert.equal(result.reason, "InvalidSpec");
        assert.match(result.message, /^spec\.refreshInterval: /);
        assert.match(result.message, message);
      });
    }

    it("is not suspended unless suspend is true", () => {
      assert.equal(resolved({ namespaces: ["default"], suspend: false }).suspend, false);
      assert.equal(resolved({ namespaces: ["default"], suspend: true }).suspend, true);
    });
  });

  describe("namespace targets", () => {
    it("compiles namespaces, namespaceSelector and excludeNamespaces into one matcher", () => {
      const { matchesNamespace } = resolved({
        namespaces: ["team-*"],
        namespaceSelector: { matchLabels: { "ecr-pull": "true" } },
        excludeNamespaces: ["team-x", "kube-*"],
      });
      assert.equal(matchesNamespace({ name: "team-a" }), true);
      assert.equal(matchesNamespace({ name: "apps", labels: { "ecr-pull": "true" } }), true);
      assert.equal(matchesNamespace({ name: "team-x" }), false);
      assert.equal(matchesNamespace({ name: "kube-system", labels: { "ecr-pull": "true" } }), false);
      assert.equal(matchesNamespace({ name: "apps" }), false);
    });

    const invalid: { name: string; spec: ECRPullSecretSpec; message: RegExp }[] = [
      {
        name: "an unusable glob in namespaces",
        spec: { namespaces: ["default", "team-[z-a]"] },
        message: /^namespaces\[1\] "team-\[z-a\]" is not a usable glob/,
      },
      {
        name: "a bad entry in excludeNamespaces",
        spec: { namespaces: ["*"], excludeNamespaces: ["Kube-*"] },
        message: /^excludeNamespaces\[0\] "Kube-\*" is not a namespace name or glob/,
      },
      {
        name: "a bad label key in namespaceSelector",
        spec: { namespaceSelector: { matchLabels: { "bad key": "x" } } },
        message: /^namespaceSelector: matchLabels\.bad key: "bad key" is not a valid label key/,
      },
    ];
    for (const { name, spec, message } of invalid) {
      it(`reports InvalidSpec naming the field for ${name}`, () => {
        const result = problem(spec);
        assert.equal(result.reason, "InvalidSpec");
        assert.match(result.message, message);
      });
    }
  });

  describe("isSpecProblem", () => {
    it("tells a problem from a resolved spec", () => {
      assert.equal(isSpecProblem(resolveSpec(cr({ namespaces: ["default"] }), context)), false);
      assert.equal(isSpecProblem(resolveSpec(cr({ refreshInterval: "1s" }), context)), true);
    });
  });
});
