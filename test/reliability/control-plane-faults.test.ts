// Control-plane faults: kube-apiserver killed with SIGKILL in the middle of a fan-out, and etcd
// stopped and restarted, while an in-process operator runs. Witnesses in the test process record
// every managed Secret deleted or emptied and every ServiceAccount entry lost.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { MANAGED_SECRETS_SELECTOR } from "../../src/controller/plan/labels.ts";
import { readAuditLog, writesBy } from "../harness/audit.ts";
import {
  createPullSecretCr,
  readSecret,
  startOperatorEnv,
  waitForPullSecret,
  type OperatorEnv,
} from "../harness/operator-env.ts";
import { eventually } from "../harness/wait.ts";
import { createNamespaces, waitForCr } from "./fixtures.ts";
import { SecretLedger, ServiceAccountLedger, entriesOf } from "./ledger.ts";
import { assertNoLeaks, secretValues } from "./leaks.ts";
import { saveLogs, scenario, secondsBetween } from "./results.ts";
import { byScale, fullScaleOnly } from "./scale.ts";

const operatorUser = "reliability-operator";
const secretName = "fan-pull";
const foreign = "theirs";
const namespaceCount = byScale(100, 1000);

describe("control-plane faults", () => {
  let env: OperatorEnv;
  let secrets: SecretLedger;
  let serviceAccounts: ServiceAccountLedger;
  let namespaces: string[] = [];

  before(async () => {
    env = await startOperatorEnv({ audit: true, operatorUser, startOperator: false });
    namespaces = await createNamespaces(env, "fan", namespaceCount);
    // A foreign entry on every tenth ServiceAccount: it must survive every fault.
    for (const ns of namespaces.filter((_, i) => i % 10 === 0)) {
      await env.core.patchNamespacedServiceAccount({
        namespace: ns,
        name: "default",
        body: [{ op: "add", path: "/imagePullSecrets", value: [{ name: foreign }] }],
      });
    }
    secrets = new SecretLedger({ kubeConfig: env.plane.kubeConfig, secretName });
    serviceAccounts = new ServiceAccountLedger({
      kubeConfig: env.plane.kubeConfig,
      watched: (entry) => entry === secretName || entry === foreign,
    });
    await secrets.start();
    await serviceAccounts.start();
    // Slow enough at CI scale that the kill lands mid-fan-out; the default (32) at full scale.
    await env.startOperator({ writeConcurrency: byScale("2", "32") });
  });

  after(async () => {
    await secrets.stop();
    await serviceAccounts.stop();
    await env.stop();
  });

  /** Every namespace has the Secret and its default ServiceAccount lists it exactly once. */
  async function converged(): Promise<void> {
    const listed = await env.core.listSecretForAllNamespaces({ labelSelector: MANAGED_SECRETS_SELECTOR });
    const have = listed.items.filter((s) => s.metadata?.name === secretName).length;
    assert.equal(have, namespaceCount, `${have}/${namespaceCount} Secrets`);
    const sas = await env.core.listServiceAccountForAllNamespaces({ fieldSelector: "metadata.name=default" });
    const listing = sas.items.filter((sa) => entriesOf(sa).filter((e) => e === secretName).length === 1);
    assert.equal(listing.length, namespaceCount, `${listing.length}/${namespaceCount} ServiceAccounts`);
  }

  function operatorDeletes(since: number): number {
    return writesBy(readAuditLog(env.plane.auditLogPath), operatorUser, ["secrets"]).filter(
      (e) => e.verb === "delete" && e.receivedAt >= since,
    ).length;
  }

  it("converges after kube-apiserver is SIGKILLed mid-fan-out, with no Secret or entry lost", async () => {
    await scenario(
      "F1",
      `kube-apiserver SIGKILL mid-fan-out to ${namespaceCount} namespaces`,
      async (figures) => {
        figures.namespaces = namespaceCount;
        const started = Date.now();
        await createPullSecretCr(env, "fan", { secretName, namespaces: ["fan-*"] });
        await eventually(
          () => {
            assert.ok(
              secrets.present().length >= namespaceCount * 0.2,
              `${secrets.present().length} Secrets`,
            );
          },
          { timeoutMs: 120_000, intervalMs: 10, message: "a fifth of the fan-out written" },
        );
        const atKill = secrets.present().length;
        figures.secretsWrittenBeforeKill = atKill;
        const killedAt = Date.now();
        await env.plane.restartApiServer();
        const upAt = Date.now();
        figures.apiServerDownSeconds = secondsBetween(killedAt, upAt);
        assert.ok(atKill < namespaceCount, "the kill must land before the fan-out finished");

        await eventually(converged, { timeoutMs: 300_000, intervalMs: 1000, message: "fan-out converged" });
        await waitForCr(env, "fan", { synced: namespaceCount, timeoutMs: 120_000 });
        const convergedAt = Date.now();
        figures.recoverySecondsAfterRestart = secondsBetween(upAt, convergedAt);
        figures.totalFanOutSeconds = secondsBetween(started, convergedAt);
        // The witnesses relist after the restart too; wait until they see everything.
        await eventually(() => {
          assert.equal(secrets.present().length, namespaceCount);
        });
        figures.secretsDeleted = secrets.deleted.length;
        figures.secretsEmptied = secrets.emptied.length;
        figures.secretsRecreated = secrets.recreated.length;
        figures.entriesLost = serviceAccounts.lost();
        figures.operatorSecretDeletes = operatorDeletes(started);
        const foreignKept = serviceAccounts.list().filter((sa) => entriesOf(sa).includes(foreign)).length;
        figures.foreignEntriesKept = `${foreignKept}/${Math.ceil(namespaceCount / 10)}`;
        assert.equal(
          secrets.lost(),
          0,
          `lost: ${[...secrets.deleted, ...secrets.emptied, ...secrets.recreated].join(", ")}`,
        );
        assert.equal(serviceAccounts.lost(), 0, serviceAccounts.lostEntries.join(", "));
        assert.equal(figures.operatorSecretDeletes, 0);
        assert.equal(foreignKept, Math.ceil(namespaceCount / 10));
        assert.ok(env.operator?.cachesSynced(), "the operator's caches are synced again");
      },
    );
  });

  it("rides out etcd stopped and restarted, then applies changes made after it", fullScaleOnly, async () => {
    await scenario("F2", "etcd stopped and restarted while the operator runs", async (figures) => {
      const downMs = byScale(10_000, 60_000);
      figures.etcdDownSeconds = downMs / 1000;
      const started = Date.now();
      await env.plane.stopEtcd();
      // The outage lasts downMs; the operator's watches and writes fail meanwhile.
      await eventually(
        () => {
          assert.ok(Date.now() - started >= downMs);
        },
        { timeoutMs: downMs + 5_000, intervalMs: 500, message: "etcd outage window" },
      );
      await env.plane.startEtcd();
      const upAt = Date.now();
      await eventually(() => env.core.listNamespace({ limit: 1 }), {
        timeoutMs: 60_000,
        message: "the API server serves again",
      });
      figures.apiServerBackSeconds = secondsBetween(upAt, Date.now());

      // Changes after the outage: a new namespace, a deleted Secret, a removed entry.
      const victim = namespaces[1] ?? "";
      const stripped = namespaces[2] ?? "";
      await env.core.createNamespace({ body: { metadata: { name: "fan-late" } } });
      await env.core.deleteNamespacedSecret({ namespace: victim, name: secretName });
      const sa = await env.core.readNamespacedServiceAccount({ namespace: stripped, name: "default" });
      sa.imagePullSecrets = (sa.imagePullSecrets ?? []).filter((r) => r.name !== secretName);
      await env.core.replaceNamespacedServiceAccount({ namespace: stripped, name: "default", body: sa });
      const changedAt = Date.now();
      await waitForPullSecret(env, "fan-late", secretName, "default", { timeoutMs: 120_000 });
      await waitForPullSecret(env, victim, secretName, "default", { timeoutMs: 120_000 });
      await waitForPullSecret(env, stripped, secretName, "default", { timeoutMs: 120_000 });
      figures.changesAppliedSeconds = secondsBetween(changedAt, Date.now());
      figures.recoverySecondsAfterEtcd = secondsBetween(upAt, Date.now());

      const deliberate = new Set([`${victim}/${secretName}`]);
      const lost = [...secrets.deleted, ...secrets.emptied, ...secrets.recreated].filter(
        (k) => !deliberate.has(k),
      );
      const entriesLost = serviceAccounts.lostEntries.filter((e) => !e.startsWith(`${stripped}/`));
      figures.secretsLost = lost.length;
      figures.entriesLost = entriesLost.length + serviceAccounts.deleted.length;
      figures.operatorSecretDeletes = operatorDeletes(started);
      assert.deepEqual(lost, []);
      assert.deepEqual(entriesLost, []);
      assert.equal(figures.operatorSecretDeletes, 0);
      const restored = await readSecret(env, victim, secretName);
      assert.equal(restored.type, "kubernetes.io/dockerconfigjson");
    });
  });

  it("never puts a secret in a log line, Event or status during control-plane faults", async () => {
    await scenario("L1", "no secret leaked: control-plane faults", async (figures) => {
      saveLogs("control-plane-faults", env.logs);
      const scan = await assertNoLeaks(figures, {
        core: env.core,
        objects: env.objects,
        logs: env.logs,
        secrets: secretValues(),
      });
      assert.ok(scan.logLines > 10, `only ${scan.logLines} log lines captured`);
    });
  });
});
