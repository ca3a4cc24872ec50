// Renders the ECRPullSecret CRD manifest as the YAML kept under deploy/.

import { stringify } from "yaml";
import { ecrPullSecretCrd } from "./crd.ts";

const header = "# Generated from src/api/crd.ts by renderCrdYaml(); do not edit by hand.\n";

export function renderCrdYaml(): string {
  // No anchors for schema fragments used twice, and no folding of long descriptions or patterns,
  // so the file reads like a hand-written CRD and diffs stay line-for-line.
  return header + stringify(ecrPullSecretCrd, { aliasDuplicateObjects: false, lineWidth: 0 });
}
