// Where the operator's V8 heap goes, from a heap snapshot (`npm run bench -- --profile <dir>` writes
// them): self sizes by kind and by constructor, and retained sizes (dominator tree, weak edges
// ignored) of the informer stores by collection and of other named parts.
//   node bench/heap-snapshot.ts <file.heapsnapshot> [--json]
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";

interface RawSnapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[], ...unknown[]];
      edge_fields: string[];
      edge_types: [string[], ...unknown[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

export interface HeapSummary {
  total_mb: number;
  /** Self sizes by V8 node type (code, string, object, array, closure, hidden, ...). */
  by_type_mb: Record<string, number>;
  /** The largest constructors by self size. */
  top_constructors: { name: string; count: number; self_mb: number }[];
  /** Retained size of each informer's object store, by the informer's collection name. */
  informer_stores_mb: Record<string, number>;
  /** Retained sizes of the largest single objects of some classes, by class name. */
  retained_mb: Record<string, number>;
}

const mb = (bytes: number): number => Math.round((bytes / 1048576) * 100) / 100;

/** Classes whose instances' retained sizes are reported, summed over instances. */
const namedParts = [
  "Operator",
  "ClusterCache",
  "Workqueue",
  "Informer",
  "ObjectStore",
  "StringInterner",
  "Registry",
  "Metrics",
  "ECRClient",
  "ECRPUBLICClient",
  "TokenCache",
  "KubeClient",
  "Agent",
];

export function summarize(raw: RawSnapshot): HeapSummary {
  const meta = raw.snapshot.meta;
  const nf = meta.node_fields.length;
  const ef = meta.edge_fields.length;
  const nodeTypes = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const [typeOff, nameOff, sizeOff, edgeCountOff] = ["type", "name", "self_size", "edge_count"].map((f) =>
    meta.node_fields.indexOf(f),
  ) as [number, number, number, number];
  const [edgeTypeOff, edgeNameOff, toOff] = ["type", "name_or_index", "to_node"].map((f) =>
    meta.edge_fields.indexOf(f),
  ) as [number, number, number];
  const weak = edgeTypes.indexOf("weak");
  const elementEdge = edgeTypes.indexOf("element");
  const hiddenEdge = edgeTypes.indexOf("hidden");
  const nodes = raw.nodes;
  const edges = raw.edges;
  const count = nodes.length / nf;
  const firstEdge = new Uint32Array(count + 1);
  for (let i = 0, e = 0; i < count; i++) {
    firstEdge[i] = e;
    e += (nodes[i * nf + edgeCountOff] ?? 0) * ef;
    firstEdge[i + 1] = e;
  }
  const self = (i: number): number => nodes[i * nf + sizeOff] ?? 0;
  const typeOf = (i: number): string => nodeTypes[nodes[i * nf + typeOff] ?? 0] ?? "?";
  const nameOf = (i: number): string => raw.strings[nodes[i * nf + nameOff] ?? 0] ?? "";
  const edgeName = (e: number): string => {
    const t = edges[e + edgeTypeOff];
    const n = edges[e + edgeNameOff] ?? 0;
    return t === elementEdge || t === hiddenEdge ? String(n) : (raw.strings[n] ?? "");
  };
  const followed = (e: number): boolean => edges[e + edgeTypeOff] !== weak;
  const target = (e: number): number => (edges[e + toOff] ?? 0) / nf;

  // Depth-first post order from the root (node 0), iteratively.
  const order = new Int32Array(count).fill(-1);
  const post: number[] = [];
  const stack: number[] = [0];
  const cursor = new Uint32Array(count);
  const seen = new Uint8Array(count);
  seen[0] = 1;
  for (let i = 0; i < count; i++) cursor[i] = firstEdge[i] ?? 0;
  while (stack.length > 0) {
    const n = stack[stack.length - 1] ?? 0;
    const end = firstEdge[n + 1] ?? 0;
    let pushed = false;
    while ((cursor[n] ?? 0) < end) {
      const e = cursor[n] ?? 0;
      cursor[n] = e + ef;
      if (!followed(e)) continue;
      const t = target(e);
      if (seen[t] === 0) {
        seen[t] = 1;
        stack.push(t);
        pushed = true;
        break;
      }
    }
    if (!pushed) {
      stack.pop();
      order[n] = post.length;
      post.push(n);
    }
  }
  // Predecessors of reachable nodes.
  const predCount = new Uint32Array(count + 1);
  for (let n = 0; n < count; n++) {
    if (order[n] === -1) continue;
    for (let e = firstEdge[n] ?? 0; e < (firstEdge[n + 1] ?? 0); e += ef) {
      if (followed(e)) predCount[target(e) + 1] = (predCount[target(e) + 1] ?? 0) + 1;
    }
  }
  for (let i = 0; i < count; i++) predCount[i + 1] = (predCount[i + 1] ?? 0) + (predCount[i] ?? 0);
  const preds = new Uint32Array(predCount[count] ?? 0);
  const fill = predCount.slice(0, count);
  for (let n = 0; n < count; n++) {
    if (order[n] === -1) continue;
    for (let e = firstEdge[n] ?? 0; e < (firstEdge[n + 1] ?? 0); e += ef) {
      if (!followed(e)) continue;
      const t = target(e);
      preds[fill[t] ?? 0] = n;
      fill[t] = (fill[t] ?? 0) + 1;
    }
  }
  // Immediate dominators (Cooper, Harvey and Kennedy), indexed by post order.
  const root = post.length - 1;
  const idom = new Int32Array(post.length).fill(-1);
  idom[root] = root;
  const intersect = (a: number, b: number): number => {
    while (a !== b) {
      while (a < b) a = idom[a] ?? root;
      while (b < a) b = idom[b] ?? root;
    }
    return a;
  };
  for (let changed = true; changed;) {
    changed = false;
    for (let p = root - 1; p >= 0; p--) {
      const n = post[p] ?? 0;
      let next = -1;
      for (let i = predCount[n] ?? 0; i < (predCount[n + 1] ?? 0); i++) {
        const q = order[preds[i] ?? 0] ?? -1;
        if (q === -1 || idom[q] === -1) continue;
        next = next === -1 ? q : intersect(q, next);
      }
      if (next !== -1 && idom[p] !== next) {
        idom[p] = next;
        changed = true;
      }
    }
  }
  const retained = new Float64Array(post.length);
  for (let p = 0; p < post.length; p++) retained[p] = self(post[p] ?? 0);
  for (let p = 0; p < root; p++) {
    const d = idom[p] ?? -1;
    if (d >= 0 && d !== p) retained[d] = (retained[d] ?? 0) + (retained[p] ?? 0);
  }
  const retainedOf = (n: number): number => {
    const p = order[n] ?? -1;
    return p === -1 ? 0 : (retained[p] ?? 0);
  };

  const byType: Record<string, number> = {};
  const byConstructor = new Map<string, { count: number; self: number }>();
  const parts: Record<string, number> = {};
  const stores: Record<string, number> = {};
  let total = 0;
  for (let n = 0; n < count; n++) {
    if (order[n] === -1) continue;
    const size = self(n);
    total += size;
    const type = typeOf(n);
    byType[type] = (byType[type] ?? 0) + size;
    const name = type === "object" || type === "closure" || type === "native" ? nameOf(n) : `(${type})`;
    const entry = byConstructor.get(name) ?? { count: 0, self: 0 };
    entry.count += 1;
    entry.self += size;
    byConstructor.set(name, entry);
    if (type !== "object") continue;
    if (namedParts.includes(nameOf(n))) parts[nameOf(n)] = (parts[nameOf(n)] ?? 0) + retainedOf(n);
    if (nameOf(n) === "Informer") {
      let informerName = "";
      let store = -1;
      for (let e = firstEdge[n] ?? 0; e < (firstEdge[n + 1] ?? 0); e += ef) {
        const label = edgeName(e);
        if (label === "#name") informerName = nameOf(target(e));
        if (label === "#store") store = target(e);
      }
      if (store >= 0) stores[informerName] = (stores[informerName] ?? 0) + retainedOf(store);
    }
  }
  return {
    total_mb: mb(total),
    by_type_mb: Object.fromEntries(
      Object.entries(byType)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => [k, mb(v)]),
    ),
    top_constructors: [...byConstructor.entries()]
      .sort((a, b) => b[1].self - a[1].self)
      .slice(0, 25)
      .map(([name, v]) => ({ name, count: v.count, self_mb: mb(v.self) })),
    informer_stores_mb: Object.fromEntries(Object.entries(stores).map(([k, v]) => [k, mb(v)])),
    retained_mb: Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, mb(v)])),
  };
}

if (import.meta.main) {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { json: { type: "boolean", default: false } },
  });
  const [file] = positionals;
  if (file === undefined) throw new Error("usage: node bench/heap-snapshot.ts <file.heapsnapshot> [--json]");
  const summary = summarize(JSON.parse(await readFile(file, "utf8")) as RawSnapshot);
  if (values.json) {
    console.log(JSON.stringify(summary, null, 2));
  } else {
    console.log(`total ${summary.total_mb} MiB`);
    console.log("by type:", summary.by_type_mb);
    console.log("informer stores (retained):", summary.informer_stores_mb);
    console.log("retained:", summary.retained_mb);
    console.table(summary.top_constructors);
  }
}
