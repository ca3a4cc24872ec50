// Every file generated from another source of truth, with its expected content: the CRD manifest
// and field reference (from src/api/crd.ts) and the static install manifest (a render of the Helm
// chart). scripts/generate.ts writes them; a test fails when one is stale.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as prettier from "prettier";
import { renderCrdYaml } from "../src/api/render-crd.ts";
import { chartDir, helmTemplate } from "../test/harness/helm.ts";
import { repoRoot } from "../test/harness/paths.ts";
import { renderCrdReference } from "./crd-reference.ts";

export interface GeneratedFile {
  /** Relative to the repository root. */
  path: string;
  /** Renders the expected content; may read files generated before it in the list. */
  render: () => Promise<string>;
}

/** The namespace and release name of the static manifest; the docs use the same. */
export const staticInstall = { namespace: "ecr-system", releaseName: "ecr-creds-refresher" } as const;

const installHeader = `# ecr-creds-refresher: the CRD, RBAC and operator Deployment in namespace ${staticInstall.namespace}.
# Generated from deploy/helm/ecr-creds-refresher with its default values by scripts/generate.ts
# (npm run generate); do not edit. Install: kubectl apply --server-side -f deploy/install.yaml
---
apiVersion: v1
kind: Namespace
metadata:
  name: ${staticInstall.namespace}
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
`;

export async function renderStaticInstall(): Promise<string> {
  return installHeader + (await helmTemplate({ ...staticInstall, includeCrds: true }));
}

async function formatMarkdown(path: string, text: string): Promise<string> {
  const options = (await prettier.resolveConfig(join(repoRoot, path))) ?? {};
  return prettier.format(text, { ...options, filepath: path });
}

/** In dependency order: the static manifest includes the chart's CRD file. */
export const generatedFiles: readonly GeneratedFile[] = [
  {
    path: join(chartDir, "crds", "ecrpullsecrets.yaml").slice(repoRoot.length + 1),
    render: () => Promise.resolve(renderCrdYaml()),
  },
  { path: "deploy/install.yaml", render: renderStaticInstall },
  { path: "docs/reference.md", render: () => formatMarkdown("docs/reference.md", renderCrdReference()) },
];

/** Generated files whose content on disk differs from a fresh render. */
export async function staleGeneratedFiles(): Promise<string[]> {
  const stale: string[] = [];
  for (const file of generatedFiles) {
    const current = await readFile(join(repoRoot, file.path), "utf8").catch(() => undefined);
    if (current !== (await file.render())) stale.push(file.path);
  }
  return stale;
}
