import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ConfigError, loadConfig, type RawConfig } from "./config.ts";

const namespace = { operatorNamespace: "ecr-system" };

/** The lines of the ConfigError that loadConfig throws for these flags. */
function errorLines(cliValues: RawConfig, fallbacks: RawConfig = namespace): string[] {
  try {
    loadConfig(cliValues, {}, fallbacks);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.message.split("\n");
  }
  assert.fail("loadConfig accepted the values");
}

describe("loadConfig", () => {
  it("takes a flag over its environment variable, that over the fallback, and that over the default", () => {
    const env = { ECR_REFRESHER_WORKERS: "8", ECR_REFRESHER_NAMESPACE: "from-env" };
    assert.equal(loadConfig({ workers: "2" }, env).workers, 2);
    assert.equal(loadConfig({}, env).workers, 8);
    assert.equal(loadConfig({}, {}, { ...namespace, workers: "6" }).workers, 6);
    assert.equal(loadConfig({}, {}, namespace).workers, 4);
    assert.equal(loadConfig({}, env, { operatorNamespace: "from-pod" }).operatorNamespace, "from-env");
  });

  it("treats an empty environment variable as unset", () => {
    const config = loadConfig({}, { AWS_REGION: "", ECR_REFRESHER_LOG_LEVEL: "" }, namespace);
    assert.equal(config.region, undefined);
    assert.equal(config.logLevel, "info");
  });

  it("names the flag and its environment variable of every bad value", () => {
    assert.throws(
      () => loadConfig({ workers: "0" }, { ECR_REFRESHER_LEADER_ELECT: "maybe" }, namespace),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.deepEqual(err.message.split("\n"), [
          "--workers (ECR_REFRESHER_WORKERS): must be at least 1",
          "--leader-elect (ECR_REFRESHER_LEADER_ELECT): must be true or false",
        ]);
        return true;
      },
    );
  });

  it("sends each AWS service to its own endpoint variable, else to AWS_ENDPOINT_URL", () => {
    const config = loadConfig(
      {},
      { AWS_ENDPOINT_URL: "http://localstack:4566", AWS_ENDPOINT_URL_STS: "https://sts.vpce.example" },
      namespace,
    );
    assert.deepEqual(config.awsEndpoints, {
      ecr: "http://localstack:4566",
      ecrPublic: "http://localstack:4566",
      sts: "https://sts.vpce.example",
    });
  });

  it("says what a bad value must be instead", () => {
    const long = (length: number) => "a".repeat(length);
    const cases: { name: string; cli: RawConfig; fallbacks?: RawConfig; lines: string[] }[] = [
      {
        name: "no operator namespace",
        cli: {},
        fallbacks: {},
        lines: ["--operator-namespace (ECR_REFRESHER_NAMESPACE): must be set"],
      },
      {
        name: "a namespace longer than 63 characters",
        cli: { operatorNamespace: long(64) },
        lines: [
          "--operator-namespace (ECR_REFRESHER_NAMESPACE): must be a namespace name of at most 63 characters",
        ],
      },
      {
        name: "a trusted namespace longer than 63 characters",
        cli: { trustedCredentialsNamespaces: `ok,${long(64)}` },
        lines: [
          "--trusted-credentials-namespaces (ECR_REFRESHER_TRUSTED_CREDENTIALS_NAMESPACES): must be a namespace name of at most 63 characters",
        ],
      },
      {
        name: "a credentials Secret name longer than 253 characters",
        cli: { credentialsSecret: `ecr-system/${long(254)}` },
        lines: [
          "--credentials-secret (ECR_REFRESHER_CREDENTIALS_SECRET): the Secret name must be at most 253 characters",
        ],
      },
      {
        name: "an empty kubeconfig path",
        cli: { kubeconfig: "" },
        lines: ["--kubeconfig (KUBECONFIG): must not be empty"],
      },
      {
        name: "an empty webhook certificate directory",
        cli: { webhookCertDir: "" },
        lines: ["--webhook-cert-dir (ECR_REFRESHER_WEBHOOK_CERT_DIR): must not be empty"],
      },
      {
        name: "an unknown log level",
        cli: { logLevel: "verbose" },
        lines: [
          "--log-level (ECR_REFRESHER_LOG_LEVEL): must be one of fatal, error, warn, info, debug, trace, silent",
        ],
      },
      {
        name: "an unknown log format",
        cli: { logFormat: "xml" },
        lines: ["--log-format (ECR_REFRESHER_LOG_FORMAT): must be one of json, pretty, auto"],
      },
      {
        name: "an unknown output format",
        cli: { output: "yaml" },
        lines: ["--output (ECR_REFRESHER_OUTPUT): must be one of table, json"],
      },
      {
        name: "a worker count that is not a number",
        cli: { workers: "many" },
        lines: ["--workers (ECR_REFRESHER_WORKERS): must be a whole number"],
      },
      {
        name: "an infinite write concurrency",
        cli: { writeConcurrency: "Infinity" },
        lines: ["--write-concurrency (ECR_REFRESHER_WRITE_CONCURRENCY): must be a whole number"],
      },
      {
        name: "a fraction out of range (one message, not two)",
        cli: { workers: "100.5" },
        lines: ["--workers (ECR_REFRESHER_WORKERS): must be a whole number"],
      },
      {
        name: "too many workers",
        cli: { workers: "65" },
        lines: ["--workers (ECR_REFRESHER_WORKERS): must be at most 64"],
      },
      {
        name: "a Lease name longer than 253 characters",
        cli: { leaseName: long(254) },
        lines: ["--lease-name (ECR_REFRESHER_LEASE_NAME): must be at most 253 characters"],
      },
      {
        name: "a webhook Secret name longer than 253 characters",
        cli: { webhookSecret: long(254) },
        lines: ["--webhook-secret (ECR_REFRESHER_WEBHOOK_SECRET): must be at most 253 characters"],
      },
      {
        name: "a webhook configuration name longer than 253 characters",
        cli: { webhookConfiguration: long(254) },
        lines: [
          "--webhook-configuration (ECR_REFRESHER_WEBHOOK_CONFIGURATION): must be at most 253 characters",
        ],
      },
      {
        name: "an endpoint that is not http(s)",
        cli: { awsEndpointUrl: "ftp://localstack:4566", awsEndpointUrlSts: "https:sts.example" },
        lines: [
          "--aws-endpoint-url (AWS_ENDPOINT_URL): must be an http(s) URL",
          "--aws-endpoint-url-sts (AWS_ENDPOINT_URL_STS): must be an http(s) URL",
        ],
      },
    ];
    for (const c of cases) {
      assert.deepEqual(errorLines(c.cli, c.fallbacks), c.lines, c.name);
    }
  });

  it("takes an endpoint URL without the blanks around it", () => {
    const config = loadConfig({ awsEndpointUrlEcr: " http://localstack:4566\n" }, {}, namespace);
    assert.equal(config.awsEndpoints.ecr, "http://localstack:4566");
  });
});
