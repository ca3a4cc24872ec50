import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  CRD_NAME,
  ecrPullSecretCrd,
  limits,
  openAPIV3Schema,
  patterns,
  printerColumns,
  specSchema,
} from "./crd.ts";
import type { JSONSchemaProps } from "./crd.ts";
import type { ECRPullSecret } from "./types.ts";

const root: JSONSchemaProps = openAPIV3Schema;

interface SchemaNode {
  path: string;
  schema: JSONSchemaProps;
}

/** Every node of the schema with its path, e.g. `.spec.namespaces[]`. */
function schemaNodes(schema: JSONSchemaProps, path = ""): SchemaNode[] {
  const nodes: SchemaNode[] = [{ path, schema }];
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    nodes.push(...schemaNodes(child, `${path}.${name}`));
  }
  if (schema.additionalProperties !== undefined) {
    nodes.push(...schemaNodes(schema.additionalProperties, `${path}.*`));
  }
  if (schema.items !== undefined) nodes.push(...schemaNodes(schema.items, `${path}[]`));
  return nodes;
}

const rfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * The OpenAPI part of the API server's validation (not CEL), enough to table-test the schema here.
 * Unknown fields are reported, although the server would prune them, to catch typos in the tests.
 */
function validate(value: unknown, schema: JSONSchemaProps, path = ""): string[] {
  const at = path === "" ? "<root>" : path;
  switch (schema.type) {
    case "object": {
      if (typeof value !== "object" || value === null || Array.isArray(value))
        return [`${at}: not an object`];
      const entries = Object.entries(value);
      const errors: string[] = [];
      if (schema.maxProperties !== undefined && entries.length > schema.maxProperties) {
        errors.push(`${at}: more than ${schema.maxProperties} properties`);
      }
      for (const name of schema.required ?? []) {
        if (!Object.hasOwn(value, name)) errors.push(`${path}.${name}: required`);
      }
      for (const [name, child] of entries) {
        const childSchema = schema.properties?.[name] ?? schema.additionalProperties;
        if (childSchema === undefined) {
          if (schema.properties !== undefined) errors.push(`${at}.${name}: unknown field`);
        } else {
          errors.push(...validate(child, childSchema, `${path}.${name}`));
        }
      }
      return errors;
    }
    case "array": {
      if (!Array.isArray(value)) return [`${at}: not an array`];
      const items: unknown[] = value;
      const errors: string[] = [];
      if (schema.maxItems !== undefined && items.length > schema.maxItems) {
        errors.push(`${at}: more than ${schema.maxItems} items`);
      }
      if (schema["x-kubernetes-list-type"] === "set" && new Set(items).size !== items.length) {
        errors.push(`${at}: duplicate items`);
      }
      const mapKeys = schema["x-kubernetes-list-map-keys"] ?? [];
      if (schema["x-kubernetes-list-type"] === "map") {
        const keys = items.map((item) =>
          JSON.stringify(mapKeys.map((key) => (item as Record<string, unknown>)[key])),
        );
        if (new Set(keys).size !== keys.length) errors.push(`${at}: duplicate map keys`);
      }
      if (schema.items !== undefined) {
        const itemSchema = schema.items;
        items.forEach((item, index) => errors.push(...validate(item, itemSchema, `${path}[${index}]`)));
      }
      return errors;
    }
    case "string": {
      if (typeof value !== "string") return [`${at}: not a string`];
      const errors: string[] = [];
      if (schema.enum !== undefined && !schema.enum.includes(value)) errors.push(`${at}: not in enum`);
      if (schema.pattern !== undefined && !new RegExp(schema.pattern).test(value)) {
        errors.push(`${at}: does not match pattern`);
      }
      if (schema.minLength !== undefined && value.length < schema.minLength) errors.push(`${at}: too short`);
      if (schema.maxLength !== undefined && value.length > schema.maxLength) errors.push(`${at}: too long`);
      if (schema.format === "date-time" && !rfc3339.test(value)) errors.push(`${at}: not a date-time`);
      return errors;
    }
    case "integer": {
      if (typeof value !== "number" || !Number.isInteger(value)) return [`${at}: not an integer`];
      const errors: string[] = [];
      if (schema.minimum !== undefined && value < schema.minimum) errors.push(`${at}: below minimum`);
      if (schema.maximum !== undefined && value > schema.maximum) errors.push(`${at}: above maximum`);
      return errors;
    }
    case "boolean":
      return typeof value === "boolean" ? [] : [`${at}: not a boolean`];
  }
}

