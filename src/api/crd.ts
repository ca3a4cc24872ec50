// The ECRPullSecret API (ecr-creds-refresher.io/v1alpha1): its OpenAPI schema and CRD manifest.
// types.ts derives the TypeScript types from these constants and render-crd.ts turns the manifest
// into the YAML under deploy/, so this file is the only place the API is written down.
//
// Patterns are written for both Go's RE2 (the API server) and ECMAScript (our tests and parsers):
// no lookaround, no backreferences. Every string and list carries a bound so that the CEL rules
// stay within the API server's cost budget.

export const GROUP = "ecr-creds-refresher.io";
export const VERSION = "v1alpha1";
export const KIND = "ECRPullSecret";
export const LIST_KIND = "ECRPullSecretList";
export const PLURAL = "ecrpullsecrets";
export const SINGULAR = "ecrpullsecret";
export const SHORT_NAMES = ["ecrps"] as const;
/** The `apiVersion` field of an ECRPullSecret. */
export const API_VERSION = `${GROUP}/${VERSION}` as const;
export const CRD_NAME = `${PLURAL}.${GROUP}` as const;

const dns1123Label = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const dns1123Subdomain = `${dns1123Label}([.]${dns1123Label})*`;
const labelName = "[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?";
// Any AWS commercial or GovCloud region except China's, whose ECR hosts end in .amazonaws.com.cn.
const nonChinaRegion = "([abd-z][a-z]|c[a-mo-z])(-gov)?-[a-z]+-[0-9]";
const chinaRegion = "cn-[a-z]+-[0-9]";

export const patterns = {
  dns1123Label: `^${dns1123Label}$`,
  dns1123Subdomain: `^${dns1123Subdomain}$`,
  /** Namespace names plus `*`, `?` and bracket expressions such as `[a-c]`, `[!x]`. */
  namespaceGlob: "^([-a-z0-9*?]|\\[[!^]?[-a-z0-9]+\\])+$",
  serviceAccountName: `^([*]|${dns1123Subdomain})$`,
  registryHost:
    `^([0-9]{12}[.]dkr[.]ecr(-fips)?[.]${nonChinaRegion}[.]amazonaws[.]com` +
    `|[0-9]{12}[.]dkr[.]ecr[.]${chinaRegion}[.]amazonaws[.]com[.]cn` +
    `|public[.]ecr[.]aws)$`,
  region: "^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$",
  roleArn: "^arn:aws(-cn|-us-gov|-iso|-iso-b)?:iam::[0-9]{12}:role/[\\w+=,.@/-]{1,512}$",
  externalId: "^[\\w+=,.@:/-]+$",
  sessionName: "^[\\w+=,.@-]{2,64}$",
  /** A subset of Go's time.ParseDuration syntax: units h, m, s and ms, optional decimals. */
  duration: "^([0-9]+([.][0-9]+)?(ms|s|m|h))+$",
  labelKey: `^(${dns1123Subdomain}/)?${labelName}$`,
  labelValue: "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$",
  conditionType: `^(${dns1123Subdomain}/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$`,
  conditionReason: "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
  syncedSummary: "^[0-9]+/[0-9]+$",
} as const;

export const limits = {
  namespacePatterns: 256,
  serviceAccounts: 256,
  registries: 32,
  matchExpressions: 32,
  matchExpressionValues: 128,
  matchLabels: 64,
  conditions: 16,
  failures: 50,
  failureMessageLength: 1024,
} as const;

export const refreshIntervalBounds = { min: "1m", max: "12h" } as const;

/** The subset of apiextensions.k8s.io/v1 JSONSchemaProps this API uses; `satisfies` catches typos. */
export interface JSONSchemaProps {
  readonly type: "object" | "array" | "string" | "integer" | "boolean";
  readonly description?: string;
  readonly properties?: Readonly<Record<string, JSONSchemaProps>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: JSONSchemaProps;
  readonly maxProperties?: number;
  readonly items?: JSONSchemaProps;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly enum?: readonly string[];
  readonly format?: "date-time" | "int32" | "int64";
  readonly pattern?: string;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly "x-kubernetes-list-type"?: "atomic" | "set" | "map";
  readonly "x-kubernetes-list-map-keys"?: readonly string[];
  readonly "x-kubernetes-map-type"?: "atomic" | "granular";
  readonly "x-kubernetes-validations"?: readonly { readonly rule: string; readonly message: string }[];
}

