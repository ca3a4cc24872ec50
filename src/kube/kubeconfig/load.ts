// Finds and reads the kubeconfig as controller-runtime does (--kubeconfig, KUBECONFIG, in-cluster,
// ~/.kube/config) and merges several files as kubectl does.

import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { delimiter, join } from "node:path";
import type * as Yaml from "yaml";
import { systemClock, type Clock } from "../../clock.ts";
import { checkedServer, fromMerged, readSync, type MergedKubeConfig } from "./client-config.ts";
import { ClusterAccess } from "./cluster-access.ts";
import { KubeConfigError } from "./kubeconfig-error.ts";
import { proxyFor } from "./proxy.ts";
import { TokenFile } from "./token-file.ts";
import { entries, entriesOrNone, isMap, section, text, type YamlMap } from "./yaml-fields.ts";

export interface KubeConfigSources {
  /** --kubeconfig flag value, if given. */
  path?: string;
  /**
   * The process environment: KUBECONFIG, HOME, KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT and
   * the proxy variables (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) are read, and exec credential plugins
   * inherit it. main passes it in.
   */
  env: Record<string, string | undefined>;
  /** The in-cluster ServiceAccount files; default /var/run/secrets/kubernetes.io/serviceaccount. */
  serviceAccountDir?: string;
}

export interface LoadOptions {
  /** Time for token file re-reads and exec credential expiry; default the system clock. */
  clock?: Clock;
}

const DEFAULT_SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/**
 * Finds the configuration as controller-runtime does: the --kubeconfig path, then KUBECONFIG, then
 * the in-cluster ServiceAccount, then $HOME/.kube/config.
 */
export function loadKubeConfig(sources: KubeConfigSources, options: LoadOptions = {}): ClusterAccess {
  const { env } = sources;
  const clock = options.clock ?? systemClock;
  // --kubeconfig may carry KUBECONFIG's value (the flag reads that variable), so it may be a list.
  if (sources.path?.includes(delimiter) === false) return fromKubeConfigFiles([sources.path], env, clock);
  const from = sources.path === undefined ? "KUBECONFIG" : "--kubeconfig";
  const listed = (sources.path ?? env.KUBECONFIG ?? "").split(delimiter).filter((file) => file !== "");
  if (listed.length > 0) {
    const existing = listed.filter((file) => existsSync(file));
    if (existing.length === 0) {
      throw new KubeConfigError(`none of the files in ${from} exists: ${listed.join(", ")}`);
    }
    return fromKubeConfigFiles(existing, env, clock);
  }
  const tried = ["KUBECONFIG (not set)"];

  const dir = sources.serviceAccountDir ?? DEFAULT_SERVICE_ACCOUNT_DIR;
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    tried.push("in-cluster (KUBERNETES_SERVICE_HOST or KUBERNETES_SERVICE_PORT not set)");
  } else if (!existsSync(join(dir, "token"))) {
    tried.push(`in-cluster (${join(dir, "token")} not found)`);
  } else {
    return inCluster(host, port, dir, env, clock);
  }

  if (env.HOME) {
    const file = join(env.HOME, ".kube", "config");
    if (existsSync(file)) return fromKubeConfigFiles([file], env, clock);
    tried.push(`${file} (not found)`);
  } else {
    tried.push("$HOME/.kube/config (HOME not set)");
  }
  throw new KubeConfigError(`no Kubernetes configuration found; tried ${tried.join(", ")}`);
}

function inCluster(
  host: string,
  port: string,
  dir: string,
  env: KubeConfigSources["env"],
  clock: Clock,
): ClusterAccess {
  const where = "in-cluster config";
  const server = checkedServer(`https://${host.includes(":") ? `[${host}]` : host}:${port}`, where);
  return new ClusterAccess({
    contextName: "in-cluster",
    clusterName: "in-cluster",
    server,
    tls: { ca: readSync(join(dir, "ca.crt"), where), rejectUnauthorized: true },
    credential: new TokenFile(join(dir, "token"), where, clock),
    proxy: proxyFor(new URL(server), undefined, env),
  });
}

const sections = [
  { list: "clusters", item: "cluster", label: "cluster" },
  { list: "users", item: "user", label: "user" },
  { list: "contexts", item: "context", label: "context" },
] as const;

/**
 * Merges the files as kubectl does: the first current-context and the first entry of each name win;
 * within one file a name may appear only once.
 */
function fromKubeConfigFiles(
  files: readonly string[],
  env: KubeConfigSources["env"],
  clock: Clock,
): ClusterAccess {
  const merged: MergedKubeConfig = {
    currentContext: undefined,
    clusters: new Map(),
    users: new Map(),
    contexts: new Map(),
  };
  for (const file of files) {
    const where = `kubeconfig ${file}`;
    const { doc, typed } = parseKubeConfigFile(file, where);
    merged.currentContext ??= text(doc, "current-context", where);
    for (const { list, item, label } of sections) {
      const typedEntries = typed === undefined ? [] : entriesOrNone(typed, list);
      const seen = new Set<string>();
      for (const [index, raw] of entries(doc, list, where).entries()) {
        const name = isMap(raw) ? text(raw, "name", where) : undefined;
        if (!isMap(raw) || name === undefined) {
          throw new KubeConfigError(`${where}: ${list}[${index}] has no name`);
        }
        if (seen.has(name))
          throw new KubeConfigError(`${where}: ${list} has more than one entry named "${name}"`);
        seen.add(name);
        const entryWhere = `${where}: ${label} "${name}"`;
        const body = section(raw, item, entryWhere);
        if (body === undefined) throw new KubeConfigError(`${entryWhere}: ${item} is not set`);
        const typedRaw = typedEntries[index];
        const typedBody = isMap(typedRaw) && isMap(typedRaw[item]) ? typedRaw[item] : undefined;
        if (!merged[list].has(name))
          merged[list].set(name, { body, typed: typedBody, file, where: entryWhere });
      }
    }
  }
  return fromMerged(merged, files, env, clock);
}

/**
 * The YAML parser, loaded only when a kubeconfig file is read: a Pod reads its ServiceAccount and
 * never needs it. Loading is synchronous, as the rest of finding the configuration is.
 */
let yamlModule: typeof Yaml | undefined;
function yaml(): typeof Yaml {
  yamlModule ??= createRequire(import.meta.url)("yaml") as typeof Yaml;
  return yamlModule;
}

function parseKubeConfigFile(file: string, where: string): { doc: YamlMap; typed: YamlMap | undefined } {
  const source = readSync(file, where).toString("utf8");
  const { parse: parseYaml, YAMLError } = yaml();
  let doc: unknown;
  let typed: unknown;
  try {
    // Every scalar is read as a string, as client-go's type-directed decoding does, so a password
    // like 0123 stays as written. The typed reading serves only extensions, which are free-form.
    doc = parseYaml(source, { schema: "failsafe", logLevel: "error" });
    typed = parseYaml(source, { logLevel: "error" });
  } catch (err) {
    if (!(err instanceof YAMLError)) throw err;
    // The parser's message quotes the offending line, which may hold a token.
    const at = err.linePos?.[0];
    throw new KubeConfigError(`${where}: not valid YAML${at ? ` (line ${at.line}, column ${at.col})` : ""}`);
  }
  if (doc === null) return { doc: {}, typed: undefined };
  if (!isMap(doc)) throw new KubeConfigError(`${where}: not a kubeconfig (the top level is not a map)`);
  return { doc, typed: isMap(typed) ? typed : undefined };
}
