import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { maxScopedNamespaces, PassScopes } from "./pass-scope.ts";

describe("PassScopes", () => {
  it("gives the namespaces touched since the last take, once", () => {
    const scopes = new PassScopes();
    scopes.touch("a", "ns-1");
    scopes.touch("a", "ns-2");
    scopes.touch("a", "ns-1");
    scopes.touch("b", "ns-3");
    assert.deepEqual([...(scopes.take("a") ?? [])], ["ns-1", "ns-2"]);
    assert.equal(scopes.take("a"), undefined, "nothing noted: a full pass");
    assert.deepEqual([...(scopes.take("b") ?? [])], ["ns-3"]);
  });

  it("asks for a full pass once one is requested, whatever is touched after it", () => {
    const scopes = new PassScopes();
    scopes.touch("a", "ns-1");
    scopes.full("a");
    scopes.touch("a", "ns-2");
    assert.equal(scopes.take("a"), undefined);
    scopes.touch("a", "ns-3");
    assert.deepEqual([...(scopes.take("a") ?? [])], ["ns-3"], "the full request was taken");
  });

  it("turns too many touched namespaces into a full pass", () => {
    const scopes = new PassScopes();
    for (let i = 0; i < maxScopedNamespaces; i++) scopes.touch("a", `ns-${i}`);
    scopes.touch("b", "ns-0");
    scopes.touch("a", "ns-0");
    assert.equal(scopes.take("a")?.size, maxScopedNamespaces);
    for (let i = 0; i <= maxScopedNamespaces; i++) scopes.touch("a", `ns-${i}`);
    assert.equal(scopes.take("a"), undefined);
    assert.deepEqual([...(scopes.take("b") ?? [])], ["ns-0"]);
  });

  it("forgets a CR that is gone", () => {
    const scopes = new PassScopes();
    scopes.full("a");
    scopes.forget("a");
    scopes.touch("a", "ns-1");
    assert.deepEqual([...(scopes.take("a") ?? [])], ["ns-1"]);
  });
});
