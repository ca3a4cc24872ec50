// docs/migration.md, run command for command against a real API server after re-enacting what the
// original alchemy.com operator really leaves behind (one constant Secret name, us-east-1 tokens,
// `default` ServiceAccounts overwritten), on both paths, with Pods created and every namespace's
// ServiceAccount checked throughout.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { API_VERSION, KIND } from "../../src/api/types.ts";
import { ADDED_PULL_SECRETS_ANNOTATION, MANAGED_BY_LABEL } from "../../src/controller/plan/labels.ts";
import {
  createNamespace,
  createPullSecretCr,
  deleteCr,
  pullSecretNames,
  readCr,
  readServiceAccount,
  rotateAccessKeyId,
  startOperatorEnv,
  type OperatorEnv,
} from "../harness/operator-env.ts";
import {
  convertedCrs,
  migrateWhileWatched as watchMigration,
  openMigrationShell,
  parseLostEntries,
  parsePreview,
  pullSecretEntries,
  runMigration,
  workingSecrets,
  type AcceptsToken,
  type MigrationPath,
  type MigrationShell,
  type MigrationStep,
  type MigrationVariables,
  type PreviewRow,
  type ProbePod,
  type WatchedMigration,
} from "../harness/migration.ts";
import { motoDefaultCredentials } from "../harness/moto.ts";
import {
  createOriginalCr,
  installOriginalCrd,
  originalRegistry,
  originalSecretName,
  runOriginalOperator,
  type OriginalOutcome,
} from "../harness/original-operator.ts";
import { eventually } from "../harness/wait.ts";

const OLD = originalSecretName;
/** The secretName the original's `ecr-config` CR asked for and never got; path (b) moves to it. */
const chosenName = "ecr-pull";
/** Namespaces the original operator wrote to; `staging` was listed before it existed. */
const writtenTo = ["default", "production", "team-a"];
const targeted = ["default", "production", "staging", "team-a"];

function regionOf(host: string): string {
  return /\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com/.exec(host)?.[1] ?? "?";
}

/** As ECR: a token works only for registries in the region that issued it. */
const acceptsToken: AcceptsToken = (registry, password) =>
  password.startsWith(`${regionOf(registry)}-token-`);

/** Every token the AWS stand-in hands out from now on names its region and this generation. */
function issueTokens(env: OperatorEnv, generation: number): void {
  env.aws.setEcrTokenPassword((region) => `${region ?? "unsigned"}-token-${generation}`);
}

/** New AWS keys for the operator: it mints again, and every Secret it keeps gets the new generation. */
async function rotateCredentials(env: OperatorEnv, generation: number): Promise<void> {
  issueTokens(env, generation);
  await rotateAccessKeyId(env, `AKIAROTATEDKEY00000${generation}`);
}

async function secretUids(env: OperatorEnv, name: string): Promise<Map<string, string>> {
  const list = await env.core.listSecretForAllNamespaces({ fieldSelector: `metadata.name=${name}` });
  return new Map(list.items.map((s) => [s.metadata?.namespace ?? "", s.metadata?.uid ?? ""]));
}

async function namespacesWithSecret(env: OperatorEnv, name: string): Promise<string[]> {
  return [...(await secretUids(env, name)).keys()].sort();
}

function mintRegions(env: OperatorEnv): Set<string | undefined> {
  return new Set(
    env.aws
      .calls()
      .filter((c) => c.operation === "ecr:GetAuthorizationToken")
      .map((c) => c.region),
  );
}

/**
 * The cluster as the original operator leaves it: `production`'s ServiceAccount had an entry of
 * its own (applied with kubectl, and on a Pod admitted then); two CRs, one with a secretName it
 * ignores, one with none; its handlers run once; `staging` is created afterwards.
 */
async function reenactOriginalOperator(env: OperatorEnv, registry: string): Promise<OriginalOutcome[]> {
  await installOriginalCrd(env.plane.kubeConfig);
  for (const ns of ["production", "team-a"]) await createNamespace(env, ns);
  for (const ns of writtenTo) await eventually(() => readServiceAccount(env, ns, "default"));
  const applied = {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name: "default", namespace: "production" },
    imagePullSecrets: [{ name: "team-registry" }],
  };
  await env.core.patchNamespacedServiceAccount({
    namespace: "production",
    name: "default",
    body: [
      { op: "add", path: "/imagePullSecrets", value: applied.imagePullSecrets },
      {
        op: "add",
        path: "/metadata/annotations",
        value: { "kubectl.kubernetes.io/last-applied-configuration": JSON.stringify(applied) },
      },
    ],
  });
  const admitted = await env.core.createNamespacedPod({
    namespace: "production",
    body: {
      metadata: { name: "admitted-before" },
      spec: { containers: [{ name: "app", image: `${registry}/app:1` }] },
    },
  });
  assert.deepEqual(
    admitted.spec?.imagePullSecrets?.map((ref) => ref.name),
    ["team-registry"],
    "ServiceAccount admission gave the Pod its account's entries",
  );
  await createOriginalCr(env.plane.kubeConfig, "ecr-config", {
    secretName: chosenName,
    namespaces: ["production", "team-a", "staging"],
  });
  await createOriginalCr(env.plane.kubeConfig, "implicit-default", {});
  const outcomes = await runOriginalOperator({
    kubeConfig: env.plane.kubeConfig,
    awsEndpoint: env.aws.endpoint,
    credentials: motoDefaultCredentials,
    registry,
  });
  await createNamespace(env, "staging");
  await eventually(() => readServiceAccount(env, "staging", "default"));
  return outcomes;
}

