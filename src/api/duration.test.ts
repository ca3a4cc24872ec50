import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { patterns } from "./crd.ts";
import { parseDuration, parseRefreshInterval } from "./duration.ts";
import { isInvalidInput } from "./invalid-input.ts";

const second = 1_000;
const minute = 60 * second;
const hour = 60 * minute;

describe("parseDuration", () => {
  const valid: [string, number][] = [
    ["6h", 6 * hour],
    ["90m", 90 * minute],
    ["1h30m", 90 * minute],
    ["45s", 45 * second],
    ["1h0m0s", hour],
    ["250ms", 250],
    ["1.5h", 90 * minute],
    ["0.5s", 500],
    ["1m30.25s", minute + 30 * second + 250],
    ["0.0004s", 0],
    ["0.0006s", 1],
    ["30m1h", 90 * minute],
    ["0s", 0],
  ];
  for (const [text, milliseconds] of valid) {
    it(`reads ${text} as ${milliseconds} ms`, () => {
      assert.equal(parseDuration(text), milliseconds);
    });
  }

  const invalid: [string, RegExp][] = [
    ["", /empty/],
    ["90", /"90" has no unit; write 90m or 90s/],
    ["1.5", /has no unit/],
    ["6 hours", /is not a duration; write it like 6h, 90m or 1h30m/],
    ["6H", /is not a duration/],
    ["1d", /is not a duration/],
    ["-5m", /is not a duration/],
    ["+5m", /is not a duration/],
    [".5h", /is not a duration/],
    ["1.h", /is not a duration/],
    ["5us", /is not a duration/],
    ["h", /is not a duration/],
    [" 6h", /is not a duration/],
    ["99999999999999999999h", /too long/],
  ];
  for (const [text, message] of invalid) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      const result = parseDuration(text);
      assert.ok(isInvalidInput(result), `parsed ${text} as ${JSON.stringify(result)}`);
      assert.match(result.message, message);
    });
  }

  it("accepts exactly what the CRD's refreshInterval pattern accepts", () => {
    const pattern = new RegExp(patterns.duration);
    for (const [text] of [...valid, ...invalid]) {
      const tooLong = text.startsWith("9999");
      assert.equal(!isInvalidInput(parseDuration(text)) || tooLong, pattern.test(text), text);
    }
  });
});

describe("parseRefreshInterval", () => {
  const cases: [string, number | RegExp][] = [
    ["1m", minute],
    ["60s", minute],
    ["6h", 6 * hour],
    ["12h", 12 * hour],
    ["11h59m59s", 12 * hour - second],
    ["59s", /refreshInterval 59s is shorter than the minimum 1m/],
    ["59999ms", /shorter than the minimum 1m/],
    ["12h0m1s", /refreshInterval 12h0m1s is longer than the maximum 12h/],
    ["24h", /longer than the maximum 12h/],
    ["soon", /^refreshInterval: "soon" is not a duration/],
  ];
  for (const [text, expected] of cases) {
    it(`${typeof expected === "number" ? "accepts" : "rejects"} ${text}`, () => {
      const result = parseRefreshInterval(text);
      if (typeof expected === "number") {
        assert.equal(result, expected);
      } else {
        assert.ok(isInvalidInput(result));
        assert.match(result.message, expected);
      }
    });
  }
});
