// Prometheus and promtool as scripts/setup.sh builds them (tools/prometheus), and the chart's alert
// rules, dashboard and scrape labels as a Prometheus fed by its PrometheusRule and ServiceMonitor
// sees them (what prometheus-operator would generate), for the alert and dashboard tests.
import { execFile } from "node:child_process";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseAllDocuments, stringify } from "yaml";
import { helmTemplate, type TemplateOptions } from "./helm.ts";
import { waitForHttpOk } from "./http-wait.ts";
import { repoRoot, requireBinary } from "./paths.ts";
import { freePort } from "./ports.ts";
import { startProcess, whileRunning, type ManagedProcess } from "./processes.ts";

const execFileAsync = promisify(execFile);

export const prometheusDir = join(repoRoot, ".cache", "prometheus-bin");

export interface AlertingRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface RuleGroup {
  name: string;
  rules: AlertingRule[];
}

export interface DashboardTarget {
  refId: string;
  expr: string;
  instant?: boolean;
}

export interface DashboardPanel {
  id: number;
  title: string;
  targets?: DashboardTarget[];
}

export interface DashboardVariable {
  name: string;
  type: string;
  query?: string | { query: string };
}

export interface Dashboard {
  templating: { list: DashboardVariable[] };
  panels: DashboardPanel[];
}

/** What the chart renders for monitoring, read as Prometheus and Grafana would read it. */
export interface ChartMonitoring {
  /** The PrometheusRule's groups: the rule file prometheus-operator writes for Prometheus. */
  ruleGroups: RuleGroup[];
  dashboard: Dashboard;
  /**
   * The labels prometheus-operator puts on the operator's series when it scrapes through the
   * ServiceMonitor (job and service: the Service's name; its namespace; the endpoint's port name;
   * the container that serves that port). Prometheus adds `instance`.
   */
  targetLabels: Record<string, string>;
  /** The ServiceMonitor endpoint's scrape interval, e.g. "30s". */
  scrapeInterval: string;
}

