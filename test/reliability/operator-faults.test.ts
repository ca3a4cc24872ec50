// Faults around the operator process itself: another client rewriting the same ServiceAccounts in a
// loop, the operator SIGKILLed mid-refresh, and a CR deleted while the operator is down. The API
// server's audit log tells the operator's requests apart.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { V1ServiceAccount } from "@kubernetes/client-node";
import { GROUP, PLURAL, VERSION, type ECRPullSecret } from "../../src/api/types.ts";
import {
  ADDED_PULL_SECRETS_ANNOTATION,
  MANAGED_SECRETS_SELECTOR,
  OWNER_LABEL,
  REFRESHED_AT_ANNOTATION,
} from "../../src/controller/plan/labels.ts";
import { classifyKubeError } from "../../src/kube/errors.ts";
import { readAuditLog, writesBy } from "../harness/audit.ts";
import {
  createPullSecretCr,
  deleteCr,
  readCr,
  rotateAccessKeyId,
  startOperatorEnv,
  type OperatorEnv,
} from "../harness/operator-env.ts";
import { eventually } from "../harness/wait.ts";
import { createNamespaces, startOperatorAs, waitForCr, type RunningOperator } from "./fixtures.ts";
import { SecretLedger, ServiceAccountLedger, entriesOf } from "./ledger.ts";
import { assertNoLeaks, secretValues } from "./leaks.ts";
import { saveLogs, scenario, secondsBetween } from "./results.ts";
import { byScale } from "./scale.ts";

const operatorUser = "reliability-operator";
const foreign = "theirs";

