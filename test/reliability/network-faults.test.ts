// The operator's connections to the API server cut (reset), gone dark and restored, or half-open
// for good, through a loopback TCP proxy; and two replicas with leader election while the leader's
// connection is cut. Operators run as processes with debug logs, whose "watch restarted" lines time
// the informers' recovery.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { CoordinationV1Api } from "@kubernetes/client-node";
import { GROUP, PLURAL, VERSION } from "../../src/api/types.ts";
import { readAuditLog, type AuditEvent } from "../harness/audit.ts";
import {
  createPullSecretCr,
  operatorNamespace,
  startOperatorEnv,
  waitForPullSecret,
  type OperatorEnv,
} from "../harness/operator-env.ts";
import { startTcpProxy, type TcpProxy } from "../harness/tcp-proxy.ts";
import { eventually } from "../harness/wait.ts";
import {
  createNamespaces,
  logRecords,
  startOperatorAs,
  waitForCr,
  type RunningOperator,
} from "./fixtures.ts";
import { assertNoLeaks, secretValues } from "./leaks.ts";
import { saveLogs, scenario, secondsBetween, type Figures } from "./results.ts";
import { fullScaleOnly } from "./scale.ts";

const lease = "reliability-lease";
/** How long an informer may take to notice a dead watch and recover. */
const informerRecoveryMs = 60_000;
const watchedInformers = ["ecrpullsecrets", "namespaces", "serviceaccounts", "secrets"];
const writeResources = ["secrets", "serviceaccounts", "ecrpullsecrets", "events"];

interface WatchRestart {
  informer: string;
  reason: string;
  at: number;
}

function watchRestarts(logs: readonly string[], since: number): WatchRestart[] {
  return logRecords(logs)
    .filter((l) => l.msg === "watch restarted")
    .map((l) => ({ informer: l.informer ?? "", reason: l.reason ?? "", at: Date.parse(l.time ?? "") }))
    .filter((r) => r.at >= since);
}

