// metav1.LabelSelector matching with the API server's semantics: matchLabels and matchExpressions
// are ANDed; NotIn and DoesNotExist match objects without the key; {} selects everything and an
// absent selector selects nothing.

import { patterns } from "./crd.ts";
import { invalidInput, isInvalidInput } from "./invalid-input.ts";
import type { InvalidInput } from "./invalid-input.ts";
import type { LabelSelector, LabelSelectorRequirement } from "./types.ts";

export type Labels = Readonly<Record<string, string>>;
export type LabelMatcher = (labels: Labels | undefined) => boolean;

const labelKey = new RegExp(patterns.labelKey);
const labelValue = new RegExp(patterns.labelValue);

export function compileLabelSelector(selector: LabelSelector | undefined): LabelMatcher | InvalidInput {
  if (selector === undefined) return () => false;

  const requirements: LabelMatcher[] = [];
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    const requirement = compileRequirement({ key, operator: "In", values: [value] }, `matchLabels.${key}`);
    if (isInvalidInput(requirement)) return requirement;
    requirements.push(requirement);
  }
  for (const [index, expression] of (selector.matchExpressions ?? []).entries()) {
    const requirement = compileRequirement(expression, `matchExpressions[${index}]`);
    if (isInvalidInput(requirement)) return requirement;
    requirements.push(requirement);
  }
  return (labels) => requirements.every((matches) => matches(labels));
}

function compileRequirement(
  { key, operator, values = [] }: LabelSelectorRequirement,
  field: string,
): LabelMatcher | InvalidInput {
  if (key.length > 317 || !labelKey.test(key)) {
    return invalidInput(`${field}: "${key}" is not a valid label key`);
  }
  const badValue = values.find((value) => value.length > 63 || !labelValue.test(value));
  if (badValue !== undefined) return invalidInput(`${field}: "${badValue}" is not a valid label value`);

  const valueOf = (labels: Labels | undefined): string | undefined =>
    labels !== undefined && Object.hasOwn(labels, key) ? labels[key] : undefined;
  const allowed = new Set(values);
  switch (operator) {
    case "In":
    case "NotIn": {
      if (values.length === 0) return invalidInput(`${field}: operator ${operator} needs at least one value`);
      const wantIn = operator === "In";
      return (labels) => {
        const value = valueOf(labels);
        return value === undefined ? !wantIn : allowed.has(value) === wantIn;
      };
    }
    case "Exists":
    case "DoesNotExist": {
      if (values.length > 0) return invalidInput(`${field}: operator ${operator} takes no values`);
      const wantPresent = operator === "Exists";
      return (labels) => (valueOf(labels) !== undefined) === wantPresent;
    }
    default:
      return invalidInput(
        `${field}: operator "${String(operator)}" is not one of In, NotIn, Exists, DoesNotExist`,
      );
  }
}
