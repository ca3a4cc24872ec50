import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { PatchStrategy, setHeaderOptions, type V1Secret } from "@kubernetes/client-node";
import { staticSource } from "../../src/aws/credentials.ts";
import { FINALIZER, MANAGED_BY_LABEL, OWNER_LABEL } from "../../src/controller/plan/labels.ts";
import { motoDefaultCredentials } from "../harness/moto.ts";
import { eventually } from "../harness/wait.ts";
import {
  createNamespace,
  createPullSecretCr,
  deleteCr,
  dockerConfigOf,
  operatorNamespace,
  pullSecretNames,
  readCr,
  readSecret,
  readServiceAccount,
  rotateAccessKeyId,
  startOperatorEnv,
  waitForPullSecret,
  waitForReady,
  type OperatorEnv,
} from "../harness/operator-env.ts";

const registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
/** The operator's user in the API server's audit log. */
const operatorUser = "ecr-operator";

interface AuditEvent {
  user: { username: string };
  verb: string;
  requestURI: string;
  objectRef?: { resource?: string; namespace?: string; name?: string };
}

/**
 * The operator's audited requests on Secrets from the `skip`-th audit line on: of `namespace`, or of
 * the namespaces it matches.
 */
async function operatorSecretRequests(
  env: OperatorEnv,
  namespace: string | RegExp,
  skip: number,
): Promise<AuditEvent[]> {
  const lines = (await readFile(env.plane.auditLogPath, "utf8")).split("\n").filter((line) => line !== "");
  const inScope = (ns: string | undefined): boolean =>
    typeof namespace === "string" ? ns === namespace : namespace.test(ns ?? "");
  return lines
    .slice(skip)
    .map((line) => JSON.parse(line) as AuditEvent)
    .filter(
      (e) =>
        e.user.username === operatorUser &&
        e.objectRef?.resource === "secrets" &&
        inScope(e.objectRef.namespace),
    );
}

/** A read of one Secret by name: a list by name and label, as the operator's RBAC allows no get. */
const readByName = (e: AuditEvent): boolean =>
  e.verb === "list" && e.requestURI.includes("fieldSelector=metadata.name");

/** Each Secret as "namespace:resourceVersion", sorted: a rewrite changes its version. */
function versionsOf(secrets: readonly V1Secret[]): string[] {
  return secrets
    .map((secret) => `${secret.metadata?.namespace ?? ""}:${secret.metadata?.resourceVersion ?? ""}`)
    .sort();
}

/** The versions of the Secrets `owner` owns, but for the one in `except`. */
async function ownedSecretVersions(env: OperatorEnv, owner: string, except?: string): Promise<string[]> {
  const owned = await env.core.listSecretForAllNamespaces({ labelSelector: `${OWNER_LABEL}=${owner}` });
  return versionsOf(owned.items.filter((secret) => secret.metadata?.namespace !== except));
}

async function auditLines(env: OperatorEnv): Promise<number> {
  return (await readFile(env.plane.auditLogPath, "utf8")).split("\n").filter((line) => line !== "").length;
}

async function expectNotFound(promise: Promise<unknown>): Promise<void> {
  await assert.rejects(promise, (err: unknown) => (err as { code?: number }).code === 404);
}

