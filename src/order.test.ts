import assert from "node:assert/strict";
import { test } from "node:test";
import { compareStrings } from "./order.ts";

test("names sort by code point, whatever the locale would say", () => {
  const sorted = ["b.example", "B.example", "a-b", "a.b", "ab", "a", "ä", "10", "9"].sort(compareStrings);
  assert.deepEqual(sorted, ["10", "9", "B.example", "a", "a-b", "a.b", "ab", "b.example", "ä"]);
  assert.equal(compareStrings("same", "same"), 0);
});
