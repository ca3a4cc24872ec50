// The API server's audit log (JSON lines, one per request) read between two offsets, to count
// the requests one user made while a scenario ran. The API server writes it in blocking mode, so a
// request that has been answered is already in the file.
import { open, stat } from "node:fs/promises";

export interface AuditEntry {
  user: string;
  /** Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection. */
  verb: string;
  /** resource or resource/subresource, e.g. "secrets", "ecrpullsecrets/status". */
  resource: string;
  namespace: string | undefined;
  code: number | undefined;
  /** Path and query as the client sent them, e.g. "/api/v1/namespaces?limit=500&resourceVersion=0". */
  requestURI: string;
  /** When the API server received the request (ms since the epoch). */
  receivedAt: number;
}

export const auditWriteVerbs: ReadonlySet<string> = new Set([
  "create",
  "update",
  "patch",
  "delete",
  "deletecollection",
]);

interface RawAuditEvent {
  stage?: string;
  verb?: string;
  requestURI?: string;
  requestReceivedTimestamp?: string;
  user?: { username?: string };
  objectRef?: { resource?: string; subresource?: string; namespace?: string };
  responseStatus?: { code?: number };
}

export class AuditLog {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  /** The current end of the log: pass it to `entries` as a window's start or end. */
  async mark(): Promise<number> {
    try {
      return (await stat(this.path)).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0;
      throw err;
    }
  }

  /** Entries written between two marks (to the current end when `to` is omitted). */
  async entries(from: number, to?: number): Promise<AuditEntry[]> {
    const end = to ?? (await this.mark());
    if (end <= from) return [];
    const file = await open(this.path, "r");
    try {
      const buffer = Buffer.alloc(end - from);
      let read = 0;
      for (let attempts = 0; read < buffer.length && attempts < 1000; attempts++) {
        const { bytesRead } = await file.read(buffer, read, buffer.length - read, from + read);
        if (bytesRead === 0) break;
        read += bytesRead;
      }
      const text = buffer.subarray(0, read).toString("utf8");
      const entries: AuditEntry[] = [];
      for (const line of text.split("\n")) {
        if (!line.startsWith("{")) continue;
        let event: RawAuditEvent;
        try {
          event = JSON.parse(line) as RawAuditEvent;
        } catch {
          // A line cut at the window's edge.
          continue;
        }
        // Long-running requests (watches) are logged when the response starts and again when it ends.
        if (event.stage === "ResponseStarted") continue;
        const ref = event.objectRef;
        entries.push({
          user: event.user?.username ?? "",
          verb: event.verb ?? "",
          resource:
            ref?.resource === undefined
              ? ""
              : ref.subresource === undefined
                ? ref.resource
                : `${ref.resource}/${ref.subresource}`,
          namespace: ref?.namespace,
          code: event.responseStatus?.code,
          requestURI: event.requestURI ?? "",
          receivedAt: Date.parse(event.requestReceivedTimestamp ?? ""),
        });
      }
      return entries;
    } finally {
      await file.close();
    }
  }
}

/** Counts by resource of `user`'s requests whose verb is in `verbs`. */
export function countByResource(
  entries: readonly AuditEntry[],
  user: string,
  verbs: ReadonlySet<string>,
): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const entry of entries) {
    if (entry.user !== user || !verbs.has(entry.verb)) continue;
    counts[entry.resource] = (counts[entry.resource] ?? 0) + 1;
  }
  return counts;
}

export function total(counts: Readonly<Record<string, number>>): number {
  return Object.values(counts).reduce((sum, n) => sum + n, 0);
}