async function assertReenacted(
  env: OperatorEnv,
  outcomes: OriginalOutcome[],
  registry: string,
): Promise<void> {
  assert.deepEqual(
    outcomes
      .filter((o) => o.written)
      .map((o) => o.namespace)
      .sort(),
    writtenTo,
  );
  assert.deepEqual(
    outcomes.filter((o) => !o.written).map((o) => o.namespace),
    ["staging"],
  );
  assert.deepEqual(await namespacesWithSecret(env, chosenName), [], "the original wrote its CR's secretName");
  assert.deepEqual(await namespacesWithSecret(env, OLD), writtenTo);
  assert.deepEqual(mintRegions(env), new Set(["us-east-1"]));
  const works = regionOf(registry) === "us-east-1";
  for (const ns of writtenTo) {
    const entries = await pullSecretEntries(env.core, ns, "default", registry, acceptsToken);
    assert.deepEqual(entries.listed, [OLD], `${ns}: the list replaced whole`);
    assert.deepEqual(entries.working, works ? [OLD] : [], `${ns} before the migration`);
  }
}

/** Makes the operator sweep (by deleting a CR) and waits for a sign that the sweep ran. */
async function forceSweep(env: OperatorEnv): Promise<void> {
  const probe = "sweep-probe";
  await env.core.createNamespacedServiceAccount({
    namespace: "default",
    body: {
      metadata: { name: probe, annotations: { [ADDED_PULL_SECRETS_ANNOTATION]: `${probe}-gone` } },
      imagePullSecrets: [{ name: `${probe}-gone` }],
    },
  });
  await createPullSecretCr(env, probe, {
    secretName: probe,
    namespaces: ["no-such-namespace"],
    suspend: true,
  });
  await deleteCr(env, probe);
  await eventually(
    async () => {
      const sa = await readServiceAccount(env, "default", probe);
      assert.deepEqual(pullSecretNames(sa), [], "the sweep has not run yet");
    },
    { message: "a sweep after the CR's deletion" },
  );
  await env.core.deleteNamespacedServiceAccount({ namespace: "default", name: probe });
}

/** Runs the guide's path while Pods are created and every namespace is checked. */
async function migrateWhileWatched(
  env: OperatorEnv,
  shell: MigrationShell,
  path: MigrationPath,
  afterStep?: (step: MigrationStep, output: string) => Promise<void>,
): Promise<WatchedMigration> {
  return watchMigration(shell, path, {
    core: env.core,
    accepts: acceptsToken,
    namespaces: writtenTo,
    laterNamespaces: ["staging"],
    afterStep,
  });
}

function assertNoGap(run: WatchedMigration): void {
  assert.deepEqual(run.coverage.errors, []);
  assert.deepEqual(run.coverage.gaps, [], "a namespace was left without a working entry");
  assert.deepEqual(run.coverage.neverCovered, []);
  assert.ok(run.coverage.polls >= 20, `only ${run.coverage.polls} polls during the migration`);
  assert.deepEqual(run.podErrors, []);
  assert.ok(run.pods.length >= 10, `only ${run.pods.length} Pods created during the migration`);
}

/** Each Pod names a Secret the operator manages, holding a token of this generation. */
async function assertPodsOnFreshSecrets(
  env: OperatorEnv,
  pods: readonly ProbePod[],
  registry: string,
  generation: number,
): Promise<void> {
  const fresh: AcceptsToken = (host, password) => password === `${regionOf(host)}-token-${generation}`;
  await eventually(
    async () => {
      for (const pod of pods) {
        const admitted = await env.core.readNamespacedPod({ namespace: pod.namespace, name: pod.name });
        const listed = (admitted.spec?.imagePullSecrets ?? []).map((ref) => ref.name ?? "");
        const managed: string[] = [];
        for (const name of await workingSecrets(env.core, pod.namespace, listed, registry, fresh)) {
          const secret = await env.core.readNamespacedSecret({ namespace: pod.namespace, name });
          if (secret.metadata?.labels?.[MANAGED_BY_LABEL] === "ecr-creds-refresher") managed.push(name);
        }
        assert.ok(
          managed.length > 0,
          `Pod ${pod.namespace}/${pod.name} names [${listed.join(", ")}]: none managed and refreshed`,
        );
      }
    },
    { timeoutMs: 60_000, message: `every Pod on a Secret refreshed to generation ${generation}` },
  );
}

