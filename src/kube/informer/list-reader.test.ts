import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import { describe, it } from "node:test";

import { KubeError } from "../errors.ts";
import { parseJson } from "../rest.ts";
import { ListItemSplitter, readList } from "./list-reader.ts";
import { parseListPage } from "./wire-format.ts";

interface Split {
  heads: unknown[];
  items: unknown[];
  rest: string;
}

/** Feeds `json` to a splitter in the given chunks and collects what comes out. */
function split(chunks: Buffer[]): Split {
  const heads: unknown[] = [];
  const items: unknown[] = [];
  const splitter = new ListItemSplitter({
    onHead: (head) => heads.push(JSON.parse(head)),
    onItem: (item) => items.push(JSON.parse(item)),
  });
  for (const chunk of chunks) splitter.write(chunk);
  return { heads, items, rest: splitter.end() };
}

/** The body cut in two at every byte, and cut into single bytes. */
function everySplit(json: string): Buffer[][] {
  const body = Buffer.from(json, "utf8");
  const splits: Buffer[][] = [];
  for (let at = 0; at <= body.length; at++) splits.push([body.subarray(0, at), body.subarray(at)]);
  splits.push([...body].map((byte) => Buffer.from([byte])));
  return splits;
}

const secretList = {
  kind: "SecretList",
  apiVersion: "v1",
  metadata: { resourceVersion: "42" },
  items: [
    {
      metadata: {
        name: "a",
        annotations: {
          note: 'quote " brace } bracket ] backslash \\',
          runs: '\\\\" }\\" ]\\\\\\" {\\\\',
        },
      },
      data: { ".dockerconfigjson": "e30=" },
    },
    { metadata: { name: "b", labels: {} }, type: "kubernetes.io/dockerconfigjson", list: [[], [{}], "]"] },
  ],
};

describe("ListItemSplitter", () => {
  it("hands over each item and the head wherever the chunks are cut", () => {
    const json = JSON.stringify(secretList);
    for (const chunks of everySplit(json)) {
      const { heads, items, rest } = split(chunks);
      assert.deepEqual(heads, [{ ...secretList, items: [] }]);
      assert.deepEqual(items, secretList.items);
      assert.deepEqual(JSON.parse(rest), { ...secretList, items: [] });
    }
  });

  it("decodes characters of several bytes cut across chunks", () => {
    const list = {
      kind: "NamespaceList",
      apiVersion: "v1",
      metadata: { resourceVersion: "7" },
      items: [{ metadata: { name: "é", annotations: { team: "名前 🚀" } } }, { metadata: { name: "ß" } }],
    };
    for (const chunks of everySplit(JSON.stringify(list))) {
      const { items } = split(chunks);
      assert.deepEqual(items, list.items);
    }
  });

  it("reads a list written with whitespace and line breaks", () => {
    const { heads, items, rest } = split([Buffer.from(JSON.stringify(secretList, null, 2))]);
    assert.equal(heads.length, 1);
    assert.deepEqual(items, secretList.items);
    assert.deepEqual(JSON.parse(rest), { ...secretList, items: [] });
  });

  it("hands over nothing for an empty list and keeps it a list", () => {
    const json = '{"kind":"SecretList","apiVersion":"v1","metadata":{"resourceVersion":"9"},"items":[]}';
    for (const chunks of everySplit(json)) {
      const { heads, items, rest } = split(chunks);
      assert.equal(heads.length, 1);
      assert.deepEqual(items, []);
      assert.equal(rest, json);
    }
  });

  it("keeps the resourceVersion and continue token in the rest, wherever they are", () => {
    const json =
      '{"apiVersion":"example.com/v1","items":[{"kind":"Thing","metadata":{"name":"a"}}],' +
      '"kind":"ThingList","metadata":{"continue":"eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ==","resourceVersion":"12"}}';
    for (const chunks of everySplit(json)) {
      const { heads, items, rest } = split(chunks);
      assert.deepEqual(heads, [{ apiVersion: "example.com/v1", items: [] }]);
      assert.deepEqual(items, [{ kind: "Thing", metadata: { name: "a" } }]);
      const page = parseListPage(parseJson(rest, "list of things"), "things");
      assert.equal(page.resourceVersion, "12");
      assert.equal(page.continueToken, "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ==");
      assert.equal(page.itemKind, "Thing");
      assert.deepEqual(page.items, []);
    }
  });

  it("passes a Status through whole, arrays and all", () => {
    const status = JSON.stringify({
      kind: "Status",
      apiVersion: "v1",
      status: "Failure",
      reason: "Expired",
      details: { causes: [{ reason: "FieldValueInvalid", field: "continue" }] },
      code: 410,
    });
    for (const chunks of everySplit(status)) {
      const { heads, items, rest } = split(chunks);
      assert.deepEqual(heads, []);
      assert.deepEqual(items, []);
      assert.equal(rest, status);
    }
  });

  it("takes only the array under items for the items", () => {
    const json = '{"kind":"XList","other":[{"a":1}],"metadata":{"resourceVersion":"1"},"items":[{"b":2}]}';
    const { items, rest } = split([Buffer.from(json)]);
    assert.deepEqual(items, [{ b: 2 }]);
    assert.deepEqual(JSON.parse(rest), {
      kind: "XList",
      other: [{ a: 1 }],
      metadata: { resourceVersion: "1" },
      items: [],
    });
  });

  it("leaves an item that is not an object in the rest, where the list is refused", () => {
    const json = '{"metadata":{"resourceVersion":"1"},"items":[{"a":1}, 5 ]}';
    const { items, rest } = split([Buffer.from(json)]);
    assert.deepEqual(items, [{ a: 1 }]);
    assert.throws(
      () => parseListPage(parseJson(rest, "list of secrets"), "secrets"),
      (err: unknown) => err instanceof KubeError && err.kind === "Unknown",
    );
  });
});

describe("readList", () => {
  /** Reads `chunks` as a response body, holding up to `wholeUpTo` bytes. */
  async function read(chunks: Buffer[], wholeUpTo: number) {
    const items: unknown[] = [];
    const response = Readable.from(chunks) as unknown as IncomingMessage;
    let data = 0;
    const body = await readList(
      response,
      () => (data += 1),
      { onHead: () => undefined, onItem: (item) => items.push(JSON.parse(item)) },
      wholeUpTo,
    );
    return { body, items, data };
  }

  const json = JSON.stringify(secretList);

  it("hands back a response up to the limit whole, and no item on its own", async () => {
    for (const chunks of everySplit(json).slice(0, 40)) {
      const { body, items, data } = await read(chunks, json.length);
      assert.deepEqual(body, { whole: json });
      assert.deepEqual(items, []);
      assert.equal(data, chunks.length);
    }
  });

  it("splits a response past the limit, the bytes held before it included", async () => {
    for (const wholeUpTo of [0, 1, 30, json.length - 1]) {
      for (const chunks of everySplit(json)) {
        const { body, items } = await read(chunks, wholeUpTo);
        assert.deepEqual(items, secretList.items);
        assert.ok("rest" in body);
        assert.deepEqual(JSON.parse(body.rest), { ...secretList, items: [] });
      }
    }
  });
});