interface RenderedObject {
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

interface ServiceMonitorSpec {
  selector: { matchLabels: Record<string, string> };
  namespaceSelector: { matchNames: string[] };
  endpoints: { port: string; interval: string }[];
}

interface ServiceSpec {
  ports: { name: string; targetPort: string | number }[];
}

interface PodTemplate {
  template: { spec: { containers: { name: string; ports?: { name: string }[] }[] } };
}

function only<T>(items: readonly T[], what: string): T {
  const [item] = items;
  if (item === undefined || items.length !== 1)
    throw new Error(`expected one ${what}, found ${items.length}`);
  return item;
}

/**
 * Renders the chart with its ServiceMonitor, PrometheusRule and dashboard on (plus `options.set`)
 * and reads them: rule groups, dashboard, and the labels of the one target the ServiceMonitor finds.
 */
export async function chartMonitoring(options: TemplateOptions = {}): Promise<ChartMonitoring> {
  const yamlText = await helmTemplate({
    ...options,
    set: [
      "metrics.serviceMonitor.enabled=true",
      "metrics.prometheusRule.enabled=true",
      "grafanaDashboard.enabled=true",
      ...(options.set ?? []),
    ],
  });
  const objects = parseAllDocuments(yamlText)
    .map((doc) => doc.toJS() as RenderedObject | null)
    .filter((o): o is RenderedObject => o !== null);
  const ofKind = (kind: string): RenderedObject[] => objects.filter((o) => o.kind === kind);

  const rule = only(ofKind("PrometheusRule"), "PrometheusRule");
  const ruleGroups = (rule.spec as { groups: RuleGroup[] }).groups;
  const dashboardMap = only(
    ofKind("ConfigMap").filter((c) => Object.keys(c.data ?? {}).some((k) => k.endsWith(".json"))),
    "dashboard ConfigMap",
  );
  const dashboard = JSON.parse(only(Object.values(dashboardMap.data ?? {}), "dashboard")) as Dashboard;

  // prometheus-operator: Services in the selected namespaces with the selector's labels, and of
  // those only the ones with a port of the endpoint's name, become targets.
  const monitor = only(ofKind("ServiceMonitor"), "ServiceMonitor").spec as unknown as ServiceMonitorSpec;
  const endpoint = only(monitor.endpoints, "ServiceMonitor endpoint");
  const selected = ofKind("Service").filter(
    (s) =>
      monitor.namespaceSelector.matchNames.includes(s.metadata?.namespace ?? "") &&
      Object.entries(monitor.selector.matchLabels).every(([k, v]) => s.metadata?.labels?.[k] === v) &&
      (s.spec as unknown as ServiceSpec).ports.some((p) => p.name === endpoint.port),
  );
  const service = only(selected, "Service the ServiceMonitor scrapes");
  const port = only(
    (service.spec as unknown as ServiceSpec).ports.filter((p) => p.name === endpoint.port),
    `Service port ${endpoint.port}`,
  );
  const deployment = only(ofKind("Deployment"), "Deployment").spec as unknown as PodTemplate;
  const container = only(
    deployment.template.spec.containers.filter((c) => c.ports?.some((p) => p.name === port.targetPort)),
    `container serving ${String(port.targetPort)}`,
  );
  const serviceName = service.metadata?.name ?? "";
  return {
    ruleGroups,
    dashboard,
    targetLabels: {
      job: serviceName,
      namespace: service.metadata?.namespace ?? "",
      service: serviceName,
      endpoint: endpoint.port,
      container: container.name,
    },
    scrapeInterval: endpoint.interval,
  };
}

/** The alerting rules of every group, by alert name. */
export function alertingRules(groups: readonly RuleGroup[]): Map<string, AlertingRule> {
  return new Map(groups.flatMap((g) => g.rules).map((r) => [r.alert, r]));
}

/** A rule file's text, as Prometheus and promtool read it. */
export function ruleFileText(groups: readonly RuleGroup[]): string {
  return stringify({ groups });
}

/** A Prometheus duration ("90s", "15m", "1h") in seconds. */
export function durationSeconds(duration: string): number {
  const units: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };
  const parts = [...duration.matchAll(/(\d+)([smhd])/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== duration) {
    throw new Error(`not a Prometheus duration: ${duration}`);
  }
  return parts.reduce((sum, [, n, unit]) => sum + Number(n) * (units[unit ?? ""] ?? 0), 0);
}

export interface PromtoolResult {
  code: number;
  output: string;
}

/** Runs promtool; a non-zero exit is a result, not an exception, so tests can show the output. */
export async function promtool(args: readonly string[], cwd?: string): Promise<PromtoolResult> {
  const bin = requireBinary(join(prometheusDir, "promtool"));
  try {
    const { stdout, stderr } = await execFileAsync(bin, args, { cwd, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, output: `${stdout}${stderr}` };
  } catch (err) {
    const failed = err as { code?: number; stdout?: string; stderr?: string };
    if (typeof failed.code !== "number") throw err;
    return { code: failed.code, output: `${failed.stdout ?? ""}${failed.stderr ?? ""}` };
  }
}

export interface ScrapeTarget {
  /** host:port of a /metrics endpoint. */
  address: string;
  labels: Record<string, string>;
}

export interface PromSeries {
  metric: Record<string, string>;
  /** [Unix seconds, value] pairs; one for an instant query. */
  values: [number, string][];
}

export interface PromAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: "pending" | "firing";
  activeAt: string;
  value: string;
}

export interface Prometheus {
  readonly url: string;
  readonly process: ManagedProcess;
  /** Rewrites the file-based service discovery's targets; Prometheus picks the file up itself. */
  setTargets(targets: readonly ScrapeTarget[]): Promise<void>;
  /** An instant query now (or at `time`, Unix seconds). */
  query(expr: string, time?: number): Promise<PromSeries[]>;
  queryRange(expr: string, start: number, end: number, stepSeconds: number): Promise<PromSeries[]>;
  /** The values of `label` on series matching `match`, as Grafana's label_values() asks for them. */
  labelValues(label: string, match: string): Promise<string[]>;
  /** Alerts pending or firing now. */
  alerts(): Promise<PromAlert[]>;
  stop(): Promise<void>;
}

export interface PrometheusOptions {
  ruleGroups: readonly RuleGroup[];
  targets: readonly ScrapeTarget[];
  /** Scrape and rule evaluation interval; default 1 s, so that tests measure the rules, not the polling. */
  intervalSeconds?: number;
}

interface ApiReply<T> {
  status: "success" | "error";
  data: T;
  error?: string;
}

/**
 * Starts Prometheus on a loopback port with a file-based scrape config (file_sd) and the rules
 * loaded, storing into a scratch directory it deletes on stop.
 */
export async function startPrometheus(options: PrometheusOptions): Promise<Prometheus> {
  const dir = await mkdtemp(join(tmpdir(), "ecr-prometheus-"));
  const targetsPath = join(dir, "targets.json");
  const interval = `${options.intervalSeconds ?? 1}s`;
  const setTargets = async (targets: readonly ScrapeTarget[]): Promise<void> => {
    // Renamed into place: the file watcher never reads a half-written file.
    const groups = targets.map((t) => ({ targets: [t.address], labels: t.labels }));
    await writeFile(`${targetsPath}.tmp`, JSON.stringify(groups));
    await rename(`${targetsPath}.tmp`, targetsPath);
  };
  await setTargets(options.targets);
  await writeFile(join(dir, "rules.yaml"), ruleFileText(options.ruleGroups));
  await writeFile(
    join(dir, "prometheus.yml"),
    stringify({
      global: { scrape_interval: interval, evaluation_interval: interval },
      rule_files: [join(dir, "rules.yaml")],
      scrape_configs: [
        {
          // Each target's labels set job, as the ServiceMonitor's would.
          job_name: "file",
          file_sd_configs: [{ files: [targetsPath], refresh_interval: "5s" }],
        },
      ],
    }),
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = startProcess(
    "prometheus",
    requireBinary(join(prometheusDir, "prometheus")),
    [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    join(dir, "prometheus.log"),
    { env: { PATH: process.env.PATH ?? "" }, cwd: dir },
  );
  const stop = async (): Promise<void> => {
    await proc.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await whileRunning(proc, waitForHttpOk(`${url}/-/ready`, 60_000));
  } catch (err) {
    await stop();
    throw err;
  }

  async function api<T>(path: string, params: Record<string, string | string[]>): Promise<T> {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      for (const v of Array.isArray(value) ? value : [value]) search.append(key, v);
    }
    const res = await fetch(`${url}/api/v1/${path}?${search.toString()}`);
    const reply = (await res.json()) as ApiReply<T>;
    if (reply.status !== "success") throw new Error(`Prometheus ${path}: ${reply.error ?? res.statusText}`);
    return reply.data;
  }

  interface QueryData {
    resultType: string;
    result: { metric: Record<string, string>; value?: [number, string]; values?: [number, string][] }[];
  }
  const series = (data: QueryData): PromSeries[] =>
    data.result.map((r) => ({
      metric: r.metric,
      values: r.values ?? (r.value === undefined ? [] : [r.value]),
    }));

  return {
    url,
    process: proc,
    setTargets,
    async query(expr, time) {
      const params: Record<string, string> = { query: expr };
      if (time !== undefined) params.time = String(time);
      return series(await api<QueryData>("query", params));
    },
    async queryRange(expr, start, end, stepSeconds) {
      return series(
        await api<QueryData>("query_range", {
          query: expr,
          start: String(start),
          end: String(end),
          step: String(stepSeconds),
        }),
      );
    },
    labelValues: (label, match) =>
      api<string[]>(`label/${encodeURIComponent(label)}/values`, { "match[]": match }),
    async alerts() {
      return (await api<{ alerts: PromAlert[] }>("alerts", {})).alerts;
    },
    stop,
  };
}

/**
 * Grafana's own interval variables, as it sets them for a Prometheus data source with the default
 * 15 s scrape interval setting ($__rate_interval is at least four scrape intervals).
 */
const grafanaIntervals: Readonly<Record<string, string>> = { __rate_interval: "1m", __interval: "15s" };

/** A dashboard query with its $variables and ${variables} replaced; an unknown one is an error. */
export function withVariables(expr: string, variables: Readonly<Record<string, string>>): string {
  return expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, braced: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare ?? "";
    const value = variables[name] ?? grafanaIntervals[name];
    if (value === undefined)
      throw new Error(`the dashboard query uses $${name}, which nothing sets: ${expr}`);
    return value;
  });
}