describe("the operator against a real API server and moto", () => {
  let env: OperatorEnv;

  before(async () => {
    env = await startOperatorEnv({ audit: true, operatorUser });
  });

  after(async () => {
    await env.stop();
  });

  it("runs the original operator's example CR end to end", async () => {
    await createNamespace(env, "orig-a");
    await createNamespace(env, "orig-b");
    await createPullSecretCr(env, "original", {
      secretName: "ecr-original",
      namespaces: ["orig-a", "orig-b"],
    });
    for (const ns of ["orig-a", "orig-b"]) {
      const secret = await waitForPullSecret(env, ns, "ecr-original");
      assert.equal(secret.type, "kubernetes.io/dockerconfigjson");
      assert.equal(secret.metadata?.labels?.[MANAGED_BY_LABEL], "ecr-creds-refresher");
      assert.equal(secret.metadata.labels[OWNER_LABEL], "original");
      assert.equal(secret.metadata.ownerReferences?.[0]?.kind, "ECRPullSecret");
      const auth = dockerConfigOf(secret).auths[registry];
      assert.ok(auth !== undefined, "no entry for the token's own registry");
      assert.equal(auth.username, "AWS");
      assert.equal(auth.password, "123456789012-auth-token");
      assert.equal(Buffer.from(auth.auth, "base64").toString(), `AWS:${auth.password}`);
    }
    const cr = await waitForReady(env, "original");
    assert.deepEqual(cr.status?.namespaces, { desired: 2, synced: 2 });
    assert.equal(cr.status.synced, "2/2");
    assert.ok(cr.metadata.finalizers?.includes(FINALIZER));
    const expires = Date.parse(cr.status.tokenExpiresAt ?? "");
    // moto reports an expiry in 2015; the operator treats it as 12 h from minting.
    assert.ok(
      expires > Date.now() + 11 * 3600_000 && expires < Date.now() + 13 * 3600_000,
      `expiry ${cr.status.tokenExpiresAt ?? ""}`,
    );
  });

  it("targets globs and a label selector, minus exclusions", async () => {
    await createNamespace(env, "team-a");
    await createNamespace(env, "team-b");
    await createNamespace(env, "team-legacy");
    await createNamespace(env, "labelled", { "ecr-pull": "true" });
    await createNamespace(env, "unrelated");
    await createPullSecretCr(env, "globs", {
      secretName: "ecr-globs",
      namespaces: ["team-*"],
      namespaceSelector: { matchLabels: { "ecr-pull": "true" } },
      excludeNamespaces: ["*-legacy"],
    });
    for (const ns of ["team-a", "team-b", "labelled"]) {
      await waitForPullSecret(env, ns, "ecr-globs");
    }
    const cr = await waitForReady(env, "globs");
    assert.deepEqual(cr.status?.namespaces, { desired: 3, synced: 3 });
    await expectNotFound(readSecret(env, "team-legacy", "ecr-globs"));
    await expectNotFound(readSecret(env, "unrelated", "ecr-globs"));
  });

  it("gives a new matching namespace its Secret and ServiceAccount entry, and counts it", async () => {
    await createNamespace(env, "team-new");
    await waitForPullSecret(env, "team-new", "ecr-globs");
    // The status counts every namespace: it follows in the full pass after the one over team-new.
    await eventually(async () => {
      const cr = await readCr(env, "globs");
      assert.deepEqual(cr.status?.namespaces, { desired: 4, synced: 4 });
    });
  });

  it("removes the Secret and the entry when a namespace's labels stop matching", async () => {
    await createNamespace(env, "relabel", { "ecr-pull": "true" });
    await waitForPullSecret(env, "relabel", "ecr-globs");
    await env.core.patchNamespace({
      name: "relabel",
      body: [{ op: "remove", path: "/metadata/labels/ecr-pull" }],
    });
    await eventually(() => expectNotFound(readSecret(env, "relabel", "ecr-globs")), { timeoutMs: 30_000 });
    await eventually(async () => {
      const sa = await readServiceAccount(env, "relabel", "default");
      assert.ok(!pullSecretNames(sa).includes("ecr-globs"));
    });
  });

  it("restores a managed Secret that was deleted or edited", async () => {
    const original = await readSecret(env, "team-a", "ecr-globs");
    await env.core.deleteNamespacedSecret({ namespace: "team-a", name: "ecr-globs" });
    const restored = await waitForPullSecret(env, "team-a", "ecr-globs");
    assert.notEqual(restored.metadata?.uid, original.metadata?.uid);
    assert.deepEqual(restored.data, original.data);

    await env.core.patchNamespacedSecret({
      namespace: "team-a",
      name: "ecr-globs",
      body: [
        {
          op: "replace",
          path: "/data/.dockerconfigjson",
          value: Buffer.from('{"auths":{}}').toString("base64"),
        },
      ],
    });
    await eventually(async () => {
      const secret = await readSecret(env, "team-a", "ecr-globs");
      assert.deepEqual(secret.data, original.data);
    });
  });

  it("reads a Secret whose data someone else changed, and leaves a change to metadata alone unread", async () => {
    // The watch brings the metadata of a change alone. The Secret's managedFields tell whether
    // another client wrote its data: then the operator reads it to compare.
    const skip = await auditLines(env);
    const annotated = await env.core.patchNamespacedSecret({
      namespace: "team-a",
      name: "ecr-globs",
      body: [{ op: "add", path: "/metadata/annotations/example.com~1note", value: "kept" }],
    });
    const original = await readSecret(env, "team-b", "ecr-globs");
    // A later change to another of the CR's Secrets: once it is repaired, the reconcile that did it
    // saw the annotation, which came first on the same watch.
    await env.core.patchNamespacedSecret({
      namespace: "team-b",
      name: "ecr-globs",
      body: [{ op: "replace", path: "/data/.dockerconfigjson", value: Buffer.from("{}").toString("base64") }],
    });
    await eventually(async () => {
      const secret = await readSecret(env, "team-b", "ecr-globs");
      assert.deepEqual(secret.data, original.data);
    });
    const after = await readSecret(env, "team-a", "ecr-globs");
    assert.equal(after.metadata?.resourceVersion, annotated.metadata?.resourceVersion, "no write to team-a");
    assert.equal(after.metadata?.annotations?.["example.com/note"], "kept");
    assert.deepEqual(after.data, original.data);
    const requests = await eventually(async () => {
      const found = await operatorSecretRequests(env, "team-b", skip);
      assert.ok(
        found.some((e) => e.verb === "patch"),
        "the operator's repair of team-b's Secret is in the audit log",
      );
      return found;
    });
    assert.deepEqual(
      requests.map(
        (e) => `${e.verb} ${new URL(e.requestURI, "https://x").searchParams.get("fieldSelector") ?? ""}`,
      ),
      ["list metadata.name=ecr-globs", "patch "],
      "one read by name, then the repair",
    );
    assert.deepEqual(
      await operatorSecretRequests(env, "team-a", skip),
      [],
      "team-a's Secret was not even read",
    );
  });

  it("keeps a ServiceAccount's other imagePullSecrets when adding ours", async () => {
    await createNamespace(env, "keep");
    await eventually(() => readServiceAccount(env, "keep", "default"));
    await env.core.patchNamespacedServiceAccount({
      namespace: "keep",
      name: "default",
      body: [{ op: "add", path: "/imagePullSecrets", value: [{ name: "theirs-1" }, { name: "theirs-2" }] }],
    });
    await createPullSecretCr(env, "keep", { secretName: "ecr-keep", namespaces: ["keep"] });
    await waitForPullSecret(env, "keep", "ecr-keep");
    const sa = await readServiceAccount(env, "keep", "default");
    assert.deepEqual(pullSecretNames(sa), ["theirs-1", "theirs-2", "ecr-keep"]);
  });

  it("patches a ServiceAccount again after it is re-created", async () => {
    await env.core.deleteNamespacedServiceAccount({ namespace: "keep", name: "default" });
    // The controller manager re-creates `default`; the operator must add its entry again.
    await waitForPullSecret(env, "keep", "ecr-keep");
    const sa = await readServiceAccount(env, "keep", "default");
    assert.deepEqual(pullSecretNames(sa), ["ecr-keep"]);
  });

  it('adds the entry to every ServiceAccount, new ones included, with serviceAccounts ["*"]', async () => {
    await createNamespace(env, "all-sas");
    await env.core.createNamespacedServiceAccount({
      namespace: "all-sas",
      body: { metadata: { name: "builder" } },
    });
    await createPullSecretCr(env, "all-sas", {
      secretName: "ecr-all",
      namespaces: ["all-sas"],
      serviceAccounts: ["*"],
    });
    await waitForPullSecret(env, "all-sas", "ecr-all", "builder");
    await waitForPullSecret(env, "all-sas", "ecr-all", "default");
    await env.core.createNamespacedServiceAccount({
      namespace: "all-sas",
      body: { metadata: { name: "late" } },
    });
    await waitForPullSecret(env, "all-sas", "ecr-all", "late");
  });

  it("leaves an unmanaged Secret of the same name untouched and reports the conflict", async () => {
    await createNamespace(env, "conflict-a");
    await createNamespace(env, "conflict-b");
    const mine = await env.core.createNamespacedSecret({
      namespace: "conflict-a",
      body: { metadata: { name: "ecr-conflict" }, stringData: { note: "not yours" } },
    });
    await createPullSecretCr(env, "conflict", { secretName: "ecr-conflict", namespaces: ["conflict-*"] });
    await waitForPullSecret(env, "conflict-b", "ecr-conflict");
    const cr = await waitForReady(env, "conflict", "SecretConflict");
    assert.deepEqual(cr.status?.namespaces, { desired: 2, synced: 1 });
    assert.equal(cr.status.failures?.[0]?.namespace, "conflict-a");
    assert.equal(cr.status.failures[0].reason, "SecretConflict");
    const untouched = await readSecret(env, "conflict-a", "ecr-conflict");
    assert.equal(untouched.metadata?.resourceVersion, mine.metadata?.resourceVersion);
    assert.equal(untouched.type, "Opaque");
    const sa = await readServiceAccount(env, "conflict-a", "default");
    assert.ok(
      !pullSecretNames(sa).includes("ecr-conflict"),
      "ServiceAccount must not point at a Secret we do not manage",
    );
    // Reconciles repeat the conflict; the Events aggregate instead of piling up.
    await createNamespace(env, "conflict-c");
    await waitForPullSecret(env, "conflict-c", "ecr-conflict");
    const events = await env.core.listNamespacedEvent({ namespace: "default" });
    const conflictEvents = events.items.filter(
      (e) => e.involvedObject.name === "conflict" && e.reason === "SecretConflict",
    );
    assert.equal(conflictEvents.length, 1);
  });

  it("never caches a Secret it does not manage", async () => {
    await env.core.createNamespacedSecret({
      namespace: "team-b",
      body: { metadata: { name: "unmanaged-app-secret" }, stringData: { password: "hunter2" } },
    });
    const keys = env.operator?.cachedSecretKeys() ?? [];
    assert.ok(keys.length > 0, "the managed Secrets should be cached");
    assert.ok(!keys.includes("team-b/unmanaged-app-secret"));
    assert.ok(!keys.includes("conflict-a/ecr-conflict"));
    assert.ok(
      !keys.some((key) => key.startsWith(`${operatorNamespace}/`)),
      "credentials are read by name, not cached with managed Secrets",
    );
  });

  it("mints one token for three CRs sharing credentials and region across many namespaces", async () => {
    await env.stopOperator();
    env.aws.reset();
    for (let i = 0; i < 12; i++) {
      await createNamespace(env, `shared-${i}`);
    }
    for (const name of ["shared-1", "shared-2", "shared-3"]) {
      await createPullSecretCr(env, name, {
        secretName: `ecr-${name}`,
        namespaces: ["shared-*"],
        // A region no earlier CR used, so no token can be adopted from existing Secrets.
        region: "eu-central-1",
      });
    }
    await env.startOperator();
    for (const name of ["shared-1", "shared-2", "shared-3"]) {
      const cr = await waitForReady(env, name);
      assert.deepEqual(cr.status?.namespaces, { desired: 12, synced: 12 });
    }
    assert.equal(env.aws.count("ecr:GetAuthorizationToken"), 1);
  });

  it("adopts the tokens in its Secrets after a restart: no AWS call, no rewrite", async () => {
    const before = await env.core.listSecretForAllNamespaces({
      labelSelector: "ecr-creds-refresher.io/owner=shared-1",
    });
    assert.equal(before.items.length, 12);
    await env.stopOperator();
    env.aws.reset();
    const skip = await auditLines(env);
    await env.startOperator();
    await createNamespace(env, "shared-late");
    const late = await waitForPullSecret(env, "shared-late", "ecr-shared-1");
    // It lists its Secrets by their metadata, and reads one whole per content, not each of the 36.
    const reads = (await operatorSecretRequests(env, /^shared-/, skip)).filter(readByName);
    assert.ok(reads.length <= 3, `${String(reads.length)} Secrets read one by one`);
    assert.deepEqual(late.data, before.items[0]?.data, "the new namespace gets the adopted token");
    assert.deepEqual(await ownedSecretVersions(env, "shared-1", "shared-late"), versionsOf(before.items));
    assert.equal(env.aws.count("ecr:GetAuthorizationToken"), 0);
  });

  it("adopts the tokens in Secrets an older release wrote, listing them once", async () => {
    const namespaces = Array.from({ length: 60 }, (_, i) => `legacy-${String(i)}`);
    for (const name of namespaces) await createNamespace(env, name);
    await createPullSecretCr(env, "legacy", { secretName: "ecr-legacy", namespaces: ["legacy-*"] });
    await waitForReady(env, "legacy");
    await env.stopOperator();
    // As a release that wrote no content digest left them.
    for (const namespace of namespaces) {
      await env.core.patchNamespacedSecret(
        {
          namespace,
          name: "ecr-legacy",
          body: [{ op: "remove", path: "/metadata/annotations/ecr-creds-refresher.io~1content-digest" }],
        },
        setHeaderOptions("Content-Type", PatchStrategy.JsonPatch),
      );
    }
    const before = await ownedSecretVersions(env, "legacy");
    env.aws.reset();
    const skip = await auditLines(env);
    await env.startOperator();
    await createNamespace(env, "legacy-late");
    await waitForPullSecret(env, "legacy-late", "ecr-legacy");
    const requests = await operatorSecretRequests(env, /^legacy-/, skip);
    assert.deepEqual(requests.filter(readByName), [], "none read one by one");
    const lists = (await operatorSecretRequests(env, /^$/, skip)).filter((e) =>
      decodeURIComponent(e.requestURI).includes("ecr-creds-refresher.io/owner=legacy"),
    );
    assert.equal(lists.length, 1, "one list of the CR's own Secrets");
    assert.deepEqual(await ownedSecretVersions(env, "legacy", "legacy-late"), before, "no Secret rewritten");
    assert.equal(env.aws.count("ecr:GetAuthorizationToken"), 0);
  });

  it("picks up rotated credentials without a restart", async () => {
    env.aws.reset();
    // The tokens minted with the new key hold a password of their own (moto's depend on the account
    // only), so the Secret shows the new mint whatever second it lands in.
    const rotatedPassword = "token-of-the-rotated-key";
    env.aws.setEcrTokenPassword(rotatedPassword);
    await rotateAccessKeyId(env, "AKIAROTATEDKEY000002");
    await eventually(() => {
      const signedBy = env.aws
        .calls()
        .filter((c) => c.operation === "ecr:GetAuthorizationToken")
        .map((c) => c.accessKeyId);
      // One new token per region in use (eu-west-1 and eu-central-1), all with the rotated key.
      assert.ok(signedBy.length >= 1 && signedBy.length <= 2, `${signedBy.length} calls`);
      assert.deepEqual(new Set(signedBy), new Set(["AKIAROTATEDKEY000002"]));
    });
    await eventually(async () => {
      const after = dockerConfigOf(await readSecret(env, "shared-0", "ecr-shared-1"));
      assert.deepEqual(
        Object.values(after.auths).map((entry) => entry.password),
        Object.keys(after.auths).map(() => rotatedPassword),
      );
    });
    const previous = staticSource(motoDefaultCredentials);
    assert.equal(
      env.operator?.tokens.peek(previous, { kind: "private", region: "eu-west-1" }),
      undefined,
      "the token of the keys rotated away is dropped",
    );
  });

  it("keeps existing Secrets and reports the failure when minting fails", async () => {
    const before = await readSecret(env, "shared-0", "ecr-shared-2");
    env.aws.setFault("error");
    try {
      await rotateAccessKeyId(env, "AKIAFAILINGKEY000003");
      const cr = await waitForReady(env, "shared-2", "TokenRefreshFailed");
      assert.equal(cr.status?.conditions?.find((c) => c.type === "Ready")?.status, "False");
      const after = await readSecret(env, "shared-0", "ecr-shared-2");
      assert.deepEqual(after.data, before.data);
      assert.equal(after.metadata?.resourceVersion, before.metadata?.resourceVersion);
      await eventually(async () => {
        const events = await env.core.listNamespacedEvent({ namespace: "default" });
        assert.ok(
          events.items.some((e) => e.reason === "TokenRefreshFailed" && e.involvedObject.name === "shared-2"),
        );
      });
    } finally {
      env.aws.setFault("none");
    }
    await waitForReady(env, "shared-2", "Synced", { timeoutMs: 60_000 });
  });

  it("removes exactly what it added when the CR is deleted", async () => {
    await deleteCr(env, "keep");
    await eventually(() => expectNotFound(readSecret(env, "keep", "ecr-keep")));
    await eventually(() => expectNotFound(readCr(env, "keep")));
    await env.core.patchNamespacedServiceAccount({
      namespace: "all-sas",
      name: "builder",
      body: [{ op: "add", path: "/imagePullSecrets/-", value: { name: "theirs" } }],
    });
    await deleteCr(env, "all-sas");
    await eventually(() => expectNotFound(readCr(env, "all-sas")));
    for (const sa of ["default", "late"]) {
      assert.deepEqual(pullSecretNames(await readServiceAccount(env, "all-sas", sa)), []);
    }
    assert.deepEqual(pullSecretNames(await readServiceAccount(env, "all-sas", "builder")), ["theirs"]);
    await expectNotFound(readSecret(env, "all-sas", "ecr-all"));
  });

  it("lets each CR deleted the moment it was made go, its status write racing the deletion", async () => {
    // The operator's status write can land after the deletion, its echo queueing nothing: removing
    // the finalizer then conflicts, and only a retry lets the CR go.
    for (let i = 0; i < 10; i++) {
      const name = `fleeting-${String(i)}`;
      await createPullSecretCr(env, name, {
        secretName: name,
        namespaces: ["no-such-namespace"],
        suspend: true,
      });
      await deleteCr(env, name);
      await eventually(() => expectNotFound(readCr(env, name)), {
        timeoutMs: 10_000,
        message: `${name} deleted`,
      });
    }
  });

  it("skips a terminating namespace quietly", async () => {
    await createNamespace(env, "term-live");
    await createNamespace(env, "term-dying");
    await env.core.createNamespacedConfigMap({
      namespace: "term-dying",
      body: { metadata: { name: "hold", finalizers: ["example.com/hold"] } },
    });
    await env.core.deleteNamespace({ name: "term-dying" });
    await eventually(async () => {
      const ns = await env.core.readNamespace({ name: "term-dying" });
      assert.equal(ns.status?.phase, "Terminating");
    });
    await createPullSecretCr(env, "term", { secretName: "ecr-term", namespaces: ["term-*"] });
    await waitForPullSecret(env, "term-live", "ecr-term");
    const cr = await waitForReady(env, "term");
    assert.deepEqual(cr.status?.namespaces, { desired: 1, synced: 1 });
    assert.deepEqual(cr.status.failures, []);
    await expectNotFound(readSecret(env, "term-dying", "ecr-term"));
  });

  it("lets garbage collection remove the Secrets of a CR deleted while the operator is down, and removes its entries on return", async () => {
    await createNamespace(env, "gc-one");
    await createPullSecretCr(env, "gc", { secretName: "ecr-gc", namespaces: ["gc-one"] });
    await waitForPullSecret(env, "gc-one", "ecr-gc");
    await env.stopOperator();
    await deleteCr(env, "gc");
    // Forced deletion: the finalizer is removed by hand, as when the operator is uninstalled.
    await env.objects.patchClusterCustomObject({
      group: "ecr-creds-refresher.io",
      version: "v1alpha1",
      plural: "ecrpullsecrets",
      name: "gc",
      body: [{ op: "remove", path: "/metadata/finalizers" }],
    });
    await eventually(() => expectNotFound(readSecret(env, "gc-one", "ecr-gc")), { timeoutMs: 60_000 });
    assert.ok(pullSecretNames(await readServiceAccount(env, "gc-one", "default")).includes("ecr-gc"));
    await env.startOperator();
    await eventually(async () => {
      assert.deepEqual(pullSecretNames(await readServiceAccount(env, "gc-one", "default")), []);
    });
  });

  it("never puts a secret in a log line, an Event or a status", async () => {
    const password = "123456789012-auth-token";
    const secrets = [
      motoDefaultCredentials.secretAccessKey,
      password,
      Buffer.from(`AWS:${password}`).toString("base64"),
      Buffer.from(password).toString("base64"),
    ];
    const events = await env.core.listEventForAllNamespaces();
    const crs: unknown = await env.objects.listClusterCustomObject({
      group: "ecr-creds-refresher.io",
      version: "v1alpha1",
      plural: "ecrpullsecrets",
    });
    const captured = [...env.logs, JSON.stringify(events.items), JSON.stringify(crs)].join("\n");
    assert.ok(env.logs.length > 50, `only ${env.logs.length} log lines captured`);
    for (const secret of secrets) {
      assert.ok(!captured.includes(secret), "a secret appeared in logs, Events or status");
    }
  });
});
