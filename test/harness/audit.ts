// Reads the API server's audit log (JSON lines), to see who did what: e.g. that a standby
// replica or a dry run never wrote, or which RBAC rules an identity used.
import { existsSync, readFileSync } from "node:fs";

export interface AuditEvent {
  user: string;
  verb: string;
  resource: string;
  subresource: string | undefined;
  namespace: string | undefined;
  name: string | undefined;
  code: number | undefined;
  /** When the request completed (stageTimestamp). */
  at: number;
  /** When the API server received the request. */
  receivedAt: number;
  /** Path and query, e.g. "/api/v1/secrets?labelSelector=...&watch=true". */
  uri: string;
}

interface RawAuditEvent {
  stage?: string;
  verb?: string;
  user?: { username?: string };
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string };
  responseStatus?: { code?: number };
  stageTimestamp?: string;
  requestReceivedTimestamp?: string;
  requestURI?: string;
}

export function readAuditLog(path: string): AuditEvent[] {
  if (!existsSync(path)) {
    return [];
  }
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => line.trim().length > 0)
    .map((line) => JSON.parse(line) as RawAuditEvent)
    .filter((e) => e.stage === "ResponseComplete")
    .map((e) => ({
      user: e.user?.username ?? "",
      verb: e.verb ?? "",
      resource: e.objectRef?.resource ?? "",
      subresource: e.objectRef?.subresource,
      namespace: e.objectRef?.namespace,
      name: e.objectRef?.name,
      code: e.responseStatus?.code,
      at: Date.parse(e.stageTimestamp ?? ""),
      receivedAt: Date.parse(e.requestReceivedTimestamp ?? ""),
      uri: e.requestURI ?? "",
    }));
}

export const writeVerbs = new Set(["create", "update", "patch", "delete", "deletecollection"]);

/** Write requests by `user`, optionally limited to some resources. */
export function writesBy(
  events: readonly AuditEvent[],
  user: string,
  resources?: readonly string[],
): AuditEvent[] {
  return events.filter(
    (e) =>
      e.user === user &&
      writeVerbs.has(e.verb) &&
      (resources === undefined || resources.includes(e.resource)),
  );
}
