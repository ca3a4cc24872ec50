import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { inspect } from "node:util";

import { ApiException } from "@kubernetes/client-node";

import { classifyKubeError, isAlreadyExists, isConflict, isNotFound, KubeError } from "./errors.ts";
import type { KubeErrorKind } from "./errors.ts";

/** A meta/v1 Status as the API server sends it, serialized as client-node puts it in ApiException.body. */
function statusBody(code: number, reason: string, message: string, details: object = {}): string {
  return JSON.stringify({
    kind: "Status",
    apiVersion: "v1",
    status: "Failure",
    message,
    reason,
    details,
    code,
  });
}

function apiException(
  code: number,
  body: unknown,
  headers: Record<string, string> = {},
): ApiException<unknown> {
  return new ApiException(code, "Unknown API Status Code!", body, headers);
}

function networkError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

interface Case {
  name: string;
  err: unknown;
  kind: KubeErrorKind;
  status?: number;
  reason?: string;
  message?: string | RegExp;
  retryAfterSeconds?: number;
}

const cases: Case[] = [
  {
    name: "404 Status",
    err: apiException(404, statusBody(404, "NotFound", 'secrets "ecr-pull" not found')),
    kind: "NotFound",
    status: 404,
    reason: "NotFound",
    message: 'secrets "ecr-pull" not found',
  },
  {
    name: "409 with reason AlreadyExists (create)",
    err: apiException(409, statusBody(409, "AlreadyExists", 'secrets "ecr-pull" already exists')),
    kind: "AlreadyExists",
    status: 409,
    reason: "AlreadyExists",
    message: 'secrets "ecr-pull" already exists',
  },
  {
    name: "409 with reason Conflict (stale resourceVersion)",
    err: apiException(
      409,
      statusBody(
        409,
        "Conflict",
        'Operation cannot be fulfilled on secrets "ecr-pull": the object has been modified',
      ),
    ),
    kind: "Conflict",
    status: 409,
    reason: "Conflict",
  },
  { name: "409 without a body", err: apiException(409, undefined), kind: "Conflict", status: 409 },
  {
    name: "410 Expired",
    err: apiException(410, statusBody(410, "Expired", "too old resource version: 1 (42)")),
    kind: "Gone",
    status: 410,
    reason: "Expired",
  },
  {
    name: "watch error with statusCode 410",
    err: Object.assign(new Error("Gone"), { statusCode: 410 }),
    kind: "Gone",
    status: 410,
    message: "Kubernetes API answered 410 Gone",
  },
  {
    name: "watch ERROR event Status object",
    err: {
      kind: "Status",
      apiVersion: "v1",
      code: 410,
      reason: "Expired",
      message: "too old resource version",
    },
    kind: "Gone",
    status: 410,
    reason: "Expired",
    message: "too old resource version",
  },
  {
    name: "429 with retryAfterSeconds in the Status",
    err: apiException(
      429,
      statusBody(429, "TooManyRequests", "Too many requests, please try again later.", {
        retryAfterSeconds: 3,
      }),
      { "retry-after": "9" },
    ),
    kind: "Throttled",
    status: 429,
    retryAfterSeconds: 3,
  },
  {
    name: "429 with only a Retry-After header",
    err: apiException(429, "", { "Retry-After": "7" }),
    kind: "Throttled",
    status: 429,
    retryAfterSeconds: 7,
  },
  {
    name: "401 as generated APIs throw it (no body)",
    err: new ApiException(401, "Unauthorized", undefined, {}),
    kind: "Unauthorized",
    status: 401,
    message: "Kubernetes API answered 401 Unauthorized",
  },
  {
    name: "403 Status",
    err: apiException(
      403,
      statusBody(403, "Forbidden", 'secrets is forbidden: User "system:serviceaccount:x:y" cannot create'),
    ),
    kind: "Forbidden",
    status: 403,
  },
  {
    name: "422 Invalid",
    err: apiException(422, statusBody(422, "Invalid", 'Secret "ecr-pull" is invalid: metadata.name')),
    kind: "Invalid",
    status: 422,
    reason: "Invalid",
  },
  {
    name: "400 BadRequest",
    err: apiException(400, statusBody(400, "BadRequest", "the body of the request was in an unknown format")),
    kind: "Invalid",
    status: 400,
  },
  {
    name: "500 with a ServerTimeout Status and retry hint",
    err: apiException(
      500,
      statusBody(500, "ServerTimeout", "The server cannot complete the requested operation at this time", {
        retryAfterSeconds: 2,
      }),
    ),
    kind: "Unavailable",
    status: 500,
    retryAfterSeconds: 2,
  },
  {
    name: "502 from a proxy with an HTML body",
    err: apiException(502, "<html><body>Bad Gateway</body></html>"),
    kind: "Unavailable",
    status: 502,
    message: "Kubernetes API answered 502 Bad Gateway",
  },
  { name: "503", err: apiException(503, undefined), kind: "Unavailable", status: 503 },
  { name: "504", err: apiException(504, undefined), kind: "Unavailable", status: 504 },
  {
    name: "an already-parsed Status body (log and metrics clients)",
    err: new ApiException(
      404,
      "Error occurred in log request",
      {
        kind: "Status",
        code: 404,
        reason: "NotFound",
        message: 'pods "x" not found',
      },
      {},
    ),
    kind: "NotFound",
    status: 404,
    message: 'pods "x" not found',
  },
  { name: "an unmapped 4xx", err: apiException(418, undefined), kind: "Unknown", status: 418 },
  {
    name: "undici fetch failed caused by ECONNREFUSED",
    err: new TypeError("fetch failed", {
      cause: networkError("ECONNREFUSED", "connect ECONNREFUSED 10.96.0.1:443"),
    }),
    kind: "Unavailable",
    message: "Kubernetes API unreachable: ECONNREFUSED",
  },
  {
    name: "dual-stack connect failure reported as AggregateError",
    err: new TypeError("fetch failed", {
      cause: new AggregateError([
        networkError("ECONNREFUSED", "connect ECONNREFUSED ::1:6443"),
        networkError("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:6443"),
      ]),
    }),
    kind: "Unavailable",
  },
  { name: "ECONNRESET", err: networkError("ECONNRESET", "socket hang up"), kind: "Unavailable" },
  {
    name: "an API server host name that does not resolve",
    err: networkError("ENOTFOUND", "getaddrinfo ENOTFOUND kubernetes.default.svc"),
    kind: "Unavailable",
    message: "Kubernetes API unreachable: ENOTFOUND",
  },
  {
    name: "undici headers timeout",
    err: new TypeError("fetch failed", {
      cause: networkError("UND_ERR_HEADERS_TIMEOUT", "Headers Timeout Error"),
    }),
    kind: "Unavailable",
  },
  {
    name: "a request aborted by its timeout signal",
    err: new DOMException("The operation was aborted due to timeout", "TimeoutError"),
    kind: "Unavailable",
    message: "Kubernetes API request timed out",
  },
  {
    name: "an ApiException wrapped as a cause",
    err: new Error("reconcile failed", {
      cause: apiException(404, statusBody(404, "NotFound", "gone away")),
    }),
    kind: "NotFound",
    status: 404,
    message: "gone away",
  },
  {
    name: "a TLS failure",
    err: new TypeError("fetch failed", {
      cause: networkError("CERT_HAS_EXPIRED", "certificate has expired"),
    }),
    kind: "Unknown",
    message: "unexpected TypeError from Kubernetes client: fetch failed (CERT_HAS_EXPIRED)",
  },
  {
    name: "a plain Error",
    err: new Error("No currently active cluster"),
    kind: "Unknown",
    message: "unexpected Error from Kubernetes client: No currently active cluster",
  },
  {
    name: "a thrown string",
    err: "oops",
    kind: "Unknown",
    message: "unexpected string thrown by Kubernetes client",
  },
  { name: "undefined", err: undefined, kind: "Unknown" },
];

