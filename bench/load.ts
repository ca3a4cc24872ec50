// Bulk set-up through the driver's client: namespaces and unmanaged Secrets created with bounded
// concurrency, transient failures retried a few times.
import { randomBytes } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { mapLimit } from "../src/kube/concurrency.ts";
import { ApiError, type ApiClient } from "./api-client.ts";

const maxAttempts = 4;

function transient(err: unknown): boolean {
  return !(err instanceof ApiError) || err.status === 429 || err.status >= 500;
}

async function createWithRetry(api: ApiClient, path: string, body: object): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await api.json("POST", path, body);
      return;
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) return;
      if (attempt >= maxAttempts || !transient(err)) throw err;
      await delay(200 * attempt);
    }
  }
}

async function createAll(
  api: ApiClient,
  concurrency: number,
  items: readonly { path: string; body: object }[],
): Promise<void> {
  const results = await mapLimit(items, concurrency, (item) => createWithRetry(api, item.path, item.body));
  const failed = results.filter((r) => r.status === "rejected");
  if (failed.length > 0) {
    const first = failed[0];
    const reason = first?.status === "rejected" ? String(first.reason) : "";
    throw new Error(`${failed.length} of ${items.length} creates failed; first: ${reason}`);
  }
}

export function benchNamespaces(count: number, prefix = "bench-"): string[] {
  const width = String(Math.max(count - 1, 0)).length;
  return Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(Math.max(width, 4), "0")}`);
}

export async function createNamespaces(
  api: ApiClient,
  names: readonly string[],
  concurrency: number,
): Promise<void> {
  await createAll(
    api,
    concurrency,
    names.map((name) => ({ path: "/api/v1/namespaces", body: { metadata: { name } } })),
  );
}

/** A ServiceAccount of that name in each namespace; one that exists already counts as created. */
export async function createServiceAccounts(
  api: ApiClient,
  namespaces: readonly string[],
  name: string,
  concurrency: number,
): Promise<void> {
  await createAll(
    api,
    concurrency,
    namespaces.map((namespace) => ({
      path: `/api/v1/namespaces/${namespace}/serviceaccounts`,
      body: { metadata: { name } },
    })),
  );
}

/**
 * `count` Opaque Secrets of about 2 KiB each, spread round-robin over `namespaces`, with no label
 * the operator selects on.
 */
export async function createUnmanagedSecrets(
  api: ApiClient,
  namespaces: readonly string[],
  count: number,
  concurrency: number,
): Promise<void> {
  const payload = randomBytes(1536).toString("base64");
  const items = Array.from({ length: count }, (_, i) => {
    const namespace = namespaces[i % namespaces.length] ?? "default";
    return {
      path: `/api/v1/namespaces/${namespace}/secrets`,
      body: {
        metadata: { name: `app-config-${i}`, labels: { app: "bench-unmanaged" } },
        type: "Opaque",
        data: { "config.bin": payload },
      },
    };
  });
  await createAll(api, concurrency, items);
}
