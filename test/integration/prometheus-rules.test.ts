// The chart's alert rules under promtool: `check rules` on every value set, and `test rules` unit
// tests in which every alert fires when it should and stays quiet when it should not. The input
// series carry the names and labels a real operator exports (read from its /metrics after a failed
// and a good token mint) plus the scrape labels the chart's ServiceMonitor gives them.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { defaultBackoff } from "../../src/kube/workqueue.ts";
import { Metrics } from "../../src/observability/metrics.ts";
import { chartDir, chartValueSetsDir } from "../harness/helm.ts";
import {
  createNamespace,
  createPullSecretCr,
  startOperatorEnv,
  waitForReady,
} from "../harness/operator-env.ts";
import type { OperatorEnv } from "../harness/operator-env.ts";
import { stopStarted } from "../harness/processes.ts";
import { exposedSamples, type ExposedSample } from "../harness/prometheus-text.ts";
import {
  alertingRules,
  chartMonitoring,
  durationSeconds,
  promtool,
  ruleFileText,
  type ChartMonitoring,
} from "../harness/prometheus.ts";
import { eventually } from "../harness/wait.ts";

type Labels = Record<string, string>;

interface InputSeries {
  name: string;
  labels: Labels;
  /** promtool's values notation, one value per scrape interval from time 0. */
  values: string;
}

interface ExpectedAlert {
  labels: Labels;
  annotations: Labels;
}

interface AlertCase {
  name: string;
  series: InputSeries[];
  /** At each time (seconds from the start), exactly these alerts are firing; [] for none. */
  expect: { at: number; firing: ExpectedAlert[] }[];
}

const alertNames = [
  "ECRPullSecretTokenExpiringSoon",
  "ECRPullSecretRefreshFailing",
  "ECRPullSecretRegistryRefreshFailing",
  "ECRPullSecretNotReady",
  "ECRCredsRefresherDown",
] as const;
type AlertName = (typeof alertNames)[number];

const crName = "team-ecr";
/** Pod addresses, as the ServiceMonitor's endpoints give them (Prometheus's `instance`); no rule reads them. */
const leaderPod = "10.244.0.10:8080";
const standbyPod = "10.244.0.11:8080";
const hour = 3600;
const minute = 60;

/** A series selector in promtool's input notation. */
function selectorOf(name: string, labels: Labels): string {
  const pairs = Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}="${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`);
  return `${name}{${pairs.join(", ")}}`;
}

/** Prometheus's humanizeDuration for whole seconds of a minute or more. */
function humanized(seconds: number): string {
  const sign = seconds < 0 ? "-" : "";
  const s = Math.abs(Math.trunc(seconds));
  const [d, h, m] = [Math.floor(s / 86_400), Math.floor(s / 3600) % 24, Math.floor(s / 60) % 60];
  if (d > 0) return `${sign}${d}d ${h}h ${m}m ${s % 60}s`;
  if (h > 0) return `${sign}${h}h ${m}m ${s % 60}s`;
  return `${sign}${m}m ${s % 60}s`;
}

/** When the operator calls AWS while every call fails from `start` to `end`: its workqueue's backoff. */
function failedCallTimes(start: number, end: number): number[] {
  const times: number[] = [];
  let delay = defaultBackoff.baseMs / 1000;
  let t = start;
  while (t <= end) {
    times.push(t);
    t += delay;
    delay = Math.min(2 * delay, defaultBackoff.maxMs / 1000);
  }
  return times;
}

/** The first call after `end` that the backoff schedules: the one that succeeds once AWS is back. */
function firstCallAfter(start: number, end: number): number {
  const times = failedCallTimes(start, end + defaultBackoff.maxMs / 1000);
  return times.find((t) => t > end) ?? end;
}

