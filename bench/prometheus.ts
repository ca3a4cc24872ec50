// Reading Prometheus text exposition: the API server's apiserver_request_total and the operator's
// own metrics, as samples that can be summed and subtracted.

export interface Sample {
  name: string;
  labels: Readonly<Record<string, string>>;
  value: number;
}

const sampleLine = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const labelPair = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** The samples of the metrics in `names` (all metrics when omitted). */
export function parseSamples(text: string, names?: ReadonlySet<string>): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line.length === 0) continue;
    const match = sampleLine.exec(line);
    if (match === null) continue;
    const [, name = "", rawLabels = "", rawValue = ""] = match;
    if (names !== undefined && !names.has(name)) continue;
    const labels: Record<string, string> = {};
    for (const pair of rawLabels.matchAll(labelPair)) {
      labels[pair[1] ?? ""] = pair[2] ?? "";
    }
    samples.push({ name, labels, value: Number(rawValue) });
  }
  return samples;
}

/** Sum of the samples named `name` whose labels include every pair in `where`. */
export function sumOf(
  samples: readonly Sample[],
  name: string,
  where: Readonly<Record<string, string>> = {},
): number {
  let total = 0;
  for (const sample of samples) {
    if (sample.name !== name) continue;
    if (Object.entries(where).every(([key, value]) => sample.labels[key] === value)) total += sample.value;
  }
  return total;
}

/** apiserver_request_total as counts by "VERB resource[/subresource]". */
export type RequestCounts = Record<string, number>;

export function requestCounts(metricsText: string): RequestCounts {
  const counts: RequestCounts = {};
  for (const sample of parseSamples(metricsText, new Set(["apiserver_request_total"]))) {
    const { verb = "", resource = "", subresource = "" } = sample.labels;
    const key = `${verb} ${resource}${subresource === "" ? "" : `/${subresource}`}`;
    counts[key] = (counts[key] ?? 0) + sample.value;
  }
  return counts;
}

export function subtractCounts(after: RequestCounts, before: RequestCounts): RequestCounts {
  const delta: RequestCounts = {};
  for (const [key, value] of Object.entries(after)) {
    const diff = value - (before[key] ?? 0);
    if (diff !== 0) delta[key] = diff;
  }
  return delta;
}

export const writeVerbs: ReadonlySet<string> = new Set([
  "POST",
  "PUT",
  "PATCH",
  "DELETE",
  "APPLY",
  "DELETECOLLECTION",
]);
export const readVerbs: ReadonlySet<string> = new Set(["GET", "LIST"]);

/** Requests in `counts` on `resource` (no subresource) with a verb in `verbs`. */
export function countOf(counts: RequestCounts, resource: string, verbs: ReadonlySet<string>): number {
  let total = 0;
  for (const [key, value] of Object.entries(counts)) {
    const [verb = "", target = ""] = key.split(" ");
    if (target === resource && verbs.has(verb)) total += value;
  }
  return total;
}
