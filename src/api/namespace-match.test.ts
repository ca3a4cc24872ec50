import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { isInvalidInput } from "./invalid-input.ts";
import { compileNamespaceMatcher } from "./namespace-match.ts";
import type { NamespaceInfo, NamespaceTargets } from "./namespace-match.ts";

const ns = (name: string, labels?: Record<string, string>): NamespaceInfo => ({ name, labels });

describe("compileNamespaceMatcher", () => {
  const cases: {
    name: string;
    spec: NamespaceTargets;
    targeted: NamespaceInfo[];
    skipped: NamespaceInfo[];
  }[] = [
    {
      name: "targets nothing when no field is set",
      spec: {},
      targeted: [],
      skipped: [ns("default"), ns("team-a")],
    },
    {
      name: "targets exact names only",
      spec: { namespaces: ["default", "team-a"] },
      targeted: [ns("default"), ns("team-a")],
      skipped: [ns("team-ab"), ns("defaults")],
    },
    {
      name: "matches * across the rest of the name",
      spec: { namespaces: ["team-*"] },
      targeted: [ns("team-a"), ns("team-a-b")],
      skipped: [ns("teams"), ns("my-team-a")],
    },
    {
      name: "matches * alone against every name",
      spec: { namespaces: ["*"] },
      targeted: [ns("default"), ns("kube-system")],
      skipped: [],
    },
    {
      name: "matches ? against exactly one character",
      spec: { namespaces: ["app-?"] },
      targeted: [ns("app-1"), ns("app-x")],
      skipped: [ns("app-"), ns("app-10")],
    },
    {
      name: "matches bracket ranges",
      spec: { namespaces: ["ns-[0-2]"] },
      targeted: [ns("ns-0"), ns("ns-2")],
      skipped: [ns("ns-3"), ns("ns-a")],
    },
    {
      name: "negates brackets written with !",
      spec: { namespaces: ["[!k]*"] },
      targeted: [ns("default"), ns("team-a")],
      skipped: [ns("kube-system")],
    },
    {
      name: "negates brackets written with ^",
      spec: { namespaces: ["[^k]*"] },
      targeted: [ns("default")],
      skipped: [ns("kube-public")],
    },
    {
      name: "selects by labels",
      spec: { namespaceSelector: { matchLabels: { "ecr-pull": "true" } } },
      targeted: [ns("any", { "ecr-pull": "true" })],
      skipped: [ns("other", { "ecr-pull": "false" }), ns("bare")],
    },
    {
      name: "selects everything with an empty selector",
      spec: { namespaceSelector: {} },
      targeted: [ns("default"), ns("kube-system", { a: "b" })],
      skipped: [],
    },
    {
      name: "unions names with the selector",
      spec: { namespaces: ["default"], namespaceSelector: { matchLabels: { "ecr-pull": "true" } } },
      targeted: [ns("default"), ns("team-a", { "ecr-pull": "true" })],
      skipped: [ns("team-b")],
    },
    {
      name: "applies excludeNamespaces after names and selector",
      spec: { namespaces: ["*"], namespaceSelector: {}, excludeNamespaces: ["kube-*", "ecr-system"] },
      targeted: [ns("default"), ns("team-a")],
      skipped: [ns("kube-system"), ns("kube-public"), ns("ecr-system")],
    },
    {
      name: "excludes a namespace that is also listed exactly",
      spec: { namespaces: ["default"], excludeNamespaces: ["default"] },
      targeted: [],
      skipped: [ns("default")],
    },
    {
      name: "targets nothing with only excludeNamespaces",
      spec: { excludeNamespaces: ["kube-*"] },
      targeted: [],
      skipped: [ns("default")],
    },
    {
      name: "targets nothing with empty lists",
      spec: { namespaces: [], excludeNamespaces: [] },
      targeted: [],
      skipped: [ns("default")],
    },
  ];

  for (const { name, spec, targeted, skipped } of cases) {
    it(name, () => {
      const matches = compileNamespaceMatcher(spec);
      assert.ok(!isInvalidInput(matches), isInvalidInput(matches) ? matches.message : "");
      for (const namespace of targeted)
        assert.equal(matches(namespace), true, `should target ${namespace.name}`);
      for (const namespace of skipped)
        assert.equal(matches(namespace), false, `should skip ${namespace.name}`);
    });
  }

  const invalid: { name: string; spec: NamespaceTargets; message: RegExp }[] = [
    {
      name: "a reversed bracket range",
      spec: { namespaces: ["ns-[z-a]"] },
      message: /namespaces\[0\] "ns-\[z-a\]" is not a usable glob: Range out of order/,
    },
    {
      name: "an unclosed bracket",
      spec: { namespaces: ["ok", "ns-[a"] },
      message: /namespaces\[1\] "ns-\[a" is not a namespace name or glob/,
    },
    {
      name: "a leading ! negation",
      spec: { namespaces: ["!kube-system"] },
      message: /is not a namespace name or glob/,
    },
    {
      name: "a brace expansion",
      spec: { excludeNamespaces: ["{a,b}"] },
      message: /excludeNamespaces\[0\] "\{a,b\}" is not a namespace name or glob/,
    },
    { name: "an extglob", spec: { namespaces: ["@(a|b)"] }, message: /is not a namespace name or glob/ },
    { name: "a path separator", spec: { namespaces: ["a/b"] }, message: /is not a namespace name or glob/ },
    { name: "upper case", spec: { namespaces: ["Default"] }, message: /is not a namespace name or glob/ },
    { name: "an empty entry", spec: { namespaces: [""] }, message: /is not a namespace name or glob/ },
    {
      name: "an entry longer than 63 characters",
      spec: { namespaces: ["a".repeat(64)] },
      message: /is not a namespace name or glob/,
    },
    {
      name: "a selector with In and no values",
      spec: { namespaceSelector: { matchExpressions: [{ key: "a", operator: "In", values: [] }] } },
      message: /^namespaceSelector: matchExpressions\[0\]: operator In needs at least one value/,
    },
  ];

  for (const { name, spec, message } of invalid) {
    it(`rejects ${name}`, () => {
      const matches = compileNamespaceMatcher(spec);
      assert.ok(isInvalidInput(matches));
      assert.match(matches.message, message);
    });
  }
});
