// helm as built by scripts/setup.sh (tools/helm), and the chart it renders: used by the chart
// tests and by scripts/generate.ts for the static install manifest.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { flags, type FlagName, type FlagSpec, type RawConfig } from "../../src/config.ts";
import { repoRoot, requireBinary } from "./paths.ts";

const execFileAsync = promisify(execFile);

export const helmDir = join(repoRoot, ".cache", "helm-bin");
export const chartDir = join(repoRoot, "deploy", "helm", "ecr-creds-refresher");
/** Value sets the tests render, lint and dry-run; ci/ is chart-testing's convention. */
export const chartValueSetsDir = join(chartDir, "ci");
/** The prometheus-operator CRDs setup.sh fetched, for validating ServiceMonitor and PrometheusRule. */
export const monitoringCrdPaths = ["servicemonitors", "prometheusrules"].map((kind) =>
  join(helmDir, `monitoring.coreos.com_${kind}.yaml`),
);

/**
 * The kinds of the chart's objects that give the operator its access, to create before running it
 * as the chart's ServiceAccount: RBAC, and the objects the RBAC rules name (the webhook's empty TLS
 * Secret and its MutatingWebhookConfiguration, registered by a Service without endpoints in tests,
 * so only suites that create no Pod may create it).
 */
export const operatorAccessKinds: ReadonlySet<string> = new Set([
  "ServiceAccount",
  "ClusterRole",
  "ClusterRoleBinding",
  "Role",
  "RoleBinding",
  "Secret",
  "MutatingWebhookConfiguration",
]);

export interface HelmResult {
  stdout: string;
  stderr: string;
}

export class HelmError extends Error {
  override readonly name = "HelmError";
  readonly stdout: string;
  readonly stderr: string;

  constructor(args: readonly string[], stdout: string, stderr: string) {
    super(`helm ${args.join(" ")} failed:\n${stderr.trim() || stdout.trim()}`);
    this.stdout = stdout;
    this.stderr = stderr;
  }
}

/** Runs helm with its caches and configuration in a scratch location, never the user's. */
export async function runHelm(args: readonly string[]): Promise<HelmResult> {
  const bin = requireBinary(join(helmDir, "helm"));
  const scratch = join(repoRoot, ".cache", "helm-home");
  try {
    const { stdout, stderr } = await execFileAsync(bin, args, {
      cwd: repoRoot,
      maxBuffer: 64 * 1024 * 1024,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: scratch,
        HELM_CACHE_HOME: join(scratch, "cache"),
        HELM_CONFIG_HOME: join(scratch, "config"),
        HELM_DATA_HOME: join(scratch, "data"),
        // helm template never contacts a cluster; make sure no kubeconfig of the user is read.
        KUBECONFIG: join(scratch, "no-kubeconfig"),
      },
    });
    return { stdout, stderr };
  } catch (err) {
    const failed = err as { stdout?: string; stderr?: string };
    throw new HelmError(args, failed.stdout ?? "", failed.stderr ?? String(err));
  }
}

export interface TemplateOptions {
  releaseName?: string;
  namespace?: string;
  valuesFiles?: readonly string[];
  /** --set-string style overrides, key=value. */
  set?: readonly string[];
  includeCrds?: boolean;
}

/** `helm template` of the chart; returns the multi-document YAML. */
export async function helmTemplate(options: TemplateOptions = {}): Promise<string> {
  const args = [
    "template",
    options.releaseName ?? "ecr-creds-refresher",
    chartDir,
    "--namespace",
    options.namespace ?? "ecr-system",
  ];
  for (const file of options.valuesFiles ?? []) args.push("--values", file);
  for (const pair of options.set ?? []) args.push("--set", pair);
  if (options.includeCrds === true) args.push("--include-crds");
  return (await runHelm(args)).stdout;
}

/**
 * The operator configuration a list of command-line arguments (the chart's container args after
 * `run`) amounts to, keyed like config.ts's flags. Throws on a flag the operator does not define.
 */
export function configFromArgs(args: readonly string[]): RawConfig {
  const byFlag = new Map<string, FlagName>();
  for (const [key, spec] of Object.entries(flags) as [FlagName, FlagSpec][]) {
    byFlag.set(spec.flag.split(" ")[0] ?? "", key);
  }
  const config: RawConfig = {};
  for (const arg of args) {
    const match = /^(--[a-z-]+)=(.*)$/s.exec(arg);
    const key = match === null ? undefined : byFlag.get(match[1] ?? "");
    if (match === null || key === undefined) {
      throw new Error(`the operator has no flag ${arg} (expected --flag=value)`);
    }
    config[key] = match[2] ?? "";
  }
  return config;
}
