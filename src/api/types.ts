// TypeScript types of the ECRPullSecret API, derived from the schema in crd.ts so the two cannot drift.

import type { V1ObjectMeta } from "@kubernetes/client-node";
import type {
  assumeRoleSchema,
  awsSchema,
  conditionSchema,
  labelSelectorRequirementSchema,
  labelSelectorSchema,
  namespaceFailureSchema,
  registryStatusSchema,
  secretReferenceSchema,
  specSchema,
  statusSchema,
} from "./crd.ts";
import type { API_VERSION, KIND } from "./crd.ts";
import type { FromSchema } from "./from-schema.ts";

export { API_VERSION, GROUP, KIND, LIST_KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION } from "./crd.ts";

export type ECRPullSecretSpec = FromSchema<typeof specSchema>;
export type ECRPullSecretStatus = FromSchema<typeof statusSchema>;
export type LabelSelector = FromSchema<typeof labelSelectorSchema>;
export type LabelSelectorRequirement = FromSchema<typeof labelSelectorRequirementSchema>;
export type AwsSettings = FromSchema<typeof awsSchema>;
export type SecretReference = FromSchema<typeof secretReferenceSchema>;
export type AssumeRole = FromSchema<typeof assumeRoleSchema>;
export type Condition = FromSchema<typeof conditionSchema>;
export type ConditionStatus = Condition["status"];
export type NamespaceFailure = FromSchema<typeof namespaceFailureSchema>;
export type RegistryStatus = FromSchema<typeof registryStatusSchema>;

/** Why a namespace was not synced, as status.failures and the metrics give it. */
export type NamespaceFailureReason = "SecretConflict" | "Forbidden" | "WriteFailed";

/**
 * client-node's ObjectMeta fields as a plain object type: V1ObjectMeta itself is a class, and object
 * literals (in tests, in desired state) must not pose as instances of it.
 */
export type ObjectMeta = { [K in keyof V1ObjectMeta]: V1ObjectMeta[K] };

export interface ECRPullSecret {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: ObjectMeta;
  spec: ECRPullSecretSpec;
  status?: ECRPullSecretStatus;
}

/** ServiceAccounts patched when spec.serviceAccounts is left out; an explicit [] patches none. */
export const DEFAULT_SERVICE_ACCOUNTS: readonly string[] = ["default"];
