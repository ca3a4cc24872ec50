// The operator's configuration: every flag, its environment variable and default in one table,
// validated once at start. Nothing else in src/ reads process.env.
import { z } from "zod";
import { patterns } from "./api/crd.ts";

export interface FlagSpec {
  flag: string;
  env: string;
  description: string;
  default?: string;
}

/** Flags shared by `run` and `once`, in the order `--help` lists them. */
export const flags = {
  kubeconfig: {
    flag: "--kubeconfig <path>",
    env: "KUBECONFIG",
    description: "kubeconfig file; default: in-cluster config, then ~/.kube/config",
  },
  operatorNamespace: {
    flag: "--operator-namespace <name>",
    env: "ECR_REFRESHER_NAMESPACE",
    description:
      "namespace the operator runs in (Lease, Events of cluster-scoped objects, default trusted namespace)",
  },
  credentialsSecret: {
    flag: "--credentials-secret <namespace/name>",
    env: "ECR_REFRESHER_CREDENTIALS_SECRET",
    description:
      "Secret with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and optional AWS_SESSION_TOKEN; default: the AWS SDK default chain (IRSA, Pod Identity, instance role, environment)",
  },
  trustedCredentialsNamespaces: {
    flag: "--trusted-credentials-namespaces <list>",
    env: "ECR_REFRESHER_TRUSTED_CREDENTIALS_NAMESPACES",
    description:
      "comma-separated namespaces an ECRPullSecret may take credentials from; default: the operator namespace",
  },
  region: {
    flag: "--region <region>",
    env: "AWS_REGION",
    description: "AWS region for ECRPullSecrets that name neither spec.region nor spec.registries",
  },
  awsEndpointUrl: {
    flag: "--aws-endpoint-url <url>",
    env: "AWS_ENDPOINT_URL",
    description: "send AWS API calls to this endpoint (VPC endpoints, AWS stand-ins)",
  },
  logLevel: {
    flag: "--log-level <level>",
    env: "ECR_REFRESHER_LOG_LEVEL",
    description: "fatal, error, warn, info, debug or trace",
    default: "info",
  },
  logFormat: {
    flag: "--log-format <format>",
    env: "ECR_REFRESHER_LOG_FORMAT",
    description: "json, pretty, or auto (pretty when stdout is a terminal)",
    default: "auto",
  },
  workers: {
    flag: "--workers <n>",
    env: "ECR_REFRESHER_WORKERS",
    description: "ECRPullSecrets reconciled in parallel",
    default: "4",
  },
  writeConcurrency: {
    flag: "--write-concurrency <n>",
    env: "ECR_REFRESHER_WRITE_CONCURRENCY",
    description: "API writes in flight at once for one ECRPullSecret",
    default: "32",
  },
} as const satisfies Record<string, FlagSpec>;

export type FlagName = keyof typeof flags;

const dns1123Label = new RegExp(patterns.dns1123Label);
const namespaceName = z
  .string()
  .regex(dns1123Label, "must be a namespace name (lowercase letters, digits and '-', at most 63 characters)")
  .max(63);

const secretRef = z
  .string()
  .regex(/^[^/]+\/[^/]+$/, "must be <namespace>/<name>")
  .transform((value) => {
    const [namespace = "", name = ""] = value.split("/");
    return { namespace, name };
  })
  .pipe(z.object({ namespace: namespaceName, name: z.string().min(1).max(253) }));

const positiveInt = (max: number) =>
  z.coerce
    .number()
    .int("must be a whole number")
    .min(1, "must be at least 1")
    .max(max, `must be at most ${max}`);

export const configSchema = z.object({
  kubeconfig: z.string().min(1).optional(),
  operatorNamespace: namespaceName,
  credentialsSecret: secretRef.optional(),
  trustedCredentialsNamespaces: z
    .string()
    .optional()
    .transform((value) =>
      value === undefined
        ? undefined
        : value
            .split(",")
            .map((s) => s.trim())
            .filter((s) => s.length > 0),
    )
    .pipe(z.array(namespaceName).optional()),
  region: z.string().regex(new RegExp(patterns.region), "must be an AWS region such as eu-west-1").optional(),
  awsEndpointUrl: z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }).optional(),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
  logFormat: z.enum(["json", "pretty", "auto"]),
  workers: positiveInt(64),
  writeConcurrency: positiveInt(256),
});

export type RawConfig = Partial<Record<FlagName, string>>;

export type Config = Omit<z.output<typeof configSchema>, "trustedCredentialsNamespaces"> & {
  trustedCredentialsNamespaces: string[];
};

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/**
 * Merges flags over environment over defaults and validates the result. Throws ConfigError with
 * one line per bad value, naming the flag and its environment variable.
 */
export function loadConfig(
  cliValues: RawConfig,
  env: Readonly<Record<string, string | undefined>>,
  fallbacks: RawConfig = {},
): Config {
  const raw: Record<string, string | undefined> = {};
  for (const [key, spec] of Object.entries(flags) as [FlagName, FlagSpec][]) {
    const fromEnv = env[spec.env];
    raw[key] = cliValues[key] ?? (fromEnv === "" ? undefined : fromEnv) ?? fallbacks[key] ?? spec.default;
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const key = String(issue.path[0] ?? "") as FlagName;
      const spec = flags[key] as FlagSpec | undefined;
      const name = spec === undefined ? key : `${spec.flag.split(" ")[0] ?? key} (${spec.env})`;
      return `${name}: ${issue.message}`;
    });
    throw new ConfigError(lines.join("\n"));
  }
  const config = parsed.data;
  return {
    ...config,
    trustedCredentialsNamespaces: config.trustedCredentialsNamespaces ?? [config.operatorNamespace],
  };
}