/** An ECRPullSecret that sets every field the schema has. */
const complete: ECRPullSecret = {
  apiVersion: "ecr-creds-refresher.io/v1alpha1",
  kind: "ECRPullSecret",
  metadata: { name: "prod-ecr" },
  spec: {
    secretName: "ecr-pull",
    namespaces: ["default", "team-*"],
    namespaceSelector: {
      matchLabels: { "ecr-pull": "true" },
      matchExpressions: [{ key: "example.com/tier", operator: "In", values: ["prod", "staging"] }],
    },
    excludeNamespaces: ["kube-*"],
    serviceAccounts: ["default", "builder"],
    registries: [
      "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
      "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
      "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
      "public.ecr.aws",
    ],
    region: "eu-west-1",
    aws: {
      credentialsSecretRef: { namespace: "ecr-system", name: "aws-creds" },
      assumeRole: {
        roleArn: "arn:aws:iam::123456789012:role/ecr-pull",
        externalId: "x1",
        sessionName: "ecr",
        durationSeconds: 3600,
      },
    },
    refreshInterval: "6h",
    suspend: false,
  },
  status: {
    observedGeneration: 3,
    conditions: [
      {
        type: "Ready",
        status: "True",
        observedGeneration: 3,
        lastTransitionTime: "2025-01-02T03:04:05Z",
        reason: "Synced",
        message: "42 of 42 namespaces synced",
      },
    ],
    tokenExpiresAt: "2025-01-02T15:04:05Z",
    lastRefreshTime: "2025-01-02T03:04:05Z",
    nextRefreshTime: "2025-01-02T09:04:05.5+01:00",
    registries: [
      {
        host: "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        tokenExpiresAt: "2025-01-02T15:04:05Z",
        lastRefreshTime: "2025-01-02T03:04:05Z",
      },
      {
        host: "public.ecr.aws",
        tokenExpiresAt: "2025-01-02T14:00:00Z",
        lastRefreshTime: "2025-01-02T02:00:00Z",
        lastError: { reason: "TokenRefreshFailed", message: "ServerException: try again" },
      },
    ],
    namespaces: { desired: 42, synced: 41 },
    synced: "41/42",
    failures: [
      { namespace: "team-x", reason: "SecretConflict", message: "a Secret ecr-pull already exists" },
    ],
  },
};

describe("ECRPullSecret CRD manifest", () => {
  it("names a cluster-scoped ecr-creds-refresher.io/v1alpha1 ECRPullSecret", () => {
    const { spec } = ecrPullSecretCrd;
    assert.equal(ecrPullSecretCrd.apiVersion, "apiextensions.k8s.io/v1");
    assert.equal(ecrPullSecretCrd.kind, "CustomResourceDefinition");
    assert.equal(ecrPullSecretCrd.metadata.name, `${spec.names.plural}.${spec.group}`);
    assert.equal(CRD_NAME, "ecrpullsecrets.ecr-creds-refresher.io");
    assert.equal(spec.scope, "Cluster");
    assert.deepEqual(spec.names, {
      kind: "ECRPullSecret",
      listKind: "ECRPullSecretList",
      plural: "ecrpullsecrets",
      singular: "ecrpullsecret",
      shortNames: ["ecrps"],
    });
  });

  it("serves and stores exactly one version, v1alpha1, with a status subresource", () => {
    const { versions } = ecrPullSecretCrd.spec;
    assert.equal(versions.length, 1);
    const [version] = versions;
    assert.equal(version.name, "v1alpha1");
    assert.equal(version.served, true);
    assert.equal(version.storage, true);
    assert.deepEqual(version.subresources, { status: {} });
    assert.equal(version.schema.openAPIV3Schema, openAPIV3Schema);
  });
});

