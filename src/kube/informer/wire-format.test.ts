import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { KubeError } from "../errors.ts";
import { parseListPage, parseWatchEvent, withTypeMeta } from "./wire-format.ts";

describe("parseListPage", () => {
  it("reads the items, the resourceVersion, the item kind and the continue token", () => {
    const page = parseListPage(
      {
        kind: "SecretList",
        apiVersion: "v1",
        metadata: { resourceVersion: "42", continue: "next" },
        items: [{ metadata: { name: "a" } }],
      },
      "secrets",
    );
    assert.deepEqual(page, {
      apiVersion: "v1",
      itemKind: "Secret",
      items: [{ metadata: { name: "a" } }],
      resourceVersion: "42",
      continueToken: "next",
    });
  });

  it("takes an empty continue token for the last page", () => {
    const page = parseListPage({ metadata: { resourceVersion: "7", continue: "" }, items: [] }, "secrets");
    assert.equal(page.continueToken, undefined);
  });

  it("takes the null items of an empty list of metadata as no items", () => {
    const page = parseListPage(
      {
        kind: "PartialObjectMetadataList",
        apiVersion: "meta.k8s.io/v1",
        metadata: { resourceVersion: "7" },
        items: null,
      },
      "secrets",
    );
    assert.deepEqual(page.items, []);
    assert.equal(page.itemKind, "PartialObjectMetadata");
  });

  const malformed: { name: string; value: unknown }[] = [
    { name: "not an object", value: "items" },
    { name: "no items", value: { metadata: { resourceVersion: "1" } } },
    { name: "an item that is not an object", value: { metadata: { resourceVersion: "1" }, items: [1] } },
    { name: "no resourceVersion", value: { metadata: {}, items: [] } },
  ];
  for (const { name, value } of malformed) {
    it(`refuses a list with ${name}, naming the collection`, () => {
      assert.throws(
        () => parseListPage(value, "secrets"),
        (err: unknown) =>
          err instanceof KubeError &&
          err.kind === "Unknown" &&
          err.message === "list of secrets: the server sent an unexpected response shape",
      );
    });
  }
});

describe("withTypeMeta", () => {
  it("puts the list's kind and apiVersion first, as a watch event's object has them", () => {
    const page = parseListPage(
      { kind: "SecretList", apiVersion: "v1", metadata: { resourceVersion: "1" }, items: [] },
      "secrets",
    );
    const item = withTypeMeta({ metadata: { name: "a" } }, page);
    assert.deepEqual(Object.keys(item), ["kind", "apiVersion", "metadata"]);
    assert.deepEqual(item, { kind: "Secret", apiVersion: "v1", metadata: { name: "a" } });
  });
});

describe("parseWatchEvent", () => {
  it("reads the type and the object", () => {
    assert.deepEqual(parseWatchEvent({ type: "ADDED", object: { metadata: { name: "a" } } }, "secrets"), {
      type: "ADDED",
      object: { metadata: { name: "a" } },
    });
  });

  it("refuses an event without a type or an object, naming the watch", () => {
    for (const value of [{ object: {} }, { type: "ADDED" }, { type: "ADDED", object: [] }, null]) {
      assert.throws(() => parseWatchEvent(value, "secrets"), /^KubeError: watch of secrets: the server sent/);
    }
  });
});
