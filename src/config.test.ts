import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ConfigError, loadConfig } from "./config.ts";

const namespace = { operatorNamespace: "ecr-system" };

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
});