describe("openAPIV3Schema", () => {
  const nodes = schemaNodes(root);

  it("gives every node a type, as a structural schema must", () => {
    const untyped = nodes.filter(({ schema }) => !("type" in schema)).map(({ path }) => path);
    assert.deepEqual(untyped, []);
  });

  it("never combines properties with additionalProperties", () => {
    const both = nodes
      .filter(({ schema }) => schema.properties !== undefined && schema.additionalProperties !== undefined)
      .map(({ path }) => path);
    assert.deepEqual(both, []);
  });

  it("lists only existing properties as required", () => {
    const missing = nodes.flatMap(({ path, schema }) =>
      (schema.required ?? [])
        .filter((name) => schema.properties?.[name] === undefined)
        .map((name) => `${path}.${name}`),
    );
    assert.deepEqual(missing, []);
  });

  it("bounds every list, map and free-form string so CEL cost estimates stay finite", () => {
    const unbounded = nodes
      .filter(({ path, schema }) => {
        if (schema.type === "array") return schema.maxItems === undefined;
        if (schema.type === "object")
          return schema.additionalProperties !== undefined && schema.maxProperties === undefined;
        if (schema.type === "string") {
          const fixedShape = schema.enum !== undefined || schema.format === "date-time";
          return !fixedShape && schema.maxLength === undefined && path !== ".apiVersion" && path !== ".kind";
        }
        return false;
      })
      .map(({ path }) => path);
    assert.deepEqual(unbounded, []);
  });

  it("uses set lists only for scalars and map lists only with required keys", () => {
    const wrong = nodes.flatMap(({ path, schema }) => {
      const listType = schema["x-kubernetes-list-type"];
      if (listType === "set" && schema.items?.type === "object") return [`${path}: set of objects`];
      if (listType === "map") {
        const keys = schema["x-kubernetes-list-map-keys"] ?? [];
        const required = schema.items?.required ?? [];
        if (keys.length === 0 || !keys.every((key) => required.includes(key))) return [`${path}: map keys`];
      }
      return [];
    });
    assert.deepEqual(wrong, []);
  });

  it("sets no defaults, so the operator can tell an absent field from an empty one", () => {
    const defaulted = nodes.filter(({ schema }) => "default" in schema).map(({ path }) => path);
    assert.deepEqual(defaulted, []);
    assert.equal(specSchema.properties.serviceAccounts.maxItems, limits.serviceAccounts);
    assert.equal("minItems" in specSchema.properties.serviceAccounts, false);
  });

  it("writes patterns that both RE2 and JavaScript understand", () => {
    const schemaPatterns = nodes.flatMap(({ schema }) =>
      schema.pattern === undefined ? [] : [schema.pattern],
    );
    for (const pattern of [...schemaPatterns, ...Object.values(patterns)]) {
      assert.doesNotThrow(() => new RegExp(pattern), pattern);
      assert.doesNotMatch(pattern, /\(\?[=!<]|\\[1-9]/, `lookaround or backreference in ${pattern}`);
      assert.match(pattern, /^\^.*\$$/, `unanchored ${pattern}`);
    }
  });

  it("checks with CEL only what OpenAPI cannot express, each rule with a message", () => {
    const rules = nodes.flatMap(({ path, schema }) =>
      (schema["x-kubernetes-validations"] ?? []).map((rule) => ({ path, ...rule })),
    );
    assert.deepEqual(
      rules.map(({ path }) => path),
      [
        "",
        ".spec.namespaceSelector.matchExpressions[]",
        ".spec.namespaceSelector.matchExpressions[]",
        ".spec.serviceAccounts",
        ".spec.refreshInterval",
      ],
    );
    for (const { rule, message } of rules) {
      assert.ok(rule.length > 0 && message.length > 0);
    }
  });

  it("accepts a resource that sets every field", () => {
    assert.deepEqual(validate(complete, root), []);
  });

  it("has no field that the TypeScript types lack", () => {
    // `complete` type-checks as an ECRPullSecret, so each field it sets is one the types know.
    const present = new Set(valuePaths(complete));
    const missing = nodes
      .map(({ path }) => path)
      .filter((path) => path !== "" && !path.includes("*") && !present.has(path));
    assert.deepEqual(missing, []);
  });

  it("requires spec but none of its fields", () => {
    assert.deepEqual(validate({ apiVersion: complete.apiVersion, kind: complete.kind, metadata: {} }, root), [
      ".spec: required",
    ]);
    assert.deepEqual(validate({ ...complete, spec: {} }, root), []);
  });

  const specCases: { name: string; spec: Record<string, unknown>; errors: string[] }[] = [
    { name: "a DNS-1123 secret name", spec: { secretName: "ecr.pull-1" }, errors: [] },
    {
      name: "an upper-case secret name",
      spec: { secretName: "ECR" },
      errors: [".spec.secretName: does not match pattern"],
    },
    {
      name: "a 254-character secret name",
      spec: { secretName: "a".repeat(254) },
      errors: [".spec.secretName: too long"],
    },
    {
      name: "namespace globs",
      spec: { namespaces: ["team-*", "a?c", "ns-[0-9]", "[!k]*", "[^k]*"] },
      errors: [],
    },
    {
      name: "a namespace glob with a slash",
      spec: { namespaces: ["a/b"] },
      errors: [".spec.namespaces[0]: does not match pattern"],
    },
    {
      name: "a negated namespace glob",
      spec: { namespaces: ["!kube-system"] },
      errors: [".spec.namespaces[0]: does not match pattern"],
    },
    {
      name: "a brace expansion",
      spec: { namespaces: ["{a,b}"] },
      errors: [".spec.namespaces[0]: does not match pattern"],
    },
    {
      name: "an empty namespace",
      spec: { namespaces: [""] },
      errors: [".spec.namespaces[0]: does not match pattern", ".spec.namespaces[0]: too short"],
    },
    {
      name: "a duplicated namespace",
      spec: { namespaces: ["a", "a"] },
      errors: [".spec.namespaces: duplicate items"],
    },
    {
      name: "257 namespaces",
      spec: { namespaces: Array.from({ length: 257 }, (_, i) => `ns-${i}`) },
      errors: [".spec.namespaces: more than 256 items"],
    },
    {
      name: "an excluded glob with upper case",
      spec: { excludeNamespaces: ["Kube-*"] },
      errors: [".spec.excludeNamespaces[0]: does not match pattern"],
    },
    { name: 'the service account "*"', spec: { serviceAccounts: ["*"] }, errors: [] },
    { name: "no service accounts", spec: { serviceAccounts: [] }, errors: [] },
    {
      name: "a service account glob",
      spec: { serviceAccounts: ["build-*"] },
      errors: [".spec.serviceAccounts[0]: does not match pattern"],
    },
    { name: "a region", spec: { region: "us-gov-west-1" }, errors: [] },
    { name: "an ISO region", spec: { region: "us-isob-east-1" }, errors: [] },
    {
      name: "a region without its number",
      spec: { region: "eu-west" },
      errors: [".spec.region: does not match pattern"],
    },
    {
      name: "a registry with a scheme",
      spec: { registries: ["https://123456789012.dkr.ecr.eu-west-1.amazonaws.com"] },
      errors: [".spec.registries[0]: does not match pattern"],
    },
    {
      name: "33 registries",
      spec: {
        registries: Array.from(
          { length: 33 },
          (_, i) => `${String(i).padStart(12, "0")}.dkr.ecr.eu-west-1.amazonaws.com`,
        ),
      },
      errors: [".spec.registries: more than 32 items"],
    },
    {
      name: "a GovCloud role ARN",
      spec: { aws: { assumeRole: { roleArn: "arn:aws-us-gov:iam::123456789012:role/path/ecr+pull" } } },
      errors: [],
    },
    {
      name: "a user ARN as role",
      spec: { aws: { assumeRole: { roleArn: "arn:aws:iam::123456789012:user/ecr" } } },
      errors: [".spec.aws.assumeRole.roleArn: does not match pattern"],
    },
    {
      name: "an assumeRole without a role ARN",
      spec: { aws: { assumeRole: { sessionName: "ecr" } } },
      errors: [".spec.aws.assumeRole.roleArn: required"],
    },
    {
      name: "a one-character external id",
      spec: { aws: { assumeRole: { roleArn: "arn:aws:iam::123456789012:role/r", externalId: "x" } } },
      errors: [".spec.aws.assumeRole.externalId: too short"],
    },
    {
      name: "a session name with a colon",
      spec: { aws: { assumeRole: { roleArn: "arn:aws:iam::123456789012:role/r", sessionName: "a:b" } } },
      errors: [".spec.aws.assumeRole.sessionName: does not match pattern"],
    },
    {
      name: "a role session of 899 seconds",
      spec: { aws: { assumeRole: { roleArn: "arn:aws:iam::123456789012:role/r", durationSeconds: 899 } } },
      errors: [".spec.aws.assumeRole.durationSeconds: below minimum"],
    },
    {
      name: "a role session of 43201 seconds",
      spec: { aws: { assumeRole: { roleArn: "arn:aws:iam::123456789012:role/r", durationSeconds: 43201 } } },
      errors: [".spec.aws.assumeRole.durationSeconds: above maximum"],
    },
    {
      name: "a credentials ref without a namespace",
      spec: { aws: { credentialsSecretRef: { name: "aws" } } },
      errors: [".spec.aws.credentialsSecretRef.namespace: required"],
    },
    { name: "a refresh interval of 1h30m", spec: { refreshInterval: "1h30m" }, errors: [] },
    {
      name: "a refresh interval in words",
      spec: { refreshInterval: "6 hours" },
      errors: [".spec.refreshInterval: does not match pattern"],
    },
    {
      name: "a bare number as refresh interval",
      spec: { refreshInterval: "90" },
      errors: [".spec.refreshInterval: does not match pattern"],
    },
    { name: "suspend as a string", spec: { suspend: "true" }, errors: [".spec.suspend: not a boolean"] },
    {
      name: "a selector with labels and expressions",
      spec: {
        namespaceSelector: {
          matchLabels: { "example.com/team": "a_b.c" },
          matchExpressions: [{ key: "tier", operator: "Exists" }],
        },
      },
      errors: [],
    },
    { name: "an empty selector", spec: { namespaceSelector: {} }, errors: [] },
    {
      name: "an unknown selector operator",
      spec: { namespaceSelector: { matchExpressions: [{ key: "a", operator: "Equals", values: ["b"] }] } },
      errors: [".spec.namespaceSelector.matchExpressions[0].operator: not in enum"],
    },
    {
      name: "a label key with two slashes",
      spec: { namespaceSelector: { matchExpressions: [{ key: "a/b/c", operator: "Exists" }] } },
      errors: [".spec.namespaceSelector.matchExpressions[0].key: does not match pattern"],
    },
    {
      name: "a label value with a space",
      spec: { namespaceSelector: { matchLabels: { a: "b c" } } },
      errors: [".spec.namespaceSelector.matchLabels.a: does not match pattern"],
    },
    { name: "an unknown spec field", spec: { namespace: ["a"] }, errors: [".spec.namespace: unknown field"] },
  ];

  for (const { name, spec, errors } of specCases) {
    it(`${errors.length === 0 ? "accepts" : "rejects"} ${name}`, () => {
      assert.deepEqual(validate({ ...complete, spec }, root), errors);
    });
  }

  const statusCases: { name: string; status: Record<string, unknown>; errors: string[] }[] = [
    {
      name: "a condition status other than True, False, Unknown",
      status: { conditions: [{ ...complete.status?.conditions?.[0], status: "Yes" }] },
      errors: [".status.conditions[0].status: not in enum"],
    },
    {
      name: "two conditions of one type",
      status: { conditions: [complete.status?.conditions?.[0], complete.status?.conditions?.[0]] },
      errors: [".status.conditions: duplicate map keys"],
    },
    {
      name: "a transition time that is not RFC 3339",
      status: { conditions: [{ ...complete.status?.conditions?.[0], lastTransitionTime: "yesterday" }] },
      errors: [".status.conditions[0].lastTransitionTime: not a date-time"],
    },
    {
      name: "a synced summary that is not n/m",
      status: { synced: "all" },
      errors: [".status.synced: does not match pattern"],
    },
    {
      name: "51 failures",
      status: { failures: Array.from({ length: 51 }, () => complete.status?.failures?.[0]) },
      errors: [".status.failures: more than 50 items"],
    },
    {
      name: "two registries entries for one host",
      status: { registries: [{ host: "public.ecr.aws" }, { host: "public.ecr.aws" }] },
      errors: [".status.registries: duplicate map keys"],
    },
    {
      name: "a registry error without a reason",
      status: { registries: [{ host: "public.ecr.aws", lastError: { message: "x" } }] },
      errors: [".status.registries[0].lastError.reason: required"],
    },
    {
      name: "a negative desired count",
      status: { namespaces: { desired: -1, synced: 0 } },
      errors: [".status.namespaces.desired: below minimum"],
    },
  ];

  for (const { name, status, errors } of statusCases) {
    it(`rejects ${name}`, () => {
      assert.deepEqual(validate({ ...complete, status }, root), errors);
    });
  }
});

describe("printer columns", () => {
  it("shows Ready, Synced, Expires and Age", () => {
    assert.deepEqual(
      printerColumns.map(({ name, type }) => `${name}:${type}`),
      ["Ready:string", "Synced:string", "Expires:string", "Age:date"],
    );
  });

  for (const column of printerColumns) {
    it(`points ${column.name} at a ${column.type === "date" ? "date-time" : "string"} field that exists`, () => {
      const target = resolveJsonPath(column.jsonPath);
      assert.notEqual(target, undefined, column.jsonPath);
      assert.equal(target?.type, "string");
      if (column.type === "date") assert.equal(target.format, "date-time");
    });
  }
});

// ObjectMeta is not spelled out in a CRD schema; these are the fields columns may use.
const objectMeta: Readonly<Record<string, JSONSchemaProps>> = {
  name: { type: "string" },
  creationTimestamp: { type: "string", format: "date-time" },
};

/** Follows `.a.b[?(@.c=="x")].d` through the schema; undefined when a step does not exist. */
function resolveJsonPath(jsonPath: string): JSONSchemaProps | undefined {
  const steps = jsonPath.match(/\.[A-Za-z]+|\[\?\(@\.[A-Za-z]+==".*?"\)\]/g) ?? [];
  assert.equal(steps.join(""), jsonPath, `unsupported JSONPath ${jsonPath}`);
  let schema: JSONSchemaProps | undefined = root;
  for (const step of steps) {
    if (schema === undefined) return undefined;
    const filter = /^\[\?\(@\.([A-Za-z]+)==/.exec(step);
    if (filter !== null) {
      const item: JSONSchemaProps | undefined = schema.items;
      if (schema.type !== "array" || item?.properties?.[filter[1] ?? ""] === undefined) return undefined;
      schema = item;
      continue;
    }
    const name = step.slice(1);
    schema = schema === root.properties?.metadata ? objectMeta[name] : schema.properties?.[name];
  }
  return schema;
}

/** The `.spec.namespaces[]`-style path of every value inside `value`. */
function valuePaths(value: unknown, path = ""): string[] {
  if (Array.isArray(value)) {
    const items: unknown[] = value;
    return [path, ...items.flatMap((item) => valuePaths(item, `${path}[]`))];
  }
  if (typeof value === "object" && value !== null) {
    return [path, ...Object.entries(value).flatMap(([name, child]) => valuePaths(child, `${path}.${name}`))];
  }
  return [path];
}
