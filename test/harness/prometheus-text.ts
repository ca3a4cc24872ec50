// Reading Prometheus text expositions (the operator's /metrics, the API server's) in tests.

/** Reads one metric sample's value from a Prometheus text exposition, or 0 when absent. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-z_]+)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (match?.[1] !== name) continue;
    const present = (match[3] ?? "").split(",");
    if (wanted.every((w) => present.includes(w))) total += Number(match[4]);
  }
  return total;
}