describe("classifyKubeError", () => {
  for (const c of cases) {
    it(`classifies ${c.name} as ${c.kind}`, () => {
      const classified = classifyKubeError(c.err);
      assert.ok(classified instanceof KubeError);
      assert.equal(classified.kind, c.kind);
      assert.equal(classified.status, c.status);
      if (c.reason !== undefined) assert.equal(classified.reason, c.reason);
      assert.equal(classified.retryAfterSeconds, c.retryAfterSeconds);
      if (typeof c.message === "string") assert.equal(classified.message, c.message);
      else if (c.message !== undefined) assert.match(classified.message, c.message);
      assert.notEqual(classified.message, "");
    });
  }

  it("returns a KubeError unchanged", () => {
    const err = new KubeError({ kind: "Conflict", status: 409, message: "stale" });
    assert.equal(classifyKubeError(err), err);
  });

  it("ignores a Retry-After header that is not whole seconds", () => {
    const classified = classifyKubeError(
      apiException(429, "", { "retry-after": "Wed, 21 Oct 2015 07:28:00 GMT" }),
    );
    assert.equal(classified.kind, "Throttled");
    assert.equal(classified.retryAfterSeconds, undefined);
  });

  it("is a throwable Error named KubeError", () => {
    const classified = classifyKubeError(apiException(404, undefined));
    assert.ok(classified instanceof Error);
    assert.equal(classified.name, "KubeError");
    assert.ok(classified.stack);
  });
});

