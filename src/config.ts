// The operator's configuration: every flag, its environment variable and default in one table,
// validated once at start. Nothing else in src/ reads process.env.
import { isIP } from "node:net";
import { z } from "zod";
import { patterns } from "./api/crd.ts";
import { parseDuration } from "./api/duration.ts";
import { isInvalidInput } from "./api/invalid-input.ts";

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
    description:
      "kubeconfig file, or a list of them as in KUBECONFIG; default: in-cluster config, then ~/.kube/config",
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
    description:
      "send every AWS API call (ECR, ECR Public, STS) to this endpoint: an AWS-compatible one such as LocalStack, or a stand-in",
  },
  awsEndpointUrlEcr: {
    flag: "--aws-endpoint-url-ecr <url>",
    env: "AWS_ENDPOINT_URL_ECR",
    description: "send ECR calls here instead (e.g. an ECR API VPC endpoint); wins over --aws-endpoint-url",
  },
  awsEndpointUrlEcrPublic: {
    flag: "--aws-endpoint-url-ecr-public <url>",
    env: "AWS_ENDPOINT_URL_ECR_PUBLIC",
    description: "send ECR Public calls here instead; wins over --aws-endpoint-url",
  },
  awsEndpointUrlSts: {
    flag: "--aws-endpoint-url-sts <url>",
    env: "AWS_ENDPOINT_URL_STS",
    description:
      "send STS calls (assumed roles) here instead (e.g. an STS VPC endpoint); wins over --aws-endpoint-url",
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
  leaderElect: {
    flag: "--leader-elect [bool]",
    env: "ECR_REFRESHER_LEADER_ELECT",
    description: "elect a leader through a Lease so that only one replica writes (run only)",
    default: "true",
  },
  leaseName: {
    flag: "--lease-name <name>",
    env: "ECR_REFRESHER_LEASE_NAME",
    description: "name of the leader-election Lease in the operator namespace",
    default: "ecr-creds-refresher",
  },
  metricsAddr: {
    flag: "--metrics-addr <host:port>",
    env: "ECR_REFRESHER_METRICS_ADDR",
    description: 'address for /metrics; "0" turns it off',
    default: "0.0.0.0:8080",
  },
  healthAddr: {
    flag: "--health-addr <host:port>",
    env: "ECR_REFRESHER_HEALTH_ADDR",
    description: 'address for /healthz and /readyz; "0" turns it off',
    default: "0.0.0.0:8081",
  },
  watchStuckAfter: {
    flag: "--watch-stuck-after <duration>",
    env: "ECR_REFRESHER_WATCH_STUCK_AFTER",
    description:
      "/healthz fails when no watch has received anything for this long (watches re-open every 30-45 s)",
    default: "3m",
  },
  webhookAddr: {
    flag: "--webhook-addr <host:port>",
    env: "ECR_REFRESHER_WEBHOOK_ADDR",
    description:
      'serve the Pod admission webhook (HTTPS, /mutate-v1-pod) here, on every replica (run only); "0" turns it off',
    default: "0",
  },
  webhookCertDir: {
    flag: "--webhook-cert-dir <path>",
    env: "ECR_REFRESHER_WEBHOOK_CERT_DIR",
    description:
      "read the webhook's serving certificate from tls.crt and tls.key in this directory (e.g. a mounted cert-manager Secret) and re-read them when they change; default: the operator issues and rotates its own",
  },
  webhookSecret: {
    flag: "--webhook-secret <name>",
    env: "ECR_REFRESHER_WEBHOOK_SECRET",
    description:
      "Secret in the operator namespace that holds the webhook's own CA and serving certificate (without --webhook-cert-dir)",
    default: "ecr-creds-refresher-webhook-tls",
  },
  webhookConfiguration: {
    flag: "--webhook-configuration <name>",
    env: "ECR_REFRESHER_WEBHOOK_CONFIGURATION",
    description:
      "MutatingWebhookConfiguration whose caBundle the operator keeps equal to its own CA (without --webhook-cert-dir)",
    default: "ecr-creds-refresher",
  },
  webhookCertHosts: {
    flag: "--webhook-cert-hosts <list>",
    env: "ECR_REFRESHER_WEBHOOK_CERT_HOSTS",
    description:
      "comma-separated DNS names and IP addresses of the operator's own serving certificate; default: the names of Service ecr-creds-refresher-webhook in the operator namespace",
  },
  webhookCertValidity: {
    flag: "--webhook-cert-validity <duration>",
    env: "ECR_REFRESHER_WEBHOOK_CERT_VALIDITY",
    description:
      "lifetime of the operator's own serving certificate (its CA lives four times as long); each is renewed when a third of its lifetime is left",
    default: "2160h",
  },
  dryRun: {
    flag: "--dry-run [bool]",
    env: "ECR_REFRESHER_DRY_RUN",
    description: "compute and print planned changes, write nothing",
    default: "false",
  },
  output: {
    flag: "--output <format>",
    env: "ECR_REFRESHER_OUTPUT",
    description: "once and --dry-run report format: table or json",
    default: "table",
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

const booleanFlag = z
  .enum(["true", "false", "1", "0", "yes", "no"], "must be true or false")
  .transform((v) => ["true", "1", "yes"].includes(v));

const address = z
  .string()
  .regex(
    /^(\[[0-9a-fA-F:]+\]|[^:\s]*):\d{1,5}$|^0$/,
    'must be host:port (e.g. 0.0.0.0:8080, 127.0.0.1:0) or "0" for off',
  )
  .transform((v) => (v === "0" ? undefined : v));

const dns1123Subdomain = new RegExp(patterns.dns1123Subdomain);

/** A Go-style duration in milliseconds, at least `minMs`. */
const durationAtLeast = (minMs: number, message: string) =>
  z.string().transform((value, ctx) => {
    const ms = parseDuration(value);
    if (isInvalidInput(ms) || ms < minMs) {
      ctx.addIssue({ code: "custom", message });
      return z.NEVER;
    }
    return ms;
  });

const hostList = z
  .string()
  .optional()
  .transform((value) =>
    value
      ?.split(",")
      .map((s) => s.trim())
      .filter((s) => s.length > 0),
  )
  .pipe(
    z
      .array(
        z
          .string()
          .refine(
            (host) => isIP(host) !== 0 || (host.length <= 253 && dns1123Subdomain.test(host)),
            "must be DNS names or IP addresses",
          ),
      )
      .min(1, "must name at least one DNS name or IP address")
      .optional(),
  );

const endpointUrl = z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }).optional();