const namespacePattern = {
  type: "string",
  minLength: 1,
  maxLength: 63,
  pattern: patterns.namespaceGlob,
} as const satisfies JSONSchemaProps;

export const labelSelectorRequirementSchema = {
  type: "object",
  description: "A label requirement: key, operator and values, as in metav1.LabelSelectorRequirement.",
  required: ["key", "operator"],
  properties: {
    key: { type: "string", maxLength: 317, pattern: patterns.labelKey },
    operator: { type: "string", enum: ["In", "NotIn", "Exists", "DoesNotExist"] },
    values: {
      type: "array",
      maxItems: limits.matchExpressionValues,
      items: { type: "string", maxLength: 63, pattern: patterns.labelValue },
    },
  },
  "x-kubernetes-validations": [
    {
      rule: "!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)",
      message: "values must be non-empty when operator is In or NotIn",
    },
    {
      rule: "!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || size(self.values) == 0",
      message: "values must be empty when operator is Exists or DoesNotExist",
    },
  ],
} as const satisfies JSONSchemaProps;

export const labelSelectorSchema = {
  type: "object",
  description:
    "Namespaces whose labels match, with metav1.LabelSelector semantics. {} selects every namespace; " +
    "leaving the field out selects none. Unioned with `namespaces`.",
  "x-kubernetes-map-type": "atomic",
  properties: {
    matchLabels: {
      type: "object",
      maxProperties: limits.matchLabels,
      additionalProperties: { type: "string", maxLength: 63, pattern: patterns.labelValue },
    },
    matchExpressions: {
      type: "array",
      maxItems: limits.matchExpressions,
      items: labelSelectorRequirementSchema,
    },
  },
} as const satisfies JSONSchemaProps;

export const secretReferenceSchema = {
  type: "object",
  description:
    "A Secret holding AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (optionally AWS_SESSION_TOKEN). " +
    "Its namespace must be one the operator is configured to trust.",
  required: ["namespace", "name"],
  properties: {
    namespace: { type: "string", maxLength: 63, pattern: patterns.dns1123Label },
    name: { type: "string", maxLength: 253, pattern: patterns.dns1123Subdomain },
  },
} as const satisfies JSONSchemaProps;

export const assumeRoleSchema = {
  type: "object",
  description: "An IAM role to assume with the base credentials before asking ECR for a token.",
  required: ["roleArn"],
  properties: {
    roleArn: { type: "string", maxLength: 2048, pattern: patterns.roleArn },
    externalId: { type: "string", minLength: 2, maxLength: 1224, pattern: patterns.externalId },
    sessionName: { type: "string", minLength: 2, maxLength: 64, pattern: patterns.sessionName },
    durationSeconds: { type: "integer", format: "int32", minimum: 900, maximum: 43200 },
  },
} as const satisfies JSONSchemaProps;

export const awsSchema = {
  type: "object",
  description: "AWS credentials for this resource; without it the operator's default credentials are used.",
  properties: {
    credentialsSecretRef: secretReferenceSchema,
    assumeRole: assumeRoleSchema,
  },
} as const satisfies JSONSchemaProps;