describe("KubeError messages", () => {
  const secret = "eyJwYXlsb2FkIjoiU0VDUkVUIn0=";

  const leaks: [name: string, err: unknown][] = [
    [
      "Status details echoing a field value",
      apiException(
        422,
        statusBody(422, "Invalid", 'Secret "ecr-pull" is invalid', {
          causes: [{ field: "data[.dockerconfigjson]", message: secret }],
        }),
      ),
    ],
    ["a non-Status response body", apiException(500, `{"data":{".dockerconfigjson":"${secret}"}}`)],
    ["a plain-text response body", apiException(502, `upstream said ${secret}`)],
    ["response headers", apiException(403, undefined, { "x-debug": secret })],
    ["a parsed non-Status body", apiException(409, { data: { ".dockerconfigjson": secret } })],
  ];

  for (const [name, err] of leaks) {
    it(`do not carry ${name}`, () => {
      assert.ok(inspect(err).includes(secret), "the raw ApiException does carry it");
      const classified = classifyKubeError(err);
      for (const rendering of [
        classified.message,
        String(classified),
        inspect(classified),
        JSON.stringify(classified),
      ]) {
        assert.ok(!rendering.includes(secret), rendering);
      }
    });
  }
});

describe("isNotFound / isConflict / isAlreadyExists", () => {
  const notFound = apiException(404, statusBody(404, "NotFound", "not found"));
  const conflict = apiException(409, statusBody(409, "Conflict", "modified"));
  const exists = apiException(409, statusBody(409, "AlreadyExists", "exists"));
  const refused = new TypeError("fetch failed", { cause: networkError("ECONNREFUSED", "refused") });

  const table: [name: string, err: unknown, notFound: boolean, conflict: boolean, alreadyExists: boolean][] =
    [
      ["404", notFound, true, false, false],
      ["409 Conflict", conflict, false, true, false],
      ["409 AlreadyExists", exists, false, false, true],
      ["connection refused", refused, false, false, false],
    ];

  for (const [name, err, expectNotFound, expectConflict, expectAlreadyExists] of table) {
    it(`answers for ${name}`, () => {
      assert.equal(isNotFound(err), expectNotFound);
      assert.equal(isConflict(err), expectConflict);
      assert.equal(isAlreadyExists(err), expectAlreadyExists);
    });
  }
});
