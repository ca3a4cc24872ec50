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

export interface ExposedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Every sample of a text exposition, with its label values unescaped. */
export function exposedSamples(text: string): ExposedSample[] {
  const samples: ExposedSample[] = [];
  for (const line of text.split("\n")) {
    const head = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{)?/.exec(line);
    if (head === null || line.startsWith("#")) continue;
    const [, name = ""] = head;
    const labels: Record<string, string> = {};
    let rest = line.slice(head[0].length);
    if (head[2] !== undefined) {
      const pair = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/;
      for (let match = pair.exec(rest); match !== null; match = pair.exec(rest)) {
        labels[match[1] ?? ""] = (match[2] ?? "").replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
        rest = rest.slice(match[0].length);
      }
      if (!rest.startsWith("}")) throw new Error(`malformed labels in exposition line: ${line}`);
      rest = rest.slice(1);
    }
    samples.push({ name, labels, value: Number(rest.trim().split(/\s+/)[0]) });
  }
  return samples;
}
