// The production bundle the Dockerfile builds, without a container: `npm run build` output plus
// `npm ci --omit=dev --omit=optional`, in a read-only directory, started with plain node against the
// real control plane. It must serve /healthz, /readyz and /metrics, reconcile a CR, and exit cleanly
// on SIGTERM.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmod, cp, mkdtemp, readdir, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { httpStatus } from "../harness/http-wait.ts";
import {
  createNamespace,
  createPullSecretCr,
  credentialsSecretName,
  operatorNamespace,
  startOperatorEnv,
  waitForPullSecret,
  waitForReady,
  type OperatorEnv,
} from "../harness/operator-env.ts";
import { imageNodeArgs } from "../harness/image.ts";
import { repoRoot } from "../harness/paths.ts";
import { freePort } from "../harness/ports.ts";
import { startProcess, type ManagedProcess } from "../harness/processes.ts";
import { eventually } from "../harness/wait.ts";

const execFileAsync = promisify(execFile);

async function run(command: string, args: string[], cwd: string): Promise<void> {
  await execFileAsync(command, args, { cwd, maxBuffer: 16 * 1024 * 1024 });
}

async function chmodTree(dir: string, mode: (isDir: boolean) => number): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isSymbolicLink()) continue;
    await chmod(join(entry.parentPath, entry.name), mode(entry.isDirectory()));
  }
  await chmod(dir, mode(true));
}

describe("the production bundle (npm run build + npm ci --omit=dev --omit=optional) started with plain node", () => {
  let env: OperatorEnv;
  let bundle: string;
  let operator: ManagedProcess | undefined;
  let healthPort: number;
  let metricsPort: number;

  before(async () => {
    bundle = await mkdtemp(join(tmpdir(), "ecr-bundle-"));
    // What the Dockerfile's stages do: compile src/ (tsconfig.build.json) and install only the
    // production dependencies, from the npm cache (tests use no network beyond loopback).
    await run(
      process.execPath,
      [
        join(repoRoot, "node_modules", "typescript", "bin", "tsc"),
        "-p",
        "tsconfig.build.json",
        "--outDir",
        join(bundle, "dist"),
      ],
      repoRoot,
    );
    await cp(join(repoRoot, "package.json"), join(bundle, "package.json"));
    await cp(join(repoRoot, "package-lock.json"), join(bundle, "package-lock.json"));
    await run(
      "npm",
      ["ci", "--omit=dev", "--omit=optional", "--ignore-scripts", "--offline", "--no-audit", "--no-fund"],
      bundle,
    );
    // The image's root filesystem is read-only: nothing in the bundle may need writing.
    await chmodTree(bundle, (isDir) => (isDir ? 0o555 : 0o444));
    env = await startOperatorEnv({ startOperator: false });
    healthPort = await freePort();
    metricsPort = await freePort();
  });

  after(async () => {
    await operator?.stop();
    await env.stop();
    await chmodTree(bundle, (isDir) => (isDir ? 0o755 : 0o644));
    await rm(bundle, { recursive: true, force: true });
  });

  it("holds the compiled operator and production dependencies only", () => {
    assert.ok(existsSync(join(bundle, "dist", "main.js")));
    assert.ok(!existsSync(join(bundle, "dist", "main.ts")));
    for (const dependency of ["@aws-sdk/client-ecr", "pino", "yaml", "valibot"]) {
      assert.ok(existsSync(join(bundle, "node_modules", dependency)), `${dependency} is missing`);
    }
    // client-node provides types only; the operator runs without it.
    const devDependencies = [
      "@kubernetes/client-node",
      "typescript",
      "eslint",
      "prettier",
      "typescript-eslint",
      "node",
    ];
    for (const devDependency of devDependencies) {
      assert.ok(!existsSync(join(bundle, "node_modules", devDependency)), `${devDependency} was installed`);
    }
  });

  it("starts, becomes healthy and ready, and serves metrics", async () => {
    operator = startProcess(
      "operator-bundle",
      process.execPath,
      [
        ...imageNodeArgs(),
        join(bundle, "dist", "main.js"),
        "run",
        `--kubeconfig=${env.plane.kubeconfigPath}`,
        `--operator-namespace=${operatorNamespace}`,
        `--credentials-secret=${operatorNamespace}/${credentialsSecretName}`,
        "--region=eu-west-1",
        `--aws-endpoint-url=${env.aws.endpoint}`,
        `--health-addr=127.0.0.1:${healthPort}`,
        `--metrics-addr=127.0.0.1:${metricsPort}`,
        "--log-format=json",
      ],
      join(env.plane.dir, "operator-bundle.log"),
      // A working directory and HOME it cannot write to, like the container's.
      { cwd: bundle, env: { PATH: process.env.PATH ?? "", HOME: bundle, NODE_ENV: "production" } },
    );
    const running = operator;
    await eventually(
      async () => {
        assert.equal(running.child.exitCode, null, `the operator exited; see ${running.logPath}`);
        assert.equal(await httpStatus(`http://127.0.0.1:${healthPort}/healthz`), 200);
        assert.equal(await httpStatus(`http://127.0.0.1:${healthPort}/readyz`), 200);
      },
      { timeoutMs: 30_000, message: "/healthz and /readyz answer 200" },
    );
    // With leader election on (the default for run), it leads once it holds the Lease.
    await eventually(async () => {
      const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(await metrics.text(), /^ecr_creds_refresher_leader 1$/m);
    });
  });

  it("reconciles an ECRPullSecret", async () => {
    await createNamespace(env, "bundle");
    await createPullSecretCr(env, "bundle", { secretName: "ecr-bundle", namespaces: ["bundle"] });
    await waitForPullSecret(env, "bundle", "ecr-bundle");
    await waitForReady(env, "bundle");
  });

  it("exits with 0 within five seconds of SIGTERM", async () => {
    assert.ok(operator !== undefined);
    const started = Date.now();
    operator.kill("SIGTERM");
    assert.equal(await operator.exited, 0);
    assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
  });
});
