// Renders the ECRPullSecret field reference (docs/reference.md) from the CRD schema in src/api/crd.ts,
// so the documentation lists exactly the fields, types and constraints the API server enforces.
import {
  API_VERSION,
  KIND,
  PLURAL,
  SHORT_NAMES,
  openAPIV3Schema,
  printerColumns,
  type JSONSchemaProps,
} from "../src/api/crd.ts";

interface Row {
  path: string;
  type: string;
  required: boolean;
  description: string;
}

function typeOf(schema: JSONSchemaProps): string {
  if (schema.type === "array") {
    return `[]${schema.items === undefined ? "any" : typeOf(schema.items)}`;
  }
  if (schema.type === "object" && schema.additionalProperties !== undefined) {
    return `map[string]${typeOf(schema.additionalProperties)}`;
  }
  if (schema.format !== undefined && schema.type !== "object") {
    return `${schema.type} (${schema.format})`;
  }
  return schema.type;
}

function code(text: string): string {
  return `\`${text}\``;
}

/** Escapes Markdown in schema prose, leaving its `code spans` as they are. */
function prose(text: string): string {
  return text
    .split(/(`[^`]*`)/)
    .map((part) => (part.startsWith("`") ? part : part.replace(/[\\*_<>[\]]/g, (c) => `\\${c}`)))
    .join("");
}

function lowerFirst(text: string): string {
  return `${text.charAt(0).toLowerCase()}${text.slice(1)}`;
}

function constraints(schema: JSONSchemaProps): string[] {
  const out: string[] = [];
  if (schema.enum !== undefined) out.push(`One of ${schema.enum.map(code).join(", ")}.`);
  if (schema.minLength !== undefined && schema.maxLength !== undefined) {
    out.push(`${schema.minLength} to ${schema.maxLength} characters.`);
  } else if (schema.maxLength !== undefined) {
    out.push(`At most ${schema.maxLength} characters.`);
  } else if (schema.minLength !== undefined) {
    out.push(`At least ${schema.minLength} characters.`);
  }
  if (schema.minimum !== undefined && schema.maximum !== undefined) {
    out.push(`From ${schema.minimum} to ${schema.maximum}.`);
  } else if (schema.minimum !== undefined) {
    out.push(`At least ${schema.minimum}.`);
  }
  if (schema.maxItems !== undefined) out.push(`At most ${schema.maxItems} items.`);
  if (schema.maxProperties !== undefined) out.push(`At most ${schema.maxProperties} entries.`);
  if (schema["x-kubernetes-list-type"] === "set") out.push("No duplicates.");
  if (schema["x-kubernetes-list-type"] === "map") {
    out.push(`One entry per ${(schema["x-kubernetes-list-map-keys"] ?? []).map(code).join(", ")}.`);
  }
  if (schema.pattern !== undefined) out.push(`Pattern: ${code(schema.pattern)}.`);
  for (const rule of schema["x-kubernetes-validations"] ?? []) {
    out.push(`Rule: ${prose(rule.message)}.`);
  }
  return out;
}

function describe(schema: JSONSchemaProps, inherited: JSONSchemaProps | undefined): string {
  const text = [prose(schema.description ?? inherited?.description ?? ""), ...constraints(schema)];
  if (schema.type === "array" && schema.items !== undefined && schema.items.type !== "object") {
    text.push(...constraints(schema.items).map((c) => `Each item: ${lowerFirst(c)}`));
  }
  if (schema.type === "object" && schema.additionalProperties !== undefined) {
    text.push(...constraints(schema.additionalProperties).map((c) => `Each value: ${lowerFirst(c)}`));
  }
  return text
    .filter((t) => t.length > 0)
    .join(" ")
    .replaceAll("\n", " ");
}

function rows(schema: JSONSchemaProps, path: string, out: Row[]): void {
  const required = new Set(schema.required ?? []);
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    const childPath = `${path}.${name}`;
    out.push({
      path: childPath,
      type: typeOf(child),
      required: required.has(name),
      description: describe(child, undefined),
    });
    if (child.type === "object" && child.properties !== undefined) {
      rows(child, childPath, out);
    }
    if (child.type === "array" && child.items?.type === "object" && child.items.properties !== undefined) {
      rows(child.items, `${childPath}[]`, out);
    }
  }
}

/** One bullet per field (a table would need every `|` in the patterns escaped). */
function fieldList(schema: JSONSchemaProps, path: string): string {
  const out: Row[] = [];
  rows(schema, path, out);
  return out
    .map((row) => {
      const head = `- **${code(row.path)}** (${code(row.type)}${row.required ? ", required" : ""})`;
      return row.description.length > 0 ? `${head}: ${row.description}` : head;
    })
    .join("\n");
}

/** The Markdown reference for every field of the ECRPullSecret API. */
export function renderCrdReference(): string {
  const spec = openAPIV3Schema.properties.spec;
  const status = openAPIV3Schema.properties.status;
  const topRules = openAPIV3Schema["x-kubernetes-validations"].map((r) => `- ${prose(r.message)}.`);
  return [
    "<!-- Generated from src/api/crd.ts by scripts/generate.ts (npm run generate); do not edit. -->",
    "",
    `# ${KIND} reference`,
    "",
    prose(openAPIV3Schema.description),
    "",
    `- \`apiVersion: ${API_VERSION}\`, \`kind: ${KIND}\``,
    `- Cluster-scoped; plural \`${PLURAL}\`; short names: ${SHORT_NAMES.map((n) => `\`${n}\``).join(", ")}.`,
    `- \`kubectl get ${SHORT_NAMES[0]}\` shows ${printerColumns.map((c) => c.name).join(", ")}.`,
    "",
    "Rules on the whole object:",
    "",
    ...topRules,
    "",
    "The API server enforces every type, bound, pattern and rule below when an object is created or",
    "updated; an object that breaks one is rejected with a message naming the field.",
    "",
    "## spec",
    "",
    prose(spec.description),
    "",
    fieldList(spec, "spec"),
    "",
    "## status",
    "",
    prose(status.description),
    "",
    fieldList(status, "status"),
    "",
  ].join("\n");
}