export const specSchema = {
  type: "object",
  description: "Which pull secret to keep fresh, in which namespaces, for which registries.",
  properties: {
    secretName: {
      type: "string",
      description: "Name of the managed Secret in each namespace. Defaults to metadata.name.",
      maxLength: 253,
      pattern: patterns.dns1123Subdomain,
    },
    namespaces: {
      type: "array",
      description: "Target namespaces: exact names or globs (`*`, `?`, `[a-z]`, `[!a-z]`).",
      maxItems: limits.namespacePatterns,
      "x-kubernetes-list-type": "set",
      items: namespacePattern,
    },
    namespaceSelector: labelSelectorSchema,
    excludeNamespaces: {
      type: "array",
      description: "Namespaces never targeted, as names or globs; applied after namespaces and the selector.",
      maxItems: limits.namespacePatterns,
      "x-kubernetes-list-type": "set",
      items: namespacePattern,
    },
    serviceAccounts: {
      type: "array",
      description:
        "ServiceAccounts whose imagePullSecrets get the Secret. Left out: [default]. " +
        '["*"]: every ServiceAccount. []: none.',
      maxItems: limits.serviceAccounts,
      "x-kubernetes-list-type": "set",
      items: { type: "string", maxLength: 253, pattern: patterns.serviceAccountName },
      "x-kubernetes-validations": [
        {
          rule: "!('*' in self) || size(self) == 1",
          message: '"*" selects every ServiceAccount and must be the only entry',
        },
      ],
    },
    registries: {
      type: "array",
      description:
        "Registry hosts written into .dockerconfigjson: <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn] " +
        "or public.ecr.aws. Defaults to the token's own registry in `region`.",
      maxItems: limits.registries,
      "x-kubernetes-list-type": "set",
      items: { type: "string", maxLength: 253, pattern: patterns.registryHost },
    },
    region: {
      type: "string",
      description: "AWS region to mint a token in when `registries` is empty, e.g. eu-west-1.",
      maxLength: 32,
      pattern: patterns.region,
    },
    aws: awsSchema,
    refreshInterval: {
      type: "string",
      description:
        "Longest age of a token before it is refreshed, between 1m and 12h, e.g. 6h, 90m, 1h30m. " +
        "Defaults to half the token's lifetime.",
      maxLength: 32,
      pattern: patterns.duration,
      "x-kubernetes-validations": [
        {
          rule:
            `!self.matches('${patterns.duration}') || ` +
            `(duration(self) >= duration('${refreshIntervalBounds.min}') && ` +
            `duration(self) <= duration('${refreshIntervalBounds.max}'))`,
          message: `refreshInterval must be between ${refreshIntervalBounds.min} and ${refreshIntervalBounds.max}`,
        },
      ],
    },
    suspend: {
      type: "boolean",
      description: "Stops refreshing and writing; existing Secrets are left as they are.",
    },
  },
} as const satisfies JSONSchemaProps;

/** A machine-readable reason, as metav1.Condition's; conditions, failures and registry errors share it. */
const reasonSchema = {
  type: "string",
  minLength: 1,
  maxLength: 1024,
  pattern: patterns.conditionReason,
} as const satisfies JSONSchemaProps;

const failureMessageSchema = {
  type: "string",
  maxLength: limits.failureMessageLength,
} as const satisfies JSONSchemaProps;

export const conditionSchema = {
  type: "object",
  description: "A metav1.Condition: Ready, TokenValid and others.",
  required: ["type", "status", "lastTransitionTime", "reason", "message"],
  properties: {
    type: { type: "string", maxLength: 316, pattern: patterns.conditionType },
    status: { type: "string", enum: ["True", "False", "Unknown"] },
    observedGeneration: { type: "integer", format: "int64", minimum: 0 },
    lastTransitionTime: { type: "string", format: "date-time" },
    reason: reasonSchema,
    message: { type: "string", maxLength: 32768 },
  },
} as const satisfies JSONSchemaProps;

export const namespaceFailureSchema = {
  type: "object",
  description: "Why one namespace could not be synced.",
  required: ["namespace", "reason", "message"],
  properties: {
    namespace: { type: "string", maxLength: 63, pattern: patterns.dns1123Label },
    reason: reasonSchema,
    message: failureMessageSchema,
  },
} as const satisfies JSONSchemaProps;

export const registryErrorSchema = {
  type: "object",
  description:
    "Why refreshing this host's token fails, as the Ready condition would say it; never a secret value.",
  required: ["reason", "message"],
  properties: {
    reason: reasonSchema,
    message: failureMessageSchema,
  },
} as const satisfies JSONSchemaProps;

