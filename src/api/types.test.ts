// The types are derived at compile time, so these checks fail when `tsc` runs (part of `npm test`):
// each `true` below only type-checks while the two types it compares are identical.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { openAPIV3Schema, secretReferenceSchema } from "./crd.ts";
import type { FromSchema } from "./from-schema.ts";
import type {
  AssumeRole,
  Condition,
  ECRPullSecret,
  ECRPullSecretSpec,
  ECRPullSecretStatus,
  LabelSelector,
  NamespaceFailure,
  RegistryStatus,
} from "./types.ts";
import { API_VERSION, DEFAULT_SERVICE_ACCOUNTS, GROUP, KIND, PLURAL, VERSION } from "./types.ts";

/** Mutual assignability: enough to tell required from optional, and one union or shape from another. */
type Equal<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

describe("FromSchema", () => {
  it("makes properties listed in `required` mandatory and the rest optional", () => {
    const checks: [
      Equal<FromSchema<typeof secretReferenceSchema>, { namespace: string; name: string }>,
      Equal<FromSchema<typeof openAPIV3Schema>["spec"], ECRPullSecretSpec>,
      Equal<FromSchema<typeof openAPIV3Schema>["status"], ECRPullSecretStatus | undefined>,
    ] = [true, true, true];
    assert.deepEqual(checks, [true, true, true]);
  });

  it("maps enums to unions, maps to records, and free-form objects to unknown records", () => {
    const checks: [
      Equal<Condition["status"], "True" | "False" | "Unknown">,
      Equal<LabelSelector["matchLabels"], Record<string, string> | undefined>,
      Equal<FromSchema<typeof openAPIV3Schema>["metadata"], Record<string, unknown> | undefined>,
      Equal<ECRPullSecretSpec["suspend"], boolean | undefined>,
      Equal<ECRPullSecretSpec["registries"], string[] | undefined>,
    ] = [true, true, true, true, true];
    assert.deepEqual(checks, [true, true, true, true, true]);
  });
});

describe("ECRPullSecret types", () => {
  it("derive every spec field from the schema, all optional", () => {
    const checks: [
      Equal<keyof ECRPullSecretSpec, ExpectedSpecKeys>,
      Equal<Required<ECRPullSecretSpec>, ECRPullSecretSpec>,
    ] = [true, false];
    assert.deepEqual(checks, [true, false]);
  });

  it("keep an absent serviceAccounts distinct from an empty one", () => {
    const checks: [Equal<ECRPullSecretSpec["serviceAccounts"], string[] | undefined>] = [true];
    assert.deepEqual(checks, [true]);
    assert.deepEqual(DEFAULT_SERVICE_ACCOUNTS, ["default"]);
  });

  it("require a role ARN whenever a role is assumed", () => {
    type Expected = { roleArn: string; externalId?: string; sessionName?: string; durationSeconds?: number };
    const checks: [Equal<AssumeRole, Expected>] = [true];
    assert.deepEqual(checks, [true]);
  });

  it("give conditions the metav1.Condition shape", () => {
    type Expected = {
      type: string;
      status: "True" | "False" | "Unknown";
      observedGeneration?: number;
      lastTransitionTime: string;
      reason: string;
      message: string;
    };
    const checks: [Equal<Condition, Expected>] = [true];
    assert.deepEqual(checks, [true]);
  });

  it("give the label selector the metav1.LabelSelector shape", () => {
    type Expected = {
      matchLabels?: Record<string, string>;
      matchExpressions?: {
        key: string;
        operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
        values?: string[];
      }[];
    };
    const checks: [Equal<LabelSelector, Expected>] = [true];
    assert.deepEqual(checks, [true]);
  });

  it("derive status fields, with failures, namespace counts and registries", () => {
    const checks: [
      Equal<keyof ECRPullSecretStatus, ExpectedStatusKeys>,
      Equal<NamespaceFailure, { namespace: string; reason: string; message: string }>,
      Equal<ECRPullSecretStatus["namespaces"], { desired: number; synced: number } | undefined>,
      Equal<
        RegistryStatus,
        {
          host: string;
          tokenExpiresAt?: string;
          lastRefreshTime?: string;
          lastError?: { reason: string; message: string };
        }
      >,
    ] = [true, true, true, true];
    assert.deepEqual(checks, [true, true, true, true]);
  });

  it("name the API as ecr-creds-refresher.io/v1alpha1 ECRPullSecret", () => {
    const resource: ECRPullSecret = {
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: { name: "prod" },
      spec: {},
    };
    assert.equal(resource.apiVersion, "ecr-creds-refresher.io/v1alpha1");
    assert.equal(`${GROUP}/${VERSION}`, API_VERSION);
    assert.equal(resource.kind, "ECRPullSecret");
    assert.equal(PLURAL, "ecrpullsecrets");
  });
});

type ExpectedSpecKeys =
  | "secretName"
  | "namespaces"
  | "namespaceSelector"
  | "excludeNamespaces"
  | "serviceAccounts"
  | "registries"
  | "region"
  | "aws"
  | "refreshInterval"
  | "suspend";

type ExpectedStatusKeys =
  | "observedGeneration"
  | "conditions"
  | "tokenExpiresAt"
  | "lastRefreshTime"
  | "nextRefreshTime"
  | "registries"
  | "namespaces"
  | "synced"
  | "failures";
