// The operator's configuration: every flag, its environment variable and default in one table,
// validated once at start. Nothing else in src/ reads process.env.
import { isIP } from "node:net";
import * as v from "valibot";
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
const namespaceName = v.pipe(
  v.string("must be set"),
  v.regex(
    dns1123Label,
    "must be a namespace name (lowercase letters, digits and '-', at most 63 characters)",
  ),
  v.maxLength(63, "must be a namespace name of at most 63 characters"),
);

const secretRef = v.pipe(
  v.string(),
  v.regex(/^[^/]+\/[^/]+$/, "must be <namespace>/<name>"),
  v.transform((value) => {
    const [namespace = "", name = ""] = value.split("/");
    return { namespace, name };
  }),
  v.object({
    namespace: namespaceName,
    name: v.pipe(v.string(), v.maxLength(253, "the Secret name must be at most 253 characters")),
  }),
);

const positiveInt = (max: number) =>
  v.pipe(
    v.string(),
    v.toNumber("must be a whole number"),
    v.integer("must be a whole number"),
    // A nested schema runs only on a whole number: a fraction is not also reported as out of range.
    v.pipe(v.number(), v.minValue(1, "must be at least 1"), v.maxValue(max, `must be at most ${max}`)),
  );

const booleanFlag = v.pipe(
  v.picklist(["true", "false", "1", "0", "yes", "no"], "must be true or false"),
  v.transform((value) => ["true", "1", "yes"].includes(value)),
);

const oneOf = <const TOptions extends readonly string[]>(options: TOptions) =>
  v.picklist(options, `must be one of ${options.join(", ")}`);

const address = v.pipe(
  v.string(),
  v.regex(
    /^(\[[0-9a-fA-F:]+\]|[^:\s]*):\d{1,5}$|^0$/,
    'must be host:port (e.g. 0.0.0.0:8080, 127.0.0.1:0) or "0" for off',
  ),
  v.transform((value) => (value === "0" ? undefined : value)),
);

const dns1123Subdomain = new RegExp(patterns.dns1123Subdomain);

/** A Kubernetes object name: a DNS-1123 subdomain; `message` says which kind of name. */
const objectName = (message: string) =>
  v.pipe(v.string(), v.regex(dns1123Subdomain, message), v.maxLength(253, "must be at most 253 characters"));

/** A Go-style duration in milliseconds, at least `minMs`. */
const durationAtLeast = (minMs: number, message: string) =>
  v.pipe(
    v.string(),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const ms = parseDuration(dataset.value);
      if (isInvalidInput(ms) || ms < minMs) {
        addIssue({ message });
        return NEVER;
      }
      return ms;
    }),
  );

const nonEmptyPath = v.optional(v.pipe(v.string(), v.nonEmpty("must not be empty")));

/** The items of a comma-separated list, trimmed, without empty ones. */
const commaSeparated = v.transform((value: string) =>
  value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0),
);

const hostList = v.optional(
  v.pipe(
    v.string(),
    commaSeparated,
    v.array(
      v.pipe(
        v.string(),
        v.check(
          (host) => isIP(host) !== 0 || (host.length <= 253 && dns1123Subdomain.test(host)),
          "must be DNS names or IP addresses",
        ),
      ),
    ),
    v.minLength(1, "must name at least one DNS name or IP address"),
  ),
);

const endpointUrl = v.optional(
  v.pipe(
    v.string(),
    v.trim(),
    v.check((url) => /^https?:\/\//i.test(url) && URL.canParse(url), "must be an http(s) URL"),
    // The URL parser skips tabs and line breaks inside a URL: drop them, so the endpoint used is the one checked.
    v.transform((url) => url.replace(/[\t\n\r]/g, "")),
  ),
);

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

const configSchema = v.object({
  kubeconfig: nonEmptyPath,
  operatorNamespace: namespaceName,
  credentialsSecret: v.optional(secretRef),
  trustedCredentialsNamespaces: v.optional(v.pipe(v.string(), commaSeparated, v.array(namespaceName))),
  region: v.optional(
    v.pipe(v.string(), v.regex(new RegExp(patterns.region), "must be an AWS region such as eu-west-1")),
  ),
  awsEndpointUrl: endpointUrl,
  awsEndpointUrlEcr: endpointUrl,
  awsEndpointUrlEcrPublic: endpointUrl,
  awsEndpointUrlSts: endpointUrl,
  logLevel: oneOf(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
  logFormat: oneOf(["json", "pretty", "auto"]),
  workers: positiveInt(64),
  writeConcurrency: positiveInt(256),
  leaderElect: booleanFlag,
  leaseName: objectName("must be a DNS-1123 name"),
  metricsAddr: address,
  healthAddr: address,
  watchStuckAfter: durationAtLeast(1000, "must be a duration of at least 1s, e.g. 3m"),
  webhookAddr: address,
  webhookCertDir: nonEmptyPath,
  webhookSecret: objectName("must be a Secret name"),
  webhookConfiguration: objectName("must be a DNS-1123 name"),
  webhookCertHosts: hostList,
  webhookCertValidity: durationAtLeast(5000, "must be a duration of at least 5s, e.g. 2160h"),
  dryRun: booleanFlag,
  output: oneOf(["table", "json"]),
});

export type RawConfig = Partial<Record<FlagName, string>>;

export type Config = Omit<
  v.InferOutput<typeof configSchema>,
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
  const parsed = v.safeParse(configSchema, raw);
  if (!parsed.success) {
    const lines = parsed.issues.map((issue) => {
      const flagKey = issue.path?.[0]?.key;
      const key = (typeof flagKey === "string" ? flagKey : "") as FlagName;
      const spec = flags[key] as FlagSpec | undefined;
      const name = spec === undefined ? key : `${spec.flag.split(" ")[0] ?? key} (${spec.env})`;
      return `${name}: ${issue.message}`;
    });
    throw new ConfigError(lines.join("\n"));
  }
  const config = parsed.output;
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
