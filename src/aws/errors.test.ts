import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  AwsError,
  classifyAwsError,
  CredentialSourceError,
  maskAccessKeyId,
  redactSecrets,
} from "./errors.ts";
import type { AwsErrorKind } from "./errors.ts";

const accessKeyId = "AKIAIOSFODNN7EXAMPLE";
const secretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const sessionToken =
  "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD6EXAMPLEtokenTOKENtoken+abc/def==";

/** An AWS SDK service exception as the SDK builds it: name = error code, HTTP status in $metadata. */
function sdkError(name: string, status: number | undefined, message = `${name} happened`): Error {
  const err = new Error(message);
  err.name = name;
  return Object.assign(err, {
    $fault: status !== undefined && status >= 500 ? "server" : "client",
    $metadata: { httpStatusCode: status, attempts: 1 },
  });
}

function networkError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

interface Case {
  name: string;
  err: unknown;
  kind: AwsErrorKind;
  code?: string;
  retryable: boolean;
  message?: RegExp;
}

const cases: Case[] = [
  {
    name: "ECR's UnrecognizedClientException",
    err: sdkError(
      "UnrecognizedClientException",
      400,
      "The security token included in the request is invalid.",
    ),
    kind: "AwsAuth",
    code: "UnrecognizedClientException",
    retryable: false,
    message: /UnrecognizedClientException: AWS does not recognise the access key id; check AWS_ACCESS_KEY_ID/,
  },
  {
    name: "STS InvalidClientTokenId",
    err: sdkError("InvalidClientTokenId", 403),
    kind: "AwsAuth",
    retryable: false,
  },
  {
    name: "SignatureDoesNotMatch, without AWS's text that may quote the signed request",
    err: sdkError(
      "SignatureDoesNotMatch",
      403,
      `The request signature we calculated does not match.\nThe Canonical String for this request should have been\nx-amz-security-token:${sessionToken}`,
    ),
    kind: "AwsAuth",
    code: "SignatureDoesNotMatch",
    retryable: false,
    message: /the secret access key does not match the access key id; check AWS_SECRET_ACCESS_KEY$/,
  },
  {
    name: "InvalidSignatureException",
    err: sdkError("InvalidSignatureException", 400),
    kind: "AwsAuth",
    retryable: false,
  },
  {
    name: "InvalidSignatureException for a region AWS does not have, without blaming the secret key",
    err: sdkError("InvalidSignatureException", 400, "Credential should be scoped to a valid region. "),
    kind: "InvalidInput",
    code: "InvalidSignatureException",
    retryable: false,
    message:
      /^InvalidSignatureException: AWS does not accept the region the request was signed for; check the region name and the endpoint$/,
  },
  {
    name: "AccessDeniedException, keeping AWS's text that names principal and action",
    err: sdkError(
      "AccessDeniedException",
      400,
      "User: arn:aws:iam::123456789012:user/puller is not authorized to perform: ecr:GetAuthorizationToken on resource: *",
    ),
    kind: "AwsAuth",
    code: "AccessDeniedException",
    retryable: false,
    message:
      /AccessDeniedException: User: arn:aws:iam::123456789012:user\/puller is not authorized to perform: ecr:GetAuthorizationToken/,
  },
  { name: "STS AccessDenied", err: sdkError("AccessDenied", 403), kind: "AwsAuth", retryable: false },
  {
    name: "ExpiredToken, which new credentials fix",
    err: sdkError("ExpiredToken", 400),
    kind: "AwsAuth",
    retryable: true,
  },
  {
    name: "a CredentialsProviderError from the default chain",
    err: Object.assign(new Error("Could not load credentials from any providers"), {
      name: "CredentialsProviderError",
      tryNextLink: false,
    }),
    kind: "AwsAuth",
    code: "CredentialsProviderError",
    retryable: false,
    message: /^CredentialsProviderError: Could not load credentials from any providers$/,
  },
  {
    name: "AssumeRole denied, reported through the source that failed",
    err: new CredentialSourceError(
      "role arn:aws:iam::123456789012:role/ecr-pull assumed with the AWS default credential chain",
      sdkError(
        "AccessDenied",
        403,
        "User: arn:aws:iam::123456789012:user/x is not authorized to perform: sts:AssumeRole",
      ),
    ),
    kind: "AwsAuth",
    code: "AccessDenied",
    retryable: false,
    message:
      /^could not get credentials from role arn:aws:iam::123456789012:role\/ecr-pull assumed with the AWS default credential chain: AccessDenied: User: /,
  },
  {
    name: "a credential source failing for an unknown reason",
    err: new CredentialSourceError("the AWS default credential chain", new Error("weird")),
    kind: "AwsAuth",
    retryable: false,
  },
  {
    name: "a credential source failing because STS throttled",
    err: new CredentialSourceError("role x", sdkError("Throttling", 400)),
    kind: "Throttled",
    code: "Throttling",
    retryable: true,
  },
  {
    name: "ThrottlingException",
    err: sdkError("ThrottlingException", 400),
    kind: "Throttled",
    retryable: true,
  },
  {
    name: "TooManyRequestsException",
    err: sdkError("TooManyRequestsException", 429),
    kind: "Throttled",
    retryable: true,
  },
  {
    name: "an unknown code with HTTP 429",
    err: sdkError("SomethingNew", 429),
    kind: "Throttled",
    retryable: true,
  },
  {
    name: "ECR's ServerException",
    err: sdkError("ServerException", 500),
    kind: "Unavailable",
    retryable: true,
  },
  {
    name: "an unknown code with HTTP 503",
    err: sdkError("SomethingNew", 503),
    kind: "Unavailable",
    retryable: true,
  },
  {
    name: "a 403 whose body is not an AWS error (moto answers JSON APIs with XML)",
    err: Object.assign(new SyntaxError(`Unexpected token '<', "<?xml vers"... is not valid JSON`), {
      $metadata: { httpStatusCode: 403 },
    }),
    kind: "AwsAuth",
    retryable: false,
    message: /^AWS answered HTTP 403 with a body that is not an AWS error; check the credentials/,
  },
  {
    name: "a 500 with an HTML body",
    err: Object.assign(new SyntaxError(`Unexpected token '<', "<!doctype "... is not valid JSON`), {
      $metadata: { httpStatusCode: 500 },
    }),
    kind: "Unavailable",
    retryable: true,
  },
  {
    name: "the SDK's request timeout",
    err: Object.assign(new Error("a request has exceeded the configured 300 ms requestTimeout."), {
      name: "TimeoutError",
      code: "ETIMEDOUT",
    }),
    kind: "Unavailable",
    code: "TimeoutError",
    retryable: true,
  },
  {
    name: "a refused connection",
    err: networkError("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:1"),
    kind: "Unavailable",
    code: "ECONNREFUSED",
    retryable: true,
    message: /^AWS endpoint unreachable \(ECONNREFUSED\)$/,
  },
  {
    name: "a socket hang up",
    err: networkError("ECONNRESET", "socket hang up"),
    kind: "Unavailable",
    code: "ECONNRESET",
    retryable: true,
  },
  {
    name: "a connection failure reported only in the cause",
    err: new Error("fetch failed", { cause: networkError("ECONNREFUSED", "connect ECONNREFUSED") }),
    kind: "Unavailable",
    retryable: true,
  },
  {
    name: "an endpoint host that does not resolve (no such region)",
    err: networkError("ENOTFOUND", "getaddrinfo ENOTFOUND api.ecr.eu-west-9.amazonaws.com"),
    kind: "InvalidInput",
    code: "ENOTFOUND",
    retryable: false,
  },
  {
    name: "a malformed region",
    err: new Error('Region not accepted: region="Not a region" is not a valid hostname component.'),
    kind: "InvalidInput",
    retryable: false,
  },
  {
    name: "a malformed endpoint",
    err: Object.assign(new TypeError("Invalid URL"), { code: "ERR_INVALID_URL" }),
    kind: "InvalidInput",
    retryable: false,
  },
  {
    name: "ECR's InvalidParameterException",
    err: sdkError("InvalidParameterException", 400),
    kind: "InvalidInput",
    retryable: false,
  },
  {
    name: "an unknown service error with HTTP 400",
    err: sdkError("BrandNewException", 400),
    kind: "Unknown",
    code: "BrandNewException",
    retryable: true,
  },
  { name: "a plain Error", err: new Error("something odd"), kind: "Unknown", retryable: true },
  {
    name: "a thrown string",
    err: "oops",
    kind: "Unknown",
    retryable: true,
    message: /^unexpected string thrown$/,
  },
];