/** The endpoint of each AWS API the operator calls; undefined: the SDK's default for the region. */
export interface AwsEndpoints {
  ecr: string | undefined;
  ecrPublic: string | undefined;
  sts: string | undefined;
}

/** The default names of the webhook Service, as the API server addresses it. */
export function webhookServiceHosts(service: string, namespace: string): string[] {
  return [`${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}

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
  awsEndpointUrl: endpointUrl,
  awsEndpointUrlEcr: endpointUrl,
  awsEndpointUrlEcrPublic: endpointUrl,
  awsEndpointUrlSts: endpointUrl,
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
  logFormat: z.enum(["json", "pretty", "auto"]),
  workers: positiveInt(64),
  writeConcurrency: positiveInt(256),
  leaderElect: booleanFlag,
  leaseName: z.string().regex(dns1123Subdomain, "must be a DNS-1123 name").max(253),
  metricsAddr: address,
  healthAddr: address,
  watchStuckAfter: durationAtLeast(1000, "must be a duration of at least 1s, e.g. 3m"),
  webhookAddr: address,
  webhookCertDir: z.string().min(1).optional(),
  webhookSecret: z.string().regex(dns1123Subdomain, "must be a Secret name").max(253),
  webhookConfiguration: z.string().regex(dns1123Subdomain, "must be a DNS-1123 name").max(253),
  webhookCertHosts: hostList,
  webhookCertValidity: durationAtLeast(5000, "must be a duration of at least 5s, e.g. 2160h"),
  dryRun: booleanFlag,
  output: z.enum(["table", "json"]),
});

export type RawConfig = Partial<Record<FlagName, string>>;

export type Config = Omit<
  z.output<typeof configSchema>,
  "trustedCredentialsNamespaces" | "webhookCertHosts"
> & {
  trustedCredentialsNamespaces: string[];
  webhookCertHosts: string[];
  /** A service's own endpoint wins over awsEndpointUrl, as in the AWS SDK. */
  awsEndpoints: AwsEndpoints;
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
    webhookCertHosts:
      config.webhookCertHosts ?? webhookServiceHosts("ecr-creds-refresher-webhook", config.operatorNamespace),
    awsEndpoints: {
      ecr: config.awsEndpointUrlEcr ?? config.awsEndpointUrl,
      ecrPublic: config.awsEndpointUrlEcrPublic ?? config.awsEndpointUrl,
      sts: config.awsEndpointUrlSts ?? config.awsEndpointUrl,
    },
  };
}
