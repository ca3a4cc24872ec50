import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parse, parseDocument } from "yaml";

import { ecrPullSecretCrd } from "./crd.ts";
import { renderCrdYaml } from "./render-crd.ts";

describe("renderCrdYaml", () => {
  it("renders a YAML document that parses back to the CRD manifest", () => {
    assert.deepEqual(parse(renderCrdYaml()), ecrPullSecretCrd);
  });

  it("marks the file as generated from src/api/crd.ts", () => {
    assert.match(renderCrdYaml(), /^# Generated from src\/api\/crd\.ts/);
  });

  it("writes schema fragments out in full instead of as YAML anchors", () => {
    const document = parseDocument(renderCrdYaml());
    assert.deepEqual(document.errors, []);
    assert.doesNotMatch(renderCrdYaml(), /^\s*[\w-]+: [&*]\w+/m);
  });

  it("keeps every pattern and CEL rule on one line", () => {
    const yaml = renderCrdYaml();
    const rulesAndPatterns = yaml.split("\n").filter((line) => /^\s*(- rule|pattern):/.test(line));
    assert.ok(rulesAndPatterns.length > 10);
    for (const line of rulesAndPatterns) {
      assert.doesNotMatch(line, /: [>|]-?$/, line);
    }
  });

  it("renders the same text every time", () => {
    assert.equal(renderCrdYaml(), renderCrdYaml());
  });
});