describe("operator faults", () => {
  let env: OperatorEnv;
  let operator: RunningOperator | undefined;
  const logs: string[] = [];

  async function startOperator(args: readonly string[] = []): Promise<RunningOperator> {
    operator = await startOperatorAs(env, operatorUser, ["--leader-elect=false", ...args]);
    return operator;
  }

  /** SIGTERM, or SIGKILL when `kill` is set; keeps the logs. */
  async function stopOperator(kill = false): Promise<void> {
    const running = operator;
    if (running === undefined) return;
    if (kill) {
      running.proc.process.kill("SIGKILL");
      await running.proc.process.exited;
    }
    await running.proc.stop();
    logs.push(...running.proc.logs());
    operator = undefined;
  }

  async function listCrs(): Promise<ECRPullSecret[]> {
    const list = (await env.objects.listClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
    })) as {
      items: ECRPullSecret[];
    };
    return list.items;
  }

  async function defaultServiceAccounts(prefix: string): Promise<V1ServiceAccount[]> {
    const list = await env.core.listServiceAccountForAllNamespaces({
      fieldSelector: "metadata.name=default",
    });
    return list.items.filter((sa) => sa.metadata?.namespace?.startsWith(`${prefix}-`) === true);
  }

  /** ServiceAccounts listing a name twice, or naming it twice in the operator's annotation. */
  function duplicates(sas: readonly V1ServiceAccount[]): string[] {
    const found: string[] = [];
    for (const sa of sas) {
      const entries = entriesOf(sa);
      const added = (sa.metadata?.annotations?.[ADDED_PULL_SECRETS_ANNOTATION] ?? "")
        .split(",")
        .filter((s) => s !== "");
      for (const list of [entries, added]) {
        if (new Set(list).size !== list.length)
          found.push(`${sa.metadata?.namespace ?? ""}: ${list.join(",")}`);
      }
    }
    return found;
  }

  /** Managed Secrets whose owner CR is gone, does not target their namespace, or names another Secret. */
  async function orphans(): Promise<string[]> {
    const crs = new Map((await listCrs()).map((cr) => [cr.metadata.name ?? "", cr]));
    const secrets = await env.core.listSecretForAllNamespaces({ labelSelector: MANAGED_SECRETS_SELECTOR });
    return secrets.items
      .filter((s) => {
        const owner = crs.get(s.metadata?.labels?.[OWNER_LABEL] ?? "");
        if (owner === undefined) return true;
        const uidLive = (s.metadata?.ownerReferences ?? []).some((ref) => ref.uid === owner.metadata.uid);
        const name = owner.spec.secretName ?? owner.metadata.name;
        return !uidLive || s.metadata?.name !== name;
      })
      .map((s) => `${s.metadata?.namespace ?? ""}/${s.metadata?.name ?? ""}`);
  }

  before(async () => {
    env = await startOperatorEnv({ audit: true, startOperator: false });
    await startOperator();
  });

  after(async () => {
    await stopOperator();
    await env.stop();
  });

  it("loses no entry of either writer when another client rewrites the same ServiceAccounts in a loop", async () => {
    await scenario("F5", "another client rewrites the same imagePullSecrets in a loop", async (figures) => {
      const count = byScale(10, 40);
      const windowMs = byScale(10_000, 120_000);
      const namespaces = await createNamespaces(env, "sa", count);
      for (const ns of namespaces) {
        await env.core.patchNamespacedServiceAccount({
          namespace: ns,
          name: "default",
          body: [{ op: "add", path: "/imagePullSecrets", value: [{ name: foreign }] }],
        });
      }
      await createPullSecretCr(env, "sa-one", { secretName: "sa-one-pull", namespaces: ["sa-*"] });
      await waitForCr(env, "sa-one", { synced: count });

      // The rival: read-modify-write with resourceVersion, retried on 409, as a correct client does.
      // It keeps "rival-keep" and rotates one "rival-<n>" entry per ServiceAccount.
      const lastRotating = new Map<string, string>();
      let rivalWrites = 0;
      let rivalConflicts = 0;
      const started = Date.now();
      const rival = async (worker: number): Promise<void> => {
        for (let i = 0; Date.now() - started < windowMs && i < 100_000; i++) {
          const ns = namespaces[(i * 7 + worker) % count] ?? "";
          for (let attempt = 0; attempt < 20; attempt++) {
            const sa = await env.core.readNamespacedServiceAccount({ namespace: ns, name: "default" });
            const next = `rival-${worker}-${i}`;
            const entries = entriesOf(sa).filter((e) => !e.startsWith("rival-") || e === "rival-keep");
            if (!entries.includes("rival-keep")) entries.push("rival-keep");
            entries.push(next);
            try {
              sa.imagePullSecrets = entries.map((name) => ({ name }));
              await env.core.replaceNamespacedServiceAccount({ namespace: ns, name: "default", body: sa });
              rivalWrites += 1;
              lastRotating.set(ns, next);
              break;
            } catch (err) {
              if (classifyKubeError(err).kind !== "Conflict") throw err;
              rivalConflicts += 1;
            }
          }
        }
      };
      // The operator writes the same ServiceAccounts meanwhile: a CR added, one deleted, one added.
      const operatorChurn = async (): Promise<void> => {
        const at = async (fraction: number): Promise<void> =>
          eventually(
            () => {
              assert.ok(Date.now() - started >= windowMs * fraction);
            },
            { timeoutMs: windowMs + 5_000, intervalMs: 200, message: "churn step" },
          );
        await at(0.2);
        await createPullSecretCr(env, "sa-two", { secretName: "sa-two-pull", namespaces: ["sa-*"] });
        await at(0.45);
        await deleteCr(env, "sa-one");
        await at(0.7);
        await createPullSecretCr(env, "sa-three", { secretName: "sa-three-pull", namespaces: ["sa-*"] });
      };
      const ledger = new ServiceAccountLedger({
        kubeConfig: env.plane.kubeConfig,
        watched: (e) => e === foreign || e === "rival-keep",
      });
      await ledger.start();
      try {
        await Promise.all([rival(0), rival(1), rival(2), operatorChurn()]);
        const stoppedAt = Date.now();
        await waitForCr(env, "sa-two", { synced: count });
        await waitForCr(env, "sa-three", { synced: count });
        await eventually(
          async () => {
            const crs = await listCrs();
            assert.ok(!crs.some((cr) => cr.metadata.name === "sa-one"), "sa-one still there");
            for (const sa of await defaultServiceAccounts("sa")) {
              const entries = entriesOf(sa);
              const ns = sa.metadata?.namespace ?? "";
              const expected = [foreign, "rival-keep", lastRotating.get(ns), "sa-two-pull", "sa-three-pull"];
              for (const name of expected) {
                if (name !== undefined)
                  assert.ok(entries.includes(name), `${ns} lost ${name}: ${entries.join(",")}`);
              }
              assert.ok(!entries.includes("sa-one-pull"), `${ns} still lists sa-one-pull`);
              const rotating = entries.filter((e) => e.startsWith("rival-") && e !== "rival-keep");
              assert.ok(rotating.length <= 1, `${ns}: ${rotating.join(",")}`);
            }
          },
          { timeoutMs: 60_000, intervalMs: 500, message: "both writers' entries in place" },
        );
        figures.convergedSecondsAfterStop = secondsBetween(stoppedAt, Date.now());
      } finally {
        await ledger.stop();
      }
      const sas = await defaultServiceAccounts("sa");
      const events = readAuditLog(env.plane.auditLogPath).filter((e) => e.receivedAt >= started);
      const operatorPatches = writesBy(events, operatorUser, ["serviceaccounts"]);
      figures.serviceAccounts = count;
      figures.windowSeconds = windowMs / 1000;
      figures.rivalWrites = rivalWrites;
      figures.rivalConflicts = rivalConflicts;
      figures.operatorServiceAccountWrites = operatorPatches.length;
      figures.operatorConflicts = operatorPatches.filter((e) => e.code === 409).length;
      figures.entriesLost = ledger.lost();
      figures.duplicates = duplicates(sas).length;
      assert.ok(rivalWrites > count, `only ${rivalWrites} rival writes`);
      assert.ok(operatorPatches.length >= 2 * count, `only ${operatorPatches.length} operator writes`);
      assert.deepEqual(ledger.lostEntries, []);
      assert.deepEqual(duplicates(sas), []);
    });
  });

  it("converges without duplicate entries or orphaned Secrets after a SIGKILL mid-refresh", async () => {
    await scenario("F6", "operator SIGKILLed mid-refresh and restarted", async (figures) => {
      const count = byScale(20, 300);
      await stopOperator();
      // Slow writes so the kill lands mid-way; the restarted operator runs with the default.
      await startOperator(["--write-concurrency", "2"]);
      await createNamespaces(env, "kill", count);
      await createPullSecretCr(env, "kill-a", { secretName: "kill-a-pull", namespaces: ["kill-*"] });
      await createPullSecretCr(env, "kill-b", { secretName: "kill-b-pull", namespaces: ["kill-*"] });
      await waitForCr(env, "kill-a", { synced: count, timeoutMs: 300_000 });
      await waitForCr(env, "kill-b", { synced: count, timeoutMs: 300_000 });
      const ledgerA = new SecretLedger({ kubeConfig: env.plane.kubeConfig, secretName: "kill-a-pull" });
      const ledgerB = new SecretLedger({ kubeConfig: env.plane.kubeConfig, secretName: "kill-b-pull" });
      await ledgerA.start();
      await ledgerB.start();
      try {
        // A refresh of every kill-a Secret (rotated credentials mean a new token), and the clean-up
        // of kill-b, both in flight when the operator dies.
        const rotatedAt = Date.now();
        await rotateAccessKeyId(env, "AKIAKILLEDMIDREFRESH");
        await deleteCr(env, "kill-b");
        await eventually(
          () => {
            const refreshed = [...ledgerA.modifications.values()].length;
            assert.ok(refreshed + ledgerB.deleted.length >= count * 0.2, `${refreshed} refreshed`);
          },
          { timeoutMs: 120_000, intervalMs: 10, message: "refresh under way" },
        );
        await stopOperator(true);
        figures.secretsRefreshedBeforeKill = ledgerA.modifications.size;
        figures.secretsCleanedBeforeKill = ledgerB.deleted.length;
        assert.ok(ledgerA.modifications.size < count, "the kill must land before the refresh finished");
        const restartedAt = Date.now();
        await startOperator();
        await eventually(
          async () => {
            const secrets = await env.core.listSecretForAllNamespaces({
              fieldSelector: "metadata.name=kill-a-pull",
            });
            const stale = secrets.items.filter(
              (s) => Date.parse(s.metadata?.annotations?.[REFRESHED_AT_ANNOTATION] ?? "") < rotatedAt - 1000,
            );
            assert.equal(secrets.items.length, count);
            assert.equal(stale.length, 0, `${stale.length} kill-a Secrets not refreshed`);
            const left = await env.core.listSecretForAllNamespaces({
              fieldSelector: "metadata.name=kill-b-pull",
            });
            assert.equal(left.items.length, 0, `${left.items.length} kill-b Secrets left`);
            assert.ok(!(await listCrs()).some((cr) => cr.metadata.name === "kill-b"), "kill-b still there");
            const sas = await defaultServiceAccounts("kill");
            const stillB = sas.filter((sa) => entriesOf(sa).includes("kill-b-pull")).length;
            const withA = sas.filter((sa) => entriesOf(sa).includes("kill-a-pull")).length;
            assert.equal(stillB, 0, `${stillB} ServiceAccounts still list kill-b-pull`);
            assert.equal(withA, count);
          },
          { timeoutMs: 300_000, intervalMs: 1000, message: "converged after the restart" },
        );
        await waitForCr(env, "kill-a", { synced: count });
        figures.recoverySecondsAfterRestart = secondsBetween(restartedAt, Date.now());
        const sas = await defaultServiceAccounts("kill");
        figures.duplicates = duplicates(sas).length;
        const orphaned = await orphans();
        figures.orphanedSecrets = orphaned.length;
        figures.secretsLost = ledgerA.deleted.length + ledgerA.emptied.length + ledgerA.recreated.length;
        assert.deepEqual(duplicates(sas), []);
        assert.deepEqual(orphaned, []);
        assert.equal(figures.secretsLost, 0);
      } finally {
        await ledgerA.stop();
        await ledgerB.stop();
      }
    });
  });

  it("removes a CR's ServiceAccount entries on return when the CR was deleted while the operator was down", async () => {
    await scenario("F8", "CR deleted while the operator is down", async (figures) => {
      const count = byScale(5, 30);
      const namespaces = await createNamespaces(env, "gone", count);
      for (const ns of namespaces) {
        await env.core.patchNamespacedServiceAccount({
          namespace: ns,
          name: "default",
          body: [{ op: "add", path: "/imagePullSecrets", value: [{ name: foreign }] }],
        });
      }
      for (const name of ["gone-a", "gone-b", "gone-c"]) {
        await createPullSecretCr(env, name, { secretName: `${name}-pull`, namespaces: ["gone-*"] });
      }
      for (const name of ["gone-a", "gone-b", "gone-c"]) await waitForCr(env, name, { synced: count });
      const ledger = new ServiceAccountLedger({
        kubeConfig: env.plane.kubeConfig,
        watched: (e) => e === foreign || e === "gone-b-pull",
      });
      await ledger.start();
      try {
        const keptBefore = (
          await env.core.listSecretForAllNamespaces({ fieldSelector: "metadata.name=gone-b-pull" })
        ).items;
        await stopOperator();
        // gone-a: deleted, and its finalizer removed by hand (an uninstall); gone-c: deleted, finalizer kept.
        const deletedAt = Date.now();
        await deleteCr(env, "gone-a");
        await env.objects.patchClusterCustomObject({
          group: GROUP,
          version: VERSION,
          plural: PLURAL,
          name: "gone-a",
          body: [{ op: "remove", path: "/metadata/finalizers" }],
        });
        await deleteCr(env, "gone-c");
        await eventually(
          async () => {
            const left = await env.core.listSecretForAllNamespaces({
              fieldSelector: "metadata.name=gone-a-pull",
            });
            assert.equal(left.items.length, 0, `${left.items.length} gone-a Secrets left`);
          },
          { timeoutMs: 120_000, intervalMs: 500, message: "garbage collection of gone-a's Secrets" },
        );
        figures.garbageCollectionSeconds = secondsBetween(deletedAt, Date.now());
        const terminating = await readCr(env, "gone-c");
        assert.ok(terminating.metadata.deletionTimestamp !== undefined, "gone-c waits for the operator");
        const stale = (await defaultServiceAccounts("gone")).filter((sa) =>
          entriesOf(sa).includes("gone-a-pull"),
        );
        figures.entriesWhileDown = stale.length;
        assert.equal(stale.length, count, "only the operator knows which entries it added");

        const restartedAt = Date.now();
        await startOperator();
        await eventually(
          async () => {
            for (const sa of await defaultServiceAccounts("gone")) {
              const entries = entriesOf(sa);
              assert.ok(
                !entries.includes("gone-a-pull") && !entries.includes("gone-c-pull"),
                entries.join(","),
              );
              assert.ok(entries.includes("gone-b-pull") && entries.includes(foreign), entries.join(","));
            }
            const left = await env.core.listSecretForAllNamespaces({
              fieldSelector: "metadata.name=gone-c-pull",
            });
            assert.equal(left.items.length, 0);
            assert.ok(!(await listCrs()).some((cr) => cr.metadata.name === "gone-c"), "gone-c still there");
          },
          { timeoutMs: 120_000, intervalMs: 500, message: "entries removed after the restart" },
        );
        figures.cleanupSecondsAfterRestart = secondsBetween(restartedAt, Date.now());
        const kept = (
          await env.core.listSecretForAllNamespaces({ fieldSelector: "metadata.name=gone-b-pull" })
        ).items;
        figures.otherCrSecretsKept = `${kept.length}/${count}`;
        assert.deepEqual(
          kept.map((s) => s.metadata?.uid).sort(),
          keptBefore.map((s) => s.metadata?.uid).sort(),
        );
        figures.entriesLost = ledger.lost();
        assert.deepEqual(ledger.lostEntries, []);
      } finally {
        await ledger.stop();
      }
    });
  });

  it("never puts a secret in a log line, Event or status during operator faults", async () => {
    await scenario("L4", "no secret leaked: operator faults", async (figures) => {
      await stopOperator();
      saveLogs("operator-faults", logs);
      await assertNoLeaks(figures, { core: env.core, objects: env.objects, logs, secrets: secretValues() });
    });
  });
});
