// moto in server mode as the AWS stand-in (ECR, STS, IAM), on a loopback port.
import { mkdtemp, rm } from "node:fs/promises";
import type { CoreV1Api } from "@kubernetes/client-node";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitForHttpOk } from "./http-wait.ts";
import { motoVenv, requireBinary } from "./paths.ts";
import { freePort } from "./ports.ts";
import { startProcess, whileRunning, type ManagedProcess } from "./processes.ts";

export interface MotoOptions {
  /** Enforce IAM authentication from the first request (INITIAL_NO_AUTH_ACTION_COUNT=0). */
  authentication?: boolean;
}

export interface Moto {
  readonly endpoint: string;
  readonly process: ManagedProcess;
  /** Environment for an AWS SDK client pointed at this moto. */
  sdkEnv(credentials?: { accessKeyId: string; secretAccessKey: string }): Record<string, string>;
  reset(): Promise<void>;
  stop(): Promise<void>;
}

/** moto accepts any keys while authentication is off; these are recognisably fake. */
export const motoDefaultCredentials = {
  accessKeyId: "AKIAMOTOTESTKEY00001",
  secretAccessKey: "moto-test-secret-key",
};

export async function startMoto(options: MotoOptions = {}): Promise<Moto> {
  const dir = await mkdtemp(join(tmpdir(), "ecr-moto-"));
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, MOTO_PORT: String(port) };
  if (options.authentication === true) {
    env.INITIAL_NO_AUTH_ACTION_COUNT = "0";
  }
  const proc = startProcess(
    "moto",
    requireBinary(join(motoVenv, "bin", "moto_server")),
    ["-H", "127.0.0.1", "-p", String(port)],
    join(dir, "moto.log"),
    { env },
  );
  try {
    await whileRunning(proc, waitForHttpOk(`${endpoint}/moto-api/`, 60_000));
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return {
    endpoint,
    process: proc,
    sdkEnv(credentials = motoDefaultCredentials) {
      return {
        AWS_ENDPOINT_URL: endpoint,
        AWS_ACCESS_KEY_ID: credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
        AWS_REGION: "eu-west-1",
      };
    },
    async reset() {
      const res = await fetch(`${endpoint}/moto-api/reset`, { method: "POST" });
      if (!res.ok) {
        throw new Error(`moto reset failed: ${res.status}`);
      }
    },
    async stop() {
      await proc.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Creates `namespace` with a Secret `name` holding moto's keys, as an operator's credentials. */
export async function createMotoCredentials(core: CoreV1Api, namespace: string, name: string): Promise<void> {
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await core.createNamespacedSecret({
    namespace,
    body: {
      metadata: { name },
      stringData: {
        AWS_ACCESS_KEY_ID: motoDefaultCredentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: motoDefaultCredentials.secretAccessKey,
      },
    },
  });
}
