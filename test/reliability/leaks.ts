// The security scan every reliability file ends with: no ECR token, password, AWS secret key,
// session token or webhook private key in any log line, Event, ECRPullSecret status or recorded
// error message.
import assert from "node:assert/strict";
import type { CoreV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { GROUP, PLURAL, VERSION } from "../../src/api/types.ts";
import { motoDefaultCredentials } from "../harness/moto.ts";
import { errorLines } from "./fixtures.ts";
import { readResults, type Figures } from "./results.ts";

/** The password in every token moto mints (base64 of "AWS:<account>-auth-token"). */
export const motoTokenPassword = "123456789012-auth-token";

/** The forms a secret value could leak in: as is, base64, and inside a docker auth string. */
function forms(secret: string): string[] {
  const b64 = (text: string): string => Buffer.from(text).toString("base64");
  return [secret, b64(secret), b64(`AWS:${secret}`)];
}

/** Secret values the suites use; `extra` adds the secret keys and session tokens a file made up. */
export function secretValues(extra: readonly string[] = []): string[] {
  return [motoTokenPassword, motoDefaultCredentials.secretAccessKey, ...extra];
}

/**
 * The start of the body of each private key in the webhook's own Secret (its CA's and its serving
 * certificate's), for the scan; empty when the operator has not issued them.
 */
export async function webhookKeyFragments(
  core: CoreV1Api,
  namespace: string,
  name: string,
): Promise<string[]> {
  const secret = await core.readNamespacedSecret({ namespace, name });
  return ["ca.key", "tls.key"]
    .map((key) =>
      Buffer.from(secret.data?.[key] ?? "", "base64")
        .toString()
        .replace(/-----[A-Z ]+-----/g, "")
        .replace(/\s+/g, "")
        .slice(0, 64),
    )
    .filter((fragment) => fragment.length === 64);
}

export interface LeakScanInput {
  core: CoreV1Api;
  objects: CustomObjectsApi;
  /** Log lines of in-process operators and operator processes. */
  logs: readonly string[];
  secrets: readonly string[];
}

export interface LeakScan {
  logLines: number;
  events: number;
  statuses: number;
  /** Where a secret showed up: "<source>: secret #<index>", never the value. */
  leaks: string[];
}

/** A scan's counts as scenario figures, in the order the report lists them. */
function scanFigures(scan: LeakScan): Record<string, number> {
  return { logLines: scan.logLines, events: scan.events, statuses: scan.statuses, leaks: scan.leaks.length };
}

async function scanForLeaks(input: LeakScanInput): Promise<LeakScan> {
  const events = (await input.core.listEventForAllNamespaces()).items;
  const crs = (await input.objects.listClusterCustomObject({
    group: GROUP,
    version: VERSION,
    plural: PLURAL,
  })) as {
    items: { status?: unknown }[];
  };
  const errors = readResults()
    .map((r) => r.error ?? "")
    .join("\n");
  const sources: [string, string][] = [
    ["logs", input.logs.join("\n")],
    ["events", JSON.stringify(events)],
    ["statuses", JSON.stringify(crs.items.map((cr) => cr.status ?? {}))],
    ["recorded errors", errors],
  ];
  const leaks: string[] = [];
  input.secrets.forEach((secret, index) => {
    for (const form of forms(secret)) {
      for (const [source, text] of sources) {
        if (text.includes(form)) leaks.push(`${source}: secret #${index}`);
      }
    }
  });
  return {
    logLines: input.logs.length,
    events: events.length,
    statuses: crs.items.filter((cr) => cr.status !== undefined).length,
    leaks: [...new Set(leaks)],
  };
}

/** The scan as a scenario's body: its counts and the error log lines go into `figures`; any leak fails it. */
export async function assertNoLeaks(figures: Figures, input: LeakScanInput): Promise<LeakScan> {
  const scan = await scanForLeaks(input);
  Object.assign(figures, scanFigures(scan));
  figures.errorLogLines = errorLines(input.logs).length;
  assert.deepEqual(scan.leaks, []);
  return scan;
}