export const registryStatusSchema = {
  type: "object",
  description:
    "One registry host of the managed Secrets. A host whose token cannot be refreshed keeps its last " +
    "good entry until that expires, and is left out of the Secrets while it has no valid token.",
  required: ["host"],
  properties: {
    host: { type: "string", maxLength: 253 },
    tokenExpiresAt: {
      type: "string",
      description:
        "When the token written for this host expires; in the past once it has expired and its entry " +
        "was removed. Absent while the host has never had a token.",
      format: "date-time",
    },
    lastRefreshTime: {
      type: "string",
      description: "When the token written for this host was minted.",
      format: "date-time",
    },
    lastError: registryErrorSchema,
  },
} as const satisfies JSONSchemaProps;

export const statusSchema = {
  type: "object",
  description: "What the operator last observed and did; written only by the operator.",
  properties: {
    observedGeneration: { type: "integer", format: "int64", minimum: 0 },
    conditions: {
      type: "array",
      maxItems: limits.conditions,
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["type"],
      items: conditionSchema,
    },
    tokenExpiresAt: {
      type: "string",
      description:
        "When the first token in the managed Secrets expires: the earliest of the entries they carry.",
      format: "date-time",
    },
    lastRefreshTime: {
      type: "string",
      description: "When the managed Secrets were last written with a fresh token.",
      format: "date-time",
    },
    nextRefreshTime: {
      type: "string",
      description: "When the next token refresh is due.",
      format: "date-time",
    },
    namespaces: {
      type: "object",
      description: "How many namespaces are targeted, and how many hold an up-to-date Secret.",
      required: ["desired", "synced"],
      properties: {
        desired: { type: "integer", format: "int32", minimum: 0 },
        synced: { type: "integer", format: "int32", minimum: 0 },
      },
    },
    synced: {
      type: "string",
      description:
        'namespaces.synced and namespaces.desired as "synced/desired", e.g. "42/42", for the Synced ' +
        "printer column (printer columns cannot join two fields).",
      maxLength: 32,
      pattern: patterns.syncedSummary,
    },
    registries: {
      type: "array",
      description:
        "Each registry host the managed Secrets are for, with its own token expiry and, while refreshing " +
        "its token fails, the error.",
      maxItems: limits.registries,
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["host"],
      items: registryStatusSchema,
    },
    failures: {
      type: "array",
      description: `Namespaces that failed to sync, at most ${limits.failures}.`,
      maxItems: limits.failures,
      items: namespaceFailureSchema,
    },
  },
} as const satisfies JSONSchemaProps;

export const openAPIV3Schema = {
  type: "object",
  description:
    "ECRPullSecret keeps a kubernetes.io/dockerconfigjson Secret with a fresh AWS ECR token in every " +
    "target namespace and lists it in the chosen ServiceAccounts' imagePullSecrets.",
  required: ["spec"],
  "x-kubernetes-validations": [
    {
      // The name is the value of the owner label on every managed Secret.
      rule: "size(self.metadata.name) <= 63",
      message: "metadata.name must be at most 63 characters: it labels the managed Secrets",
    },
  ],
  properties: {
    apiVersion: { type: "string" },
    kind: { type: "string" },
    metadata: { type: "object" },
    spec: specSchema,
    status: statusSchema,
  },
} as const satisfies JSONSchemaProps;

export const printerColumns = [
  { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
  { name: "Synced", type: "string", jsonPath: ".status.synced" },
  // "string", not "date": kubectl shows future dates as <invalid>.
  { name: "Expires", type: "string", jsonPath: ".status.tokenExpiresAt" },
  { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
] as const;

export const ecrPullSecretCrd = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: CRD_NAME },
  spec: {
    group: GROUP,
    names: { kind: KIND, listKind: LIST_KIND, plural: PLURAL, singular: SINGULAR, shortNames: SHORT_NAMES },
    scope: "Cluster",
    versions: [
      {
        name: VERSION,
        served: true,
        storage: true,
        schema: { openAPIV3Schema },
        subresources: { status: {} },
        additionalPrinterColumns: printerColumns,
      },
    ],
  },
} as const;