describe("classifyAwsError", () => {
  for (const c of cases) {
    it(`classifies ${c.name} as ${c.kind}`, () => {
      const classified = classifyAwsError(c.err);
      assert.ok(classified instanceof AwsError);
      assert.equal(classified.kind, c.kind);
      assert.equal(classified.retryable, c.retryable);
      if (c.code !== undefined) assert.equal(classified.code, c.code);
      if (c.message !== undefined) assert.match(classified.message, c.message);
      assert.ok(!classified.message.includes(sessionToken), classified.message);
    });
  }

  it("starts the message with the context", () => {
    const classified = classifyAwsError(
      sdkError("ThrottlingException", 400, "Rate exceeded"),
      "ECR in eu-west-1",
    );
    assert.equal(classified.message, "ECR in eu-west-1: ThrottlingException: Rate exceeded");
    assert.equal(classified.httpStatus, 400);
  });

  it("does not repeat the failing source when the context already names it", () => {
    const role = "role arn:aws:iam::123456789012:role/ecr-pull assumed with the AWS default credential chain";
    const classified = classifyAwsError(
      new CredentialSourceError(
        role,
        sdkError("AccessDenied", 403, "not authorized to perform: sts:AssumeRole"),
      ),
      `ECR GetAuthorizationToken in eu-west-1 with ${role}`,
    );
    assert.equal(
      classified.message,
      `ECR GetAuthorizationToken in eu-west-1 with ${role}: getting credentials failed: AccessDenied: not authorized to perform: sts:AssumeRole`,
    );
  });

  it("returns an AwsError unchanged", () => {
    const original = new AwsError({ kind: "Throttled", message: "slow down" });
    assert.equal(classifyAwsError(original, "context"), original);
  });

  it("masks an access key id that AWS echoes and drops secret-shaped text", () => {
    const classified = classifyAwsError(
      sdkError(
        "AccessDeniedException",
        400,
        `Credential=${accessKeyId}/20300101/eu-west-1/ecr/aws4_request denied; secret ${secretAccessKey} token ${sessionToken}`,
      ),
    );
    assert.ok(!classified.message.includes(accessKeyId), classified.message);
    assert.ok(!classified.message.includes(secretAccessKey), classified.message);
    assert.ok(!classified.message.includes(sessionToken), classified.message);
    assert.match(classified.message, /Credential=AKIA\*\*\*\*MPLE\//);
  });

  it("keeps a long error message to one line of bounded length", () => {
    const classified = classifyAwsError(
      sdkError("AccessDenied", 403, `${"denied ".repeat(100)}\nsecond line`),
    );
    assert.ok(classified.message.length < 400, `${classified.message.length}`);
    assert.ok(!classified.message.includes("second line"));
  });
});

describe("redactSecrets", () => {
  it("keeps ARNs, hyphenated names and account ids readable", () => {
    const text = "arn:aws:iam::123456789012:role/ecr-creds-refresher-pull-role-production is not authorized";
    assert.equal(redactSecrets(text), text);
  });

  it("masks temporary access key ids too", () => {
    assert.equal(redactSecrets("key ASIAIOSFODNN7EXAMPLE used"), "key ASIA****MPLE used");
  });
});

describe("maskAccessKeyId", () => {
  it("shows the first and last four characters", () => {
    assert.equal(maskAccessKeyId(accessKeyId), "AKIA****MPLE");
  });

  it("hides a value too short to mask usefully", () => {
    assert.equal(maskAccessKeyId("AKIA1234"), "****");
  });
});
