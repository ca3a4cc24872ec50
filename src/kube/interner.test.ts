import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { StringInterner } from "./interner.ts";

describe("StringInterner", () => {
  it("keeps one entry per distinct value", () => {
    const interner = new StringInterner(4);
    const token = "token-a".repeat(100);
    for (let i = 0; i < 3; i++) {
      // Built at run time each time, as JSON.parse builds each Secret's data.
      assert.equal(interner.intern(JSON.parse(JSON.stringify(token)) as string), token);
    }
    interner.intern("token-b");
    assert.equal(interner.size, 2);
  });

  it("forgets the least recently seen value beyond its limit", () => {
    const interner = new StringInterner(2);
    for (const value of ["a", "b", "a", "c"]) interner.intern(value);
    assert.deepEqual(
      ["a", "b", "c"].map((value) => interner.has(value)),
      [true, false, true],
    );
  });

  it("counts a value seen twice in a row as recently seen, once", () => {
    const interner = new StringInterner(2);
    for (const value of ["a", "a", "b", "b", "a", "a", "c", "c"]) interner.intern(value);
    assert.deepEqual(
      ["a", "b", "c"].map((value) => interner.has(value)),
      [true, false, true],
    );
    assert.equal(interner.size, 2);
  });

  it("refuses a limit that is not a positive integer", () => {
    assert.throws(() => new StringInterner(0), RangeError);
    assert.throws(() => new StringInterner(1.5), RangeError);
  });
});
