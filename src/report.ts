// Human and machine output of `once` and `--dry-run`: per-CR summaries and planned changes.
import type { ReconcileReport } from "./controller/reconciler.ts";
import type { PlannedChange } from "./controller/writer.ts";

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n") + "\n";
}

export function formatSummary(reports: readonly ReconcileReport[], format: "table" | "json"): string {
  const rows = reports.map((r) => {
    const ready = r.status.conditions?.find((c) => c.type === "Ready");
    return {
      name: r.name,
      ready: ready?.status ?? "Unknown",
      reason: ready?.reason ?? "",
      synced: r.status.synced ?? "",
      expires: r.status.tokenExpiresAt ?? "",
      message: ready?.message ?? "",
    };
  });
  if (format === "json") {
    return JSON.stringify({ ecrPullSecrets: rows }, null, 2) + "\n";
  }
  if (rows.length === 0) {
    return "no ECRPullSecrets found\n";
  }
  return table(
    ["NAME", "READY", "REASON", "SYNCED", "EXPIRES", "MESSAGE"],
    rows.map((r) => [r.name, r.ready, r.reason, r.synced, r.expires, r.message]),
  );
}

export function formatChanges(changes: readonly PlannedChange[], format: "table" | "json"): string {
  if (format === "json") {
    return JSON.stringify({ plannedChanges: changes }, null, 2) + "\n";
  }
  if (changes.length === 0) {
    return "dry run: no changes needed\n";
  }
  return (
    "dry run: these changes would be made\n" +
    table(
      ["ACTION", "KIND", "NAMESPACE", "NAME", "DETAIL"],
      changes.map((c) => [c.action, c.kind, c.namespace, c.name, c.detail]),
    )
  );
}
