import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { isInvalidInput } from "./invalid-input.ts";
import { compileLabelSelector } from "./label-selector.ts";
import type { Labels } from "./label-selector.ts";
import type { LabelSelector } from "./types.ts";

const prod: Labels = { env: "prod", team: "payments" };
const staging: Labels = { env: "staging" };
const blank: Labels = { env: "" };
const unlabelled: Labels = {};

describe("compileLabelSelector", () => {
  const cases: { name: string; selector: LabelSelector | undefined; matches: Labels[]; misses: Labels[] }[] =
    [
      {
        name: "an absent selector selects nothing",
        selector: undefined,
        matches: [],
        misses: [prod, unlabelled],
      },
      {
        name: "an empty selector selects everything",
        selector: {},
        matches: [prod, staging, unlabelled],
        misses: [],
      },
      {
        name: "empty lists select everything",
        selector: { matchLabels: {}, matchExpressions: [] },
        matches: [prod, unlabelled],
        misses: [],
      },
      {
        name: "matchLabels needs the key with that value",
        selector: { matchLabels: { env: "prod" } },
        matches: [prod],
        misses: [staging, unlabelled, blank],
      },
      {
        name: "matchLabels with an empty value needs the key present and empty",
        selector: { matchLabels: { env: "" } },
        matches: [blank],
        misses: [prod, unlabelled],
      },
      {
        name: "matchLabels entries are ANDed",
        selector: { matchLabels: { env: "prod", team: "payments" } },
        matches: [prod],
        misses: [{ env: "prod" }, { team: "payments" }],
      },
      {
        name: "In needs the key with one of the values",
        selector: { matchExpressions: [{ key: "env", operator: "In", values: ["prod", "staging"] }] },
        matches: [prod, staging],
        misses: [blank, unlabelled],
      },
      {
        name: "NotIn matches objects without the key",
        selector: { matchExpressions: [{ key: "env", operator: "NotIn", values: ["prod"] }] },
        matches: [staging, blank, unlabelled],
        misses: [prod],
      },
      {
        name: "Exists needs the key, whatever its value",
        selector: { matchExpressions: [{ key: "env", operator: "Exists" }] },
        matches: [prod, blank],
        misses: [unlabelled],
      },
      {
        name: "Exists with an empty values list is allowed",
        selector: { matchExpressions: [{ key: "env", operator: "Exists", values: [] }] },
        matches: [prod],
        misses: [unlabelled],
      },
      {
        name: "DoesNotExist matches objects without the key",
        selector: { matchExpressions: [{ key: "env", operator: "DoesNotExist" }] },
        matches: [unlabelled, { team: "x" }],
        misses: [prod, blank],
      },
      {
        name: "matchLabels and matchExpressions are ANDed",
        selector: {
          matchLabels: { env: "prod" },
          matchExpressions: [{ key: "team", operator: "NotIn", values: ["payments"] }],
        },
        matches: [{ env: "prod", team: "search" }, { env: "prod" }],
        misses: [prod, staging],
      },
      {
        name: "prefixed keys match literally",
        selector: { matchLabels: { "example.com/tier": "a" } },
        matches: [{ "example.com/tier": "a" }],
        misses: [{ tier: "a" }],
      },
      {
        name: "inherited object keys are not labels",
        selector: { matchExpressions: [{ key: "constructor", operator: "Exists" }] },
        matches: [{ constructor: "x" }],
        misses: [unlabelled],
      },
    ];

  for (const { name, selector, matches, misses } of cases) {
    it(name, () => {
      const matcher = compileLabelSelector(selector);
      assert.ok(!isInvalidInput(matcher), isInvalidInput(matcher) ? matcher.message : "");
      for (const labels of matches)
        assert.equal(matcher(labels), true, `should match ${JSON.stringify(labels)}`);
      for (const labels of misses)
        assert.equal(matcher(labels), false, `should miss ${JSON.stringify(labels)}`);
    });
  }

  it("treats an object without labels like one with none", () => {
    const notIn = compileLabelSelector({
      matchExpressions: [{ key: "env", operator: "NotIn", values: ["prod"] }],
    });
    const matchAll = compileLabelSelector({});
    const exists = compileLabelSelector({ matchExpressions: [{ key: "env", operator: "Exists" }] });
    assert.ok(!isInvalidInput(notIn) && !isInvalidInput(matchAll) && !isInvalidInput(exists));
    assert.equal(notIn(undefined), true);
    assert.equal(matchAll(undefined), true);
    assert.equal(exists(undefined), false);
  });

  const invalid: { name: string; selector: LabelSelector; message: RegExp }[] = [
    {
      name: "In without values",
      selector: { matchExpressions: [{ key: "env", operator: "In", values: [] }] },
      message: /matchExpressions\[0\]: operator In needs at least one value/,
    },
    {
      name: "NotIn with values left out",
      selector: { matchExpressions: [{ key: "env", operator: "NotIn" }] },
      message: /operator NotIn needs at least one value/,
    },
    {
      name: "Exists with values",
      selector: { matchExpressions: [{ key: "env", operator: "Exists", values: ["prod"] }] },
      message: /operator Exists takes no values/,
    },
    {
      name: "DoesNotExist with values",
      selector: {
        matchExpressions: [
          { key: "a", operator: "Exists" },
          { key: "env", operator: "DoesNotExist", values: ["x"] },
        ],
      },
      message: /matchExpressions\[1\]: operator DoesNotExist takes no values/,
    },
    {
      name: "an unknown operator",
      selector: { matchExpressions: [{ key: "env", operator: "Equals" as "In", values: ["x"] }] },
      message: /operator "Equals" is not one of In, NotIn, Exists, DoesNotExist/,
    },
    {
      name: "an invalid label key",
      selector: { matchLabels: { "bad key": "x" } },
      message: /matchLabels\.bad key: "bad key" is not a valid label key/,
    },
    {
      name: "a label name over 63 characters",
      selector: { matchExpressions: [{ key: "a".repeat(64), operator: "Exists" }] },
      message: /is not a valid label key/,
    },
    {
      name: "an invalid label value",
      selector: { matchLabels: { env: "-prod" } },
      message: /"-prod" is not a valid label value/,
    },
    {
      name: "a label value over 63 characters",
      selector: { matchExpressions: [{ key: "env", operator: "In", values: ["a".repeat(64)] }] },
      message: /is not a valid label value/,
    },
  ];

  for (const { name, selector, message } of invalid) {
    it(`rejects ${name}`, () => {
      const matcher = compileLabelSelector(selector);
      assert.ok(isInvalidInput(matcher));
      assert.match(matcher.message, message);
    });
  }
});
