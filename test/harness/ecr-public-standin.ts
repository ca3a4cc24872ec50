// A STAND-IN for the ECR Public API, because moto does not implement `ecr-public`. It answers only
// SpencerFrontendService.GetAuthorizationToken (the JSON 1.1 call behind `aws ecr-public
// get-login-password`) with a fixed password, the way ECR Public would, and rejects everything
// else. It checks that a call is SigV4-signed for ecr-public in us-east-1 but not the signature.
// Route the ECR Public client to it through the AWS proxy: proxy.routeTarget(ecrPublicTarget, endpoint).
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** The X-Amz-Target prefix of every ECR Public API call. */
export const ecrPublicTarget = "SpencerFrontendService";

export interface EcrPublicCall {
  accessKeyId: string;
  at: number;
}

export interface EcrPublicStandIn {
  readonly endpoint: string;
  /** The password inside every token it hands out. */
  readonly password: string;
  /** GetAuthorizationToken calls it answered with a token. */
  calls(): EcrPublicCall[];
  stop(): Promise<void>;
}

const tokenLifetimeMs = 12 * 3_600_000;

export async function startEcrPublicStandIn(
  password = "ecr-public-standin-token",
): Promise<EcrPublicStandIn> {
  const seen: EcrPublicCall[] = [];
  const server: Server = createServer((req, res) => {
    const reply = (status: number, body: object, errorType?: string): void => {
      const headers: Record<string, string> = { "content-type": "application/x-amz-json-1.1" };
      if (errorType !== undefined) headers["x-amzn-errortype"] = errorType;
      res.writeHead(status, headers);
      res.end(JSON.stringify(body));
    };
    req.resume();
    req.on("end", () => {
      if (req.headers["x-amz-target"] !== `${ecrPublicTarget}.GetAuthorizationToken`) {
        reply(400, { __type: "UnknownOperationException", message: "the stand-in only mints tokens" });
        return;
      }
      const scope = /Credential=([^/]+)\/[^/]+\/us-east-1\/ecr-public\/aws4_request/.exec(
        req.headers.authorization ?? "",
      );
      if (scope?.[1] === undefined) {
        reply(
          403,
          { __type: "IncompleteSignatureException", message: "not signed for ecr-public in us-east-1" },
          "IncompleteSignatureException",
        );
        return;
      }
      seen.push({ accessKeyId: scope[1], at: Date.now() });
      reply(200, {
        authorizationData: {
          authorizationToken: Buffer.from(`AWS:${password}`).toString("base64"),
          // awsJson1_1 timestamps are epoch seconds.
          expiresAt: (Date.now() + tokenLifetimeMs) / 1000,
        },
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    password,
    calls: () => [...seen],
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    },
  };
}