/** The lost-entries list before anything changed: the overwritten accounts, production's name still visible. */
function assertLostEntries(output: string): void {
  assert.deepEqual(parseLostEntries(output), [
    { namespace: "default", serviceAccount: "default", seenElsewhere: [] },
    { namespace: "production", serviceAccount: "default", seenElsewhere: ["team-registry"] },
    { namespace: "team-a", serviceAccount: "default", seenElsewhere: [] },
  ]);
}

/** Step 4's preview of this cluster: the accounts the original overwrote, and `staging`, which it never reached. */
function expectedPreview(after: string, secretsWhereWritten: string, secretsInStaging: string): PreviewRow[] {
  return targeted.map((namespace) => {
    const written = writtenTo.includes(namespace);
    return {
      namespace,
      serviceAccount: "default",
      now: written ? [OLD] : [],
      after: [after],
      secrets: written ? secretsWhereWritten : secretsInStaging,
      note: written ? "list overwritten by the original operator" : "",
    };
  });
}

interface FromOriginal {
  env: OperatorEnv;
  shell: MigrationShell;
}

/**
 * A suite on its own cluster, left as the original operator leaves it with `registry` as its
 * REGISTRY setting, and a migration shell with the guide's variables.
 */
function describeFromOriginal(
  title: string,
  registry: string,
  variables: Omit<MigrationVariables, "OLD" | "REGISTRY">,
  tests: (cluster: () => FromOriginal) => void,
): void {
  describe(title, () => {
    let env: OperatorEnv | undefined;
    let shell: MigrationShell | undefined;
    let outcomes: OriginalOutcome[] = [];

    before(async () => {
      env = await startOperatorEnv({ serviceAccountAdmission: true });
      issueTokens(env, 1);
      outcomes = await reenactOriginalOperator(env, registry);
      shell = await openMigrationShell(env.plane.kubeconfigPath, { OLD, REGISTRY: registry, ...variables });
    });

    after(async () => {
      await shell?.dispose();
      await env?.stop();
    });

    const cluster = (): FromOriginal => {
      if (env === undefined || shell === undefined) throw new Error("the cluster did not start");
      return { env, shell };
    };

    it("starts from what the original operator really wrote, not what its CRs say", async () => {
      await assertReenacted(cluster().env, outcomes, registry);
    });

    tests(cluster);
  });
}