describe("the chart's alert rules under promtool", () => {
  let dir: string | undefined;
  let env: OperatorEnv | undefined;
  let monitoring: ChartMonitoring;
  let exposed: ExposedSample[];
  /** The chart's defaults: what the tests below hold the rules to. */
  let threshold: number;
  const forOf = new Map<string, number>();
  let interval: number;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ecr-rules-"));
    monitoring = await chartMonitoring();
    const values = parse(await readFile(join(chartDir, "values.yaml"), "utf8")) as {
      metrics: { prometheusRule: { tokenExpiryThresholdSeconds: number } };
    };
    threshold = values.metrics.prometheusRule.tokenExpiryThresholdSeconds;
    for (const [name, rule] of alertingRules(monitoring.ruleGroups)) {
      forOf.set(name, durationSeconds(rule.for ?? "0s"));
    }
    interval = durationSeconds(monitoring.scrapeInterval);
    await writeFile(join(dir, "rules.yaml"), ruleFileText(monitoring.ruleGroups));

    // A real operator: its first mint fails (AWS answers 5xx), the retry succeeds.
    env = await startOperatorEnv({ startOperator: false });
    const metrics = new Metrics();
    await env.startOperator({}, { metrics });
    await createNamespace(env, "rules-a");
    env.aws.setFault("error");
    await createPullSecretCr(env, crName, { secretName: "team-pull", namespaces: ["rules-a"] });
    await eventually(
      async () => {
        const text = await metrics.registry.metrics();
        assert.ok(exposedSamples(text).some((s) => s.labels.result === "error"));
      },
      { timeoutMs: 30_000, message: "a failed token mint in the operator's metrics" },
    );
    env.aws.setFault("none");
    await waitForReady(env, crName);
    exposed = exposedSamples(await metrics.registry.metrics());
  });

  after(async () => {
    await stopStarted(env);
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** The labels of the operator's own sample of `name` (matching `match`), as Prometheus stores it. */
  function scraped(name: string, match: Labels = {}): Labels {
    const sample = exposed.find(
      (s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v),
    );
    assert.ok(sample !== undefined, `the operator exports no ${name} matching ${JSON.stringify(match)}`);
    return { ...sample.labels, ...monitoring.targetLabels, instance: leaderPod };
  }

  /** Values from 0 to `until` seconds, one per scrape interval; undefined: no sample, "stale": gone. */
  function values(until: number, at: (t: number) => number | "stale" | undefined): string {
    const out: string[] = [];
    for (let t = 0; t <= until; t += interval) {
      const v = at(t);
      out.push(v === undefined ? "_" : String(v));
    }
    return out.join(" ");
  }

  function forSeconds(alert: AlertName): number {
    const seconds = forOf.get(alert);
    assert.ok(seconds !== undefined, `no ${alert} in the rules`);
    return seconds;
  }

  function expiringSoonCases(): AlertCase[] {
    const name = "ecr_creds_refresher_token_expiry_timestamp_seconds";
    const labels = scraped(name, { ecrpullsecret: crName });
    const { ecrpullsecret = "", registry = "" } = labels;
    const waitFor = forSeconds("ECRPullSecretTokenExpiringSoon");
    const lifetime = 12 * hour;
    const alert = (remaining: number): ExpectedAlert => ({
      labels: { alertname: "ECRPullSecretTokenExpiringSoon", ecrpullsecret, registry, severity: "critical" },
      annotations: {
        summary: `ECR token for ${ecrpullsecret} expires soon`,
        description:
          `The ECR token that ECRPullSecret ${ecrpullsecret} writes for ${registry} ` +
          (remaining < 0 ? `expired ${humanized(-remaining)} ago` : `expires in ${humanized(remaining)}`) +
          ". New Pods cannot pull images with it once it has expired. Check the CR's Ready condition.",
      },
    });
    // A token minted at 0 that is never refreshed (AWS is down): it comes within the threshold at
    // expiresAt - threshold, and the alert is pending from the next evaluation.
    const expiresAt = lifetime;
    const pendingFrom = expiresAt - threshold + interval;
    const lateRefresh = pendingFrom + waitFor - 2 * interval;
    return [
      {
        name: "fires when refreshes stop and the token comes within the threshold, and keeps firing after it expired",
        series: [{ name, labels, values: values(expiresAt + hour, () => expiresAt) }],
        expect: [
          { at: pendingFrom + waitFor - interval, firing: [] },
          { at: pendingFrom + waitFor + interval, firing: [alert(threshold - waitFor - 2 * interval)] },
          { at: expiresAt + 10 * minute, firing: [alert(-10 * minute)] },
        ],
      },
      {
        name: "stays quiet while the token is refreshed at half its lifetime",
        series: [
          {
            name,
            labels,
            values: values(2 * lifetime, (t) => lifetime + (lifetime / 2) * Math.floor(t / (lifetime / 2))),
          },
        ],
        expect: [lifetime / 2 - interval, lifetime, (3 * lifetime) / 2 - interval, 2 * lifetime].map(
          (at) => ({
            at,
            firing: [],
          }),
        ),
      },
      {
        name: "stays quiet when a refresh comes within the for duration of crossing the threshold",
        series: [
          {
            name,
            labels,
            values: values(expiresAt, (t) => (t < lateRefresh ? expiresAt : lateRefresh + lifetime)),
          },
        ],
        expect: [
          { at: pendingFrom + waitFor - 3 * interval, firing: [] },
          { at: pendingFrom + waitFor + interval, firing: [] },
        ],
      },
      {
        name: "resolves once the CR is deleted and the operator drops its series",
        series: [
          {
            name,
            labels,
            values: values(expiresAt, (t) => (t < expiresAt - 10 * minute ? expiresAt : "stale")),
          },
        ],
        expect: [
          { at: expiresAt - 10 * minute - interval, firing: [alert(10 * minute + interval)] },
          { at: expiresAt - 10 * minute + interval, firing: [] },
        ],
      },
    ];
  }

  function refreshFailingCases(): AlertCase[] {
    const name = "ecr_creds_refresher_token_mints_total";
    const errors = scraped(name, { result: "error" });
    const successes = scraped(name, { result: "success", region: errors.region ?? "" });
    const region = errors.region ?? "";
    const waitFor = forSeconds("ECRPullSecretRefreshFailing");
    const forText = alertingRules(monitoring.ruleGroups).get("ECRPullSecretRefreshFailing")?.for ?? "";
    const alert: ExpectedAlert = {
      labels: { alertname: "ECRPullSecretRefreshFailing", region, severity: "warning" },
      annotations: {
        summary: `ECR token refreshes are failing in ${region}`,
        description:
          `ecr-creds-refresher has failed to get ECR tokens in ${region} for ${forText}. ` +
          "Existing pull secrets are kept until their tokens expire.",
      },
    };
    /** Counters of an outage from `start` to `end`: failed calls on the backoff, then one success. */
    const outage = (start: number, end: number, until: number): InputSeries[] => {
      const failed = failedCallTimes(start, end);
      const recovered = firstCallAfter(start, end);
      return [
        {
          name,
          labels: errors,
          // The error series appears with the first failure, as prom-client creates it.
          values: values(until, (t) => (t < start ? undefined : failed.filter((f) => f <= t).length)),
        },
        { name, labels: successes, values: values(until, (t) => (t < recovered ? 1 : 2)) },
      ];
    };
    const start = 10 * minute;
    const end = start + waitFor + 30 * minute;
    const lastFailure = failedCallTimes(start, end).at(-1) ?? end;
    // rate() needs two samples: the expression holds from the first scrape after the first failure.
    const pendingFrom = start + interval;
    const blipEnd = start + 5;
    return [
      {
        name: "fires when refreshes keep failing past the for duration, holds through the 5-minute backoff cap, and resolves 10 minutes after the last failure",
        series: outage(start, end, lastFailure + 20 * minute),
        expect: [
          { at: pendingFrom + waitFor - interval, firing: [] },
          { at: pendingFrom + waitFor + interval, firing: [alert] },
          { at: end, firing: [alert] },
          { at: lastFailure + 10 * minute + 2 * interval, firing: [] },
        ],
      },
      {
        name: "stays quiet for a blip of failures shorter than the for duration",
        series: outage(start, blipEnd, start + waitFor + 20 * minute),
        expect: [start + 5 * minute, pendingFrom + waitFor - interval, pendingFrom + waitFor + interval].map(
          (at) => ({ at, firing: [] }),
        ),
      },
    ];
  }

  /**
   * The two cases of an alert on a gauge that reads `bad` while something is wrong: it fires once
   * the gauge has read `bad` from `start` past the for duration, and stays quiet when the gauge is
   * back to `good` 5 minutes before that.
   */
  function gaugeCases(
    alert: AlertName,
    series: { name: string; labels: Labels; good: number; bad: number },
    expected: ExpectedAlert,
    what: { fires: string; quiet: string },
  ): AlertCase[] {
    const { name, labels, good, bad } = series;
    const waitFor = forSeconds(alert);
    const start = 10 * minute;
    const until = start + waitFor + hour;
    return [
      {
        name: what.fires,
        series: [{ name, labels, values: values(until, (t) => (t < start ? good : bad)) }],
        expect: [
          { at: start + waitFor - interval, firing: [] },
          { at: start + waitFor + interval, firing: [expected] },
        ],
      },
      {
        name: what.quiet,
        series: [
          {
            name,
            labels,
            values: values(until, (t) => (t >= start && t < start + waitFor - 5 * minute ? bad : good)),
          },
        ],
        expect: [start + waitFor - interval, start + waitFor + interval].map((at) => ({ at, firing: [] })),
      },
    ];
  }

  function registryRefreshFailingCases(): AlertCase[] {
    const name = "ecr_creds_refresher_registry_refresh_failing";
    const labels = scraped(name, { ecrpullsecret: crName });
    const { ecrpullsecret = "", registry = "" } = labels;
    const forText =
      alertingRules(monitoring.ruleGroups).get("ECRPullSecretRegistryRefreshFailing")?.for ?? "";
    return gaugeCases(
      "ECRPullSecretRegistryRefreshFailing",
      { name, labels, good: 0, bad: 1 },
      {
        labels: {
          alertname: "ECRPullSecretRegistryRefreshFailing",
          ecrpullsecret,
          registry,
          severity: "warning",
        },
        annotations: {
          summary: `ECR token for ${registry} in ${ecrpullsecret} cannot be refreshed`,
          description:
            `ecr-creds-refresher has failed to refresh the token that ECRPullSecret ${ecrpullsecret} writes ` +
            `for ${registry} for ${forText}. Its other registries are refreshed as usual; this one keeps ` +
            "its last good entry until that expires, and is left out of the Secrets after. The CR's " +
            "status.registries has the error.",
        },
      },
      {
        fires:
          "fires when one registry's refresh keeps failing past the for duration, naming the CR and the host",
        quiet: "stays quiet when the registry's refresh works again within the for duration",
      },
    );
  }

  function notReadyCases(): AlertCase[] {
    const name = "ecr_creds_refresher_ecrpullsecret_ready";
    const labels = scraped(name, { ecrpullsecret: crName });
    const ecrpullsecret = labels.ecrpullsecret ?? "";
    const forText = alertingRules(monitoring.ruleGroups).get("ECRPullSecretNotReady")?.for ?? "";
    return gaugeCases(
      "ECRPullSecretNotReady",
      { name, labels, good: 1, bad: 0 },
      {
        labels: { alertname: "ECRPullSecretNotReady", ecrpullsecret, severity: "warning" },
        annotations: {
          summary: `ECRPullSecret ${ecrpullsecret} is not Ready`,
          description:
            `ECRPullSecret ${ecrpullsecret} has not been Ready for ${forText}. ` +
            `\`kubectl describe ecrpullsecret ${ecrpullsecret}\` shows the reason.`,
        },
      },
      {
        fires: "fires when a CR stays not Ready past the for duration",
        quiet: "stays quiet when the CR is Ready again within the for duration",
      },
    );
  }

  function downCases(): AlertCase[] {
    const up: Labels = { ...monitoring.targetLabels, instance: leaderPod };
    const standby = { ...up, instance: standbyPod };
    const otherRelease = { ...up, job: "other-ecr-creds-refresher-metrics", namespace: "other" };
    const waitFor = forSeconds("ECRCredsRefresherDown");
    const alert: ExpectedAlert = {
      labels: { alertname: "ECRCredsRefresherDown", severity: "warning" },
      annotations: {
        summary: "ecr-creds-refresher is not being scraped",
        description:
          `No ecr-creds-refresher Pod in ${up.namespace ?? ""} has answered a scrape for 10 minutes. ` +
          "Pull secrets are not refreshed while it is down, and their tokens expire within 12 hours.",
      },
    };
    const start = 10 * minute;
    const until = start + waitFor + hour;
    return [
      ...gaugeCases("ECRCredsRefresherDown", { name: "up", labels: up, good: 1, bad: 0 }, alert, {
        fires: "fires when the operator answers no scrape past the for duration",
        quiet: "stays quiet through a restart shorter than the for duration",
      }),
      {
        name: "fires when the operator's target is gone, even while another release's operator is up",
        series: [
          { name: "up", labels: up, values: values(until, (t) => (t < start ? 1 : "stale")) },
          { name: "up", labels: otherRelease, values: values(until, () => 1) },
        ],
        expect: [
          { at: start + waitFor - interval, firing: [] },
          { at: start + waitFor + interval, firing: [alert] },
        ],
      },
      {
        name: "stays quiet while one of two replicas answers",
        series: [
          { name: "up", labels: up, values: values(until, (t) => (t < start ? 1 : 0)) },
          { name: "up", labels: standby, values: values(until, () => 1) },
        ],
        expect: [{ at: start + waitFor + interval, firing: [] }],
      },
    ];
  }

  function casesOf(alert: AlertName): AlertCase[] {
    switch (alert) {
      case "ECRPullSecretTokenExpiringSoon":
        return expiringSoonCases();
      case "ECRPullSecretRefreshFailing":
        return refreshFailingCases();
      case "ECRPullSecretRegistryRefreshFailing":
        return registryRefreshFailingCases();
      case "ECRPullSecretNotReady":
        return notReadyCases();
      case "ECRCredsRefresherDown":
        return downCases();
    }
  }

  /** Writes one promtool test file for `alert` with its cases and runs `promtool test rules` on it. */
  async function runRuleTests(alert: AlertName, cases: readonly AlertCase[]): Promise<void> {
    assert.ok(dir !== undefined);
    const file = join(dir, `${alert}.test.yaml`);
    await writeFile(
      file,
      stringify({
        rule_files: ["rules.yaml"],
        evaluation_interval: `${interval}s`,
        tests: cases.map((c) => ({
          name: `${alert} ${c.name}`,
          interval: `${interval}s`,
          input_series: c.series.map((s) => ({ series: selectorOf(s.name, s.labels), values: s.values })),
          alert_rule_test: c.expect.map((e) => ({
            eval_time: `${Math.ceil(e.at)}s`,
            alertname: alert,
            exp_alerts: e.firing.map((a) => ({ exp_labels: a.labels, exp_annotations: a.annotations })),
          })),
        })),
      }),
    );
    const result = await promtool(["test", "rules", file], dir);
    assert.equal(result.code, 0, result.output);
  }

  it("passes promtool check rules for the defaults and every tested value set", async () => {
    assert.ok(dir !== undefined);
    const valueSets = (await readdir(chartValueSetsDir)).filter((f) => f.endsWith(".yaml")).sort();
    for (const valuesFile of [undefined, ...valueSets]) {
      const rendered = await chartMonitoring(
        valuesFile === undefined ? {} : { valuesFiles: [join(chartValueSetsDir, valuesFile)] },
      );
      const file = join(dir, `check-${valuesFile ?? "defaults.yaml"}`);
      await writeFile(file, ruleFileText(rendered.ruleGroups));
      const result = await promtool(["check", "rules", "--lint=all", "--lint-fatal", file]);
      assert.equal(result.code, 0, `${valuesFile ?? "defaults"}: ${result.output}`);
      assert.match(result.output, new RegExp(`SUCCESS: ${alertNames.length} rules found`));
    }
  });

  it("has unit tests for every alert the chart ships, each with a case that fires and one that must not", () => {
    assert.deepEqual([...alertingRules(monitoring.ruleGroups).keys()].sort(), [...alertNames].sort());
    for (const alert of alertNames) {
      const cases = casesOf(alert);
      const expectations = cases.flatMap((c) => c.expect);
      assert.ok(
        expectations.some((e) => e.firing.length > 0),
        `${alert} has no case in which it fires`,
      );
      assert.ok(
        cases.some((c) => c.expect.every((e) => e.firing.length === 0)),
        `${alert} has no case in which it must stay quiet`,
      );
    }
  });

  for (const alert of alertNames) {
    it(`${alert}: fires when it should and stays quiet when it should not (promtool test rules)`, async () => {
      await runRuleTests(alert, casesOf(alert));
    });
  }

  it("fails a rule test whose expectation is wrong, so the passing ones mean something", async () => {
    const [firing] = casesOf("ECRPullSecretNotReady");
    assert.ok(firing !== undefined);
    const wrong: AlertCase = { ...firing, expect: firing.expect.map((e) => ({ ...e, firing: [] })) };
    await assert.rejects(runRuleTests("ECRPullSecretNotReady", [wrong]), /FAILED/);
  });
});