/**
 * Resolves the dashboard's query variables in order, as Grafana does (label_values() against the
 * data source, with the variables before it substituted), and selects `choose[name]` for each,
 * which must be among the values offered. Returns the selected values by name.
 */
export async function dashboardVariables(
  dashboard: Dashboard,
  prometheus: Prometheus,
  choose: Readonly<Record<string, string>>,
): Promise<Record<string, string>> {
  const selected: Record<string, string> = {};
  for (const variable of dashboard.templating.list) {
    if (variable.type !== "query") continue;
    const query = typeof variable.query === "string" ? variable.query : (variable.query?.query ?? "");
    const call = /^label_values\((?:(.+),\s*)?(\w+)\)$/.exec(withVariables(query, selected));
    if (call === null) throw new Error(`variable ${variable.name}: not a label_values() query: ${query}`);
    const [, match = '{__name__=~".+"}', label = ""] = call;
    const offered = await prometheus.labelValues(label, match);
    const wanted = choose[variable.name];
    if (wanted === undefined || !offered.includes(wanted)) {
      throw new Error(`variable ${variable.name} offers ${JSON.stringify(offered)}, not ${String(wanted)}`);
    }
    selected[variable.name] = wanted;
  }
  return selected;
}

export interface PanelQueryResult {
  panel: string;
  refId: string;
  expr: string;
  series: number;
}

/**
 * Runs every panel target's query as Grafana would over [start, end] (Unix seconds): an instant
 * query at `end` for instant targets, a range query otherwise. Returns the series each returned.
 */
export async function panelQueries(
  dashboard: Dashboard,
  prometheus: Prometheus,
  variables: Readonly<Record<string, string>>,
  range: { start: number; end: number; stepSeconds: number },
): Promise<PanelQueryResult[]> {
  const results: PanelQueryResult[] = [];
  for (const panel of dashboard.panels) {
    for (const target of panel.targets ?? []) {
      const expr = withVariables(target.expr, variables);
      const series =
        target.instant === true
          ? await prometheus.query(expr, range.end)
          : await prometheus.queryRange(expr, range.start, range.end, range.stepSeconds);
      results.push({
        panel: panel.title,
        refId: target.refId,
        expr,
        series: series.filter((s) => s.values.length > 0).length,
      });
    }
  }
  return results;
}