describe("migrating from the original alchemy.com/v1alpha1 operator", () => {
  describeFromOriginal(
    "path (a): keeping the name Pods already use",
    originalRegistry,
    { CR: "ecr-pull", NEW: OLD },
    (cluster) => {
      let run: WatchedMigration | undefined;

      it("adopts the Secrets in place, never leaving a namespace without a working entry", async () => {
        const { env, shell } = cluster();
        const uidsBefore = await secretUids(env, OLD);
        env.aws.reset();
        run = await migrateWhileWatched(env, shell, "keep-name", async (step, output) => {
          if (step === "preview") {
            const adopted = `${OLD}: adopted in place, new token`;
            assert.deepEqual(parsePreview(output), expectedPreview(OLD, adopted, `${OLD}: created`));
          }
          if (step === "lost-entries") assertLostEntries(output);
          // Adopted Secrets carry our labels but no owner yet; a sweep in between must leave them alone.
          if (step === "adopt") await forceSweep(env);
        });
        assertNoGap(run);

        assert.deepEqual(
          (run.outputs.get("export") ?? "").split("\n").filter((line) => line !== ""),
          [
            `CR ecr-config: secretName ${chosenName} never took effect; its namespaces got ${OLD}`,
            `registry ${originalRegistry}`,
          ],
        );
        assert.deepEqual(await convertedCrs(shell), [
          {
            apiVersion: API_VERSION,
            kind: KIND,
            metadata: { name: "ecr-pull" },
            spec: {
              secretName: OLD,
              namespaces: targeted,
              registries: [originalRegistry],
              serviceAccounts: ["default"],
            },
          },
        ]);
        const uidsAfter = await secretUids(env, OLD);
        for (const [ns, uid] of uidsBefore) {
          assert.equal(uidsAfter.get(ns), uid, `${ns}/${OLD} was replaced, not adopted`);
        }
        assert.deepEqual([...uidsAfter.keys()].sort(), targeted);
        assert.deepEqual(mintRegions(env), new Set(["us-east-1"]));
        const cr = await readCr(env, "ecr-pull");
        assert.deepEqual(cr.status?.namespaces, { desired: 4, synced: 4 });
        // production's own entry left with the original operator; nothing brings it back.
        assert.deepEqual(pullSecretNames(await readServiceAccount(env, "production", "default")), [OLD]);
        assert.deepEqual(pullSecretNames(await readServiceAccount(env, "staging", "default")), [OLD]);
      });

      it("keeps the Secrets that Pods created during the migration name fresh", async () => {
        assert.ok(run !== undefined, "the migration did not run");
        await rotateCredentials(cluster().env, 2);
        await assertPodsOnFreshSecrets(cluster().env, run.pods, originalRegistry, 2);
      });
    },
  );

  describeFromOriginal(
    "path (b): moving to a name of your choice",
    originalRegistry,
    { CR: "ecr-pull", NEW: chosenName },
    (cluster) => {
      let run: WatchedMigration | undefined;

      it("moves every namespace to the new Secret, never leaving one without a working entry", async () => {
        const { env, shell } = cluster();
        run = await migrateWhileWatched(env, shell, "new-name", async (step, output) => {
          if (step === "preview") {
            const both = `${OLD}: kept fresh, then deleted; ${chosenName}: created`;
            assert.deepEqual(
              parsePreview(output),
              expectedPreview(chosenName, both, `${chosenName}: created`),
            );
          }
          if (step === "lost-entries") assertLostEntries(output);
          if (step === "apply") {
            // Both names listed, both Secrets kept fresh, until the old one is retired.
            for (const ns of writtenTo) {
              const entries = await pullSecretEntries(
                env.core,
                ns,
                "default",
                originalRegistry,
                acceptsToken,
              );
              assert.deepEqual(entries.listed, [OLD, chosenName], ns);
              assert.deepEqual(entries.working, [OLD, chosenName], ns);
            }
          }
        });
        assertNoGap(run);
        assert.deepEqual(
          (await convertedCrs(shell)).map((cr) => [
            cr.metadata.name,
            cr.spec.secretName,
            cr.spec.serviceAccounts,
          ]),
          [
            ["ecr-pull", chosenName, ["default"]],
            ["ecr-pull-original", OLD, []],
          ],
        );
        assert.ok(
          run.pods.some((p) => p.name.endsWith("-r")),
          "no Pod named only the old Secret, so step 8's restart was never exercised",
        );
      });

      it("leaves no trace of the old Secret: no entry, no Secret", async () => {
        const { env } = cluster();
        const accounts = await env.core.listServiceAccountForAllNamespaces();
        const stale = accounts.items
          .filter((sa) => pullSecretNames(sa).includes(OLD))
          .map((sa) => `${sa.metadata?.namespace ?? ""}/${sa.metadata?.name ?? ""}`);
        assert.deepEqual(stale, []);
        assert.deepEqual(await namespacesWithSecret(env, OLD), []);
        for (const ns of targeted) {
          const entries = await pullSecretEntries(env.core, ns, "default", originalRegistry, acceptsToken);
          assert.deepEqual(entries.listed, [chosenName], ns);
          assert.deepEqual(entries.working, [chosenName], ns);
        }
        await assert.rejects(readCr(env, "ecr-pull-original"), (err: { code?: number }) => err.code === 404);
      });

      it("keeps the Secrets that Pods created during the migration name fresh", async () => {
        assert.ok(run !== undefined, "the migration did not run");
        await rotateCredentials(cluster().env, 2);
        await assertPodsOnFreshSecrets(cluster().env, run.pods, originalRegistry, 2);
      });
    },
  );

  const elsewhere = "209202477790.dkr.ecr.eu-west-1.amazonaws.com";
  describeFromOriginal("a registry outside us-east-1", elsewhere, { CR: "ecr-pull", NEW: OLD }, (cluster) => {
    it("says its tokens never worked there, and ends with tokens from the registry's own region", async () => {
      const { env, shell } = cluster();
      env.aws.reset();
      const outputs = new Map<MigrationStep, string>();
      await runMigration(shell, "keep-name", {
        afterStep: (step, output) => {
          outputs.set(step, output);
          return Promise.resolve();
        },
      });
      assert.ok(
        (outputs.get("export") ?? "").includes(
          `registry ${elsewhere}: in eu-west-1, where the us-east-1 tokens it holds never worked`,
        ),
        outputs.get("export"),
      );
      assert.deepEqual(mintRegions(env), new Set(["eu-west-1"]));
      for (const ns of targeted) {
        const entries = await pullSecretEntries(env.core, ns, "default", elsewhere, acceptsToken);
        assert.deepEqual(entries.working, [OLD], ns);
      }
    });
  });
});
