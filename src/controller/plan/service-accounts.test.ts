import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { V1ServiceAccount } from "@kubernetes/client-node";
import { ADDED_PULL_SECRETS_ANNOTATION } from "./labels.ts";
import { entriesAddedTo, serviceAccountPatch } from "./service-accounts.ts";

const ours = "ecr-pull";

/** A ServiceAccount listing `entries`, with `added` recorded as the operator's (undefined: no annotation). */
function account(entries: string[], added?: string): V1ServiceAccount {
  return {
    metadata: {
      namespace: "team-a",
      name: "default",
      resourceVersion: "42",
      ...(added === undefined ? {} : { annotations: { [ADDED_PULL_SECRETS_ANNOTATION]: added } }),
    },
    imagePullSecrets: entries.map((name) => ({ name })),
  };
}

/** The patch, on resourceVersion 42, that lists `entries` and records `added` (null removes the annotation). */
function patch(entries: string[], added: string | null): object {
  return {
    metadata: { resourceVersion: "42", annotations: { [ADDED_PULL_SECRETS_ANNOTATION]: added } },
    imagePullSecrets: entries.map((name) => ({ name })),
  };
}

describe("entriesAddedTo", () => {
  const cases: { name: string; annotation: string | undefined; expected: string[] }[] = [
    { name: "finds none without the annotation", annotation: undefined, expected: [] },
    { name: "finds none in an empty annotation", annotation: "", expected: [] },
    { name: "reads one name", annotation: ours, expected: [ours] },
    {
      name: "reads a comma-separated list, trimmed, skipping empty names",
      annotation: " a, b ,,c,",
      expected: ["a", "b", "c"],
    },
  ];
  for (const { name, annotation, expected } of cases) {
    it(name, () => {
      assert.deepEqual(entriesAddedTo(account([], annotation)), expected);
    });
  }
});

describe("serviceAccountPatch", () => {
  const cases: {
    name: string;
    current: V1ServiceAccount;
    add?: string[];
    remove?: string[];
    expected: object | undefined;
  }[] = [
    {
      name: "adds our entry and records it as ours",
      current: account([]),
      add: [ours],
      expected: patch([ours], ours),
    },
    {
      name: "keeps other entries, in order, when adding ours",
      current: account(["dockerhub", "quay"], "quay"),
      add: [ours],
      expected: patch(["dockerhub", "quay", ours], `quay,${ours}`),
    },
    {
      name: "changes nothing when our entry is already listed and recorded",
      current: account(["dockerhub", ours], ours),
      add: [ours],
      expected: undefined,
    },
    {
      name: "does not claim an entry someone else listed already",
      current: account([ours]),
      add: [ours],
      expected: undefined,
    },
    {
      name: "lists our entry again after someone removed it",
      current: account(["dockerhub"], ours),
      add: [ours],
      expected: patch(["dockerhub", ours], ours),
    },
    {
      name: "removes an entry it added and drops the annotation once none is left",
      current: account(["dockerhub", ours], ours),
      remove: [ours],
      expected: patch(["dockerhub"], null),
    },
    {
      name: "keeps the other entries it added when removing one",
      current: account(["old-pull", ours], `old-pull,${ours}`),
      remove: ["old-pull"],
      expected: patch([ours], ours),
    },
    {
      name: "never removes an entry someone else added",
      current: account(["dockerhub", ours]),
      remove: [ours],
      expected: undefined,
    },
    {
      name: "forgets a recorded entry that is no longer listed",
      current: account(["dockerhub"], ours),
      remove: [ours],
      expected: patch(["dockerhub"], null),
    },
    {
      name: "renames in one patch: adds the new entry and removes the old one",
      current: account(["dockerhub", "old-pull"], "old-pull"),
      add: [ours],
      remove: ["old-pull"],
      expected: patch(["dockerhub", ours], ours),
    },
  ];
  for (const { name, current, add = [], remove = [], expected } of cases) {
    it(name, () => {
      const edit = { namespace: "team-a", name: "default", add, remove };
      assert.deepEqual(serviceAccountPatch(current, edit), expected);
    });
  }
});