describe("network faults", () => {
  let env: OperatorEnv;
  const proxies: TcpProxy[] = [];
  const operators: RunningOperator[] = [];
  const logs: string[] = [];

  /** An operator process whose every API connection goes through a new TCP proxy. */
  async function startBehindProxy(
    user: string,
    args: readonly string[],
  ): Promise<{ op: RunningOperator; proxy: TcpProxy }> {
    const proxy = await startTcpProxy(Number(new URL(env.plane.server).port));
    proxies.push(proxy);
    const credentials = await env.plane.userKubeConfig(user, ["system:masters"]);
    const path = join(env.plane.dir, `${user}-via-proxy.kubeconfig`);
    await writeFile(path, proxy.kubeConfigVia(credentials.kubeConfig).exportConfig(), { mode: 0o600 });
    const op = await startOperatorAs(env, user, args, { kubeconfigPath: path });
    operators.push(op);
    return { op, proxy };
  }

  async function stopOperator(op: RunningOperator): Promise<void> {
    await op.proc.stop();
    logs.push(...op.proc.logs());
    operators.splice(operators.indexOf(op), 1);
  }

  before(async () => {
    env = await startOperatorEnv({ audit: true, startOperator: false });
  });

  after(async () => {
    for (const op of [...operators]) await stopOperator(op);
    for (const proxy of proxies) await proxy.stop();
    await env.stop();
  });

  describe("watch connections cut without a clean close", () => {
    let op: RunningOperator;
    let proxy: TcpProxy;
    let excluded = false;

    before(async () => {
      await createNamespaces(env, "net", 4);
      await env.core.createNamespacedServiceAccount({
        namespace: "net-0002",
        body: { metadata: { name: "builder" } },
      });
      await createPullSecretCr(env, "net", { secretName: "net-pull", namespaces: ["net-*"] });
      ({ op, proxy } = await startBehindProxy("reliability-net", ["--leader-elect=false"]));
      await waitForCr(env, "net", { synced: 4 });
    });

    after(async () => {
      await stopOperator(op);
    });

    /**
     * Changes made while the operator cannot see them, one per informer: a new namespace, a deleted
     * Secret, a stripped ServiceAccount entry and a CR edit (net-0003 excluded, or included again).
     */
    async function changeEverything(tag: string): Promise<void> {
      await env.core.createNamespace({ body: { metadata: { name: `net-${tag}` } } });
      await env.core.deleteNamespacedSecret({ namespace: "net-0000", name: "net-pull" });
      const sa = await env.core.readNamespacedServiceAccount({ namespace: "net-0001", name: "default" });
      sa.imagePullSecrets = (sa.imagePullSecrets ?? []).filter((r) => r.name !== "net-pull");
      await env.core.replaceNamespacedServiceAccount({ namespace: "net-0001", name: "default", body: sa });
      excluded = !excluded;
      await env.objects.patchClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        name: "net",
        body: [{ op: "add", path: "/spec/excludeNamespaces", value: excluded ? ["net-0003"] : [] }],
      });
    }

    async function changesApplied(tag: string, timeoutMs: number): Promise<number> {
      await eventually(
        async () => {
          for (const ns of [`net-${tag}`, "net-0000", "net-0001"]) {
            await waitForPullSecret(env, ns, "net-pull", "default", { timeoutMs: 1 });
          }
          const excludedSecret = await env.core
            .readNamespacedSecret({ namespace: "net-0003", name: "net-pull" })
            .then(
              () => true,
              () => false,
            );
          assert.equal(excludedSecret, !excluded, "net-0003 follows the CR edit");
        },
        { timeoutMs, intervalMs: 250, message: "changes made during the fault applied" },
      );
      return Date.now();
    }

    function recordInformers(figures: Figures, since: number, reason: string): number {
      const restarts = watchRestarts(op.proc.logs(), since).filter((r) => r.reason === reason);
      const firstPer = watchedInformers.map((name) => restarts.find((r) => r.informer === name)?.at);
      const slowest = Math.max(
        ...firstPer.map((at) => (at === undefined ? Number.POSITIVE_INFINITY : at - since)),
      );
      figures.informersRestarted = `${firstPer.filter((at) => at !== undefined).length}/${watchedInformers.length}`;
      figures.slowestInformerSeconds = Number.isFinite(slowest) ? Math.round(slowest / 100) / 10 : -1;
      return slowest;
    }

    it("recovers every informer within 60 s of its connections being reset, and applies the changes made meanwhile", async () => {
      await scenario("F3a", "watch connections reset (no clean close)", async (figures) => {
        const cutAt = Date.now();
        proxy.setMode("refuse");
        proxy.cutAll();
        await changeEverything("reset");
        proxy.setMode("forward");
        const appliedAt = await changesApplied("reset", informerRecoveryMs);
        figures.changesAppliedSeconds = secondsBetween(cutAt, appliedAt);
        await eventually(() => {
          assert.ok(recordInformers(figures, cutAt, "error") <= informerRecoveryMs);
        });
        assert.equal(op.proc.process.child.exitCode, null);
      });
    });

    it(
      "recovers within 60 s after every connection went dark and came back, and applies the changes",
      fullScaleOnly,
      async () => {
        await scenario("F3b", "all API connections dark for 45 s, then restored", async (figures) => {
          const darkMs = 45_000;
          const cutAt = Date.now();
          proxy.setMode("stall");
          await changeEverything("dark");
          await eventually(
            () => {
              assert.ok(Date.now() - cutAt >= darkMs);
            },
            { timeoutMs: darkMs + 5_000, intervalMs: 500, message: "dark window" },
          );
          proxy.setMode("forward");
          const restoredAt = Date.now();
          figures.darkSeconds = darkMs / 1000;
          const appliedAt = await changesApplied("dark", informerRecoveryMs);
          figures.changesAppliedSecondsAfterRestore = secondsBetween(restoredAt, appliedAt);
          assert.equal(op.proc.process.child.exitCode, null);
        });
      },
    );

    it(
      "notices half-open watch connections within 60 s, reconnects, and applies the changes",
      fullScaleOnly,
      async () => {
        await scenario(
          "F3c",
          "watch connections half-open for good (silent, never closed)",
          async (figures) => {
            const stalledAt = Date.now();
            proxy.stallOpen();
            await changeEverything("half-open");
            const appliedAt = await changesApplied("half-open", informerRecoveryMs + 15_000);
            figures.changesAppliedSeconds = secondsBetween(stalledAt, appliedAt);
            const slowest = await eventually(() => {
              const ms = recordInformers(figures, stalledAt, "stalled");
              assert.ok(Number.isFinite(ms), "not every informer restarted yet");
              return ms;
            });
            assert.ok(slowest <= informerRecoveryMs, `an informer took ${slowest} ms`);
            assert.equal(op.proc.process.child.exitCode, null);
          },
        );
      },
    );
  });

  describe("leader election while the leader's connection is cut", () => {
    let namespaceIndex = 0;
    /** The replica that leads after the stalled leader's handover, and its proxy. */
    let survivor: { op: RunningOperator; proxy: TcpProxy } | undefined;

    before(async () => {
      await createPullSecretCr(env, "le", { secretName: "le-pull", namespaces: ["le-*"] });
    });

    async function holder(): Promise<string> {
      const api = env.plane.kubeConfig.makeApiClient(CoordinationV1Api);
      const current = await api.readNamespacedLease({ namespace: operatorNamespace, name: lease });
      return current.spec?.holderIdentity ?? "";
    }

    /** Creates a matching namespace every 500 ms until `stop` resolves, so the leader keeps writing. */
    function keepCreatingNamespaces(): { stop: () => Promise<string[]> } {
      const created: string[] = [];
      const state = { running: true };
      const loop = (async () => {
        for (let i = 0; state.running && i < 400; i++) {
          const name = `le-${String(namespaceIndex++).padStart(4, "0")}`;
          await env.core.createNamespace({ body: { metadata: { name } } });
          created.push(name);
          // Pacing of the background load, not a wait for a condition.
          await delay(500);
        }
      })();
      return {
        stop: async () => {
          state.running = false;
          await loop;
          return created;
        },
      };
    }

    function writes(events: readonly AuditEvent[], user: string): AuditEvent[] {
      return events.filter(
        (e) =>
          e.user === user &&
          ["create", "update", "patch", "delete"].includes(e.verb) &&
          writeResources.includes(e.resource) &&
          (e.code ?? 500) < 400,
      );
    }

    /**
     * Cuts the leader off for cutMs, longer than its renew deadline (10 s) and shorter than the
     * Lease (15 s), then gives it its connection back: it must have stopped writing on its own, the
     * standby must take over, and the audit log must never show both writing.
     */
    async function cutTheLeader(
      figures: Figures,
      leader: RunningOperator,
      standby: RunningOperator,
      leaderProxy: TcpProxy,
      how: "stall" | "reset",
    ): Promise<void> {
      const cutMs = 12_000;
      const renewDeadlineMs = 10_000;
      assert.equal(await holder(), leader.identity);
      let exitedAt: number | undefined;
      void leader.proc.process.exited.then(() => {
        exitedAt = Date.now();
      });
      const activity = keepCreatingNamespaces();
      try {
        const before = Date.now();
        await eventually(
          () => {
            const recent = writes(readAuditLog(env.plane.auditLogPath), leader.user).filter(
              (e) => e.receivedAt >= before,
            );
            assert.ok(recent.length >= 3);
          },
          { timeoutMs: 30_000, message: "the leader writing" },
        );
        const cutAt = Date.now();
        if (how === "stall") {
          leaderProxy.setMode("stall");
        } else {
          leaderProxy.setMode("refuse");
          leaderProxy.cutAll();
        }
        await eventually(
          () => {
            assert.ok(Date.now() - cutAt >= cutMs);
          },
          { timeoutMs: cutMs + 5_000, intervalMs: 200, message: "the cut" },
        );
        // Back before the Lease expires: only the leader's own deadline keeps it from writing.
        leaderProxy.setMode("forward");
        const restoredAt = Date.now();
        figures.cutSeconds = secondsBetween(cutAt, restoredAt);
        await eventually(
          async () => {
            assert.equal(await holder(), standby.identity);
          },
          { timeoutMs: 60_000, intervalMs: 200, message: "the standby takes the Lease" },
        );
        figures.handoverSeconds = secondsBetween(cutAt, Date.now());
        await eventually(
          () => {
            const recent = writes(readAuditLog(env.plane.auditLogPath), standby.user).filter(
              (e) => e.receivedAt >= cutAt,
            );
            assert.ok(recent.length >= 3);
          },
          { timeoutMs: 30_000, message: "the new leader writing" },
        );
        const created = await activity.stop();
        for (const ns of created)
          await waitForPullSecret(env, ns, "le-pull", "default", { timeoutMs: 60_000 });
        figures.namespacesCreated = created.length;
        figures.oldLeaderExitedAfterSeconds =
          exitedAt === undefined ? "still running" : secondsBetween(cutAt, exitedAt);

        const events = readAuditLog(env.plane.auditLogPath).filter((e) => e.receivedAt >= before);
        const leaseWrites = events.filter(
          (e) => e.resource === "leases" && e.name === lease && e.verb !== "get" && (e.code ?? 500) < 400,
        );
        const acquired = leaseWrites.find((e) => e.user === standby.user)?.receivedAt;
        assert.ok(acquired !== undefined, "the standby never wrote the Lease");
        const oldWrites = writes(events, leader.user);
        const newWrites = writes(events, standby.user);
        const lastOld = Math.max(...oldWrites.map((e) => e.at));
        figures.oldLeaderWrites = oldWrites.length;
        figures.newLeaderWrites = newWrites.length;
        figures.oldLeaderLastWriteAfterCutSeconds = secondsBetween(cutAt, lastOld);
        figures.oldLeaderStoppedBeforeTakeoverSeconds = secondsBetween(lastOld, acquired);
        const afterDeadline = oldWrites.filter((e) => e.receivedAt > cutAt + renewDeadlineMs).length;
        figures.oldLeaderWritesAfterRenewDeadline = afterDeadline;
        const overlaps =
          oldWrites.filter((e) => e.at >= acquired).length +
          newWrites.filter((e) => e.receivedAt < acquired).length;
        figures.overlappingWrites = overlaps;
        const reacquired = leaseWrites.filter(
          (e) => e.user === leader.user && e.receivedAt > acquired,
        ).length;
        figures.oldLeaderLeaseWritesAfterTakeover = reacquired;
        assert.equal(overlaps, 0);
        assert.equal(afterDeadline, 0, "the old leader wrote after its renew deadline");
        assert.ok(lastOld < acquired, "the old leader wrote after the Lease changed hands");
        assert.equal(reacquired, 0);
        const steppedDown = logRecords(leader.proc.logs()).find(
          (l) => l.msg?.startsWith("lost the leader lease") === true,
        )?.time;
        figures.oldLeaderSteppedDownAfterSeconds =
          steppedDown === undefined ? "never" : secondsBetween(cutAt, Date.parse(steppedDown));
        assert.ok(
          steppedDown !== undefined && Date.parse(steppedDown) < acquired,
          "the old leader did not step down before the takeover",
        );
      } finally {
        await activity.stop();
      }
    }

    it("stops the leader writing before its Lease can be taken when its connection stalls: never two writers", async () => {
      await scenario(
        "F7a",
        "leader's API connection stalls: handover without two writers",
        async (figures) => {
          const a = await startBehindProxy("replica-a", ["--lease-name", lease]);
          await eventually(async () => {
            assert.equal(await holder(), a.op.identity);
          });
          const b = await startBehindProxy("replica-b", ["--lease-name", lease]);
          await eventually(() => {
            assert.ok(b.op.proc.logs().some((l) => l.includes("standing by")));
          });
          await cutTheLeader(figures, a.op, b.op, a.proxy, "stall");
          await stopOperator(a.op);
          survivor = b;
        },
      );
    });

    it(
      "stops the leader writing before its Lease can be taken when its connections are reset and refused",
      fullScaleOnly,
      async () => {
        await scenario(
          "F7b",
          "leader's API connections reset and refused: handover without two writers",
          async (figures) => {
            assert.ok(survivor !== undefined, "the stalled leader's handover left no leader");
            const c = await startBehindProxy("replica-c", ["--lease-name", lease]);
            await eventually(() => {
              assert.ok(c.op.proc.logs().some((l) => l.includes("standing by")));
            });
            await cutTheLeader(figures, survivor.op, c.op, survivor.proxy, "reset");
            await stopOperator(survivor.op);
          },
        );
      },
    );

    it("never puts a secret in a log line, Event or status during network faults", async () => {
      await scenario("L5", "no secret leaked: network faults", async (figures) => {
        for (const op of [...operators]) await stopOperator(op);
        saveLogs("network-faults", logs);
        await assertNoLeaks(figures, { core: env.core, objects: env.objects, logs, secrets: secretValues() });
      });
    });
  });
});
