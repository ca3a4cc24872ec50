// An ECR client that answers GetAuthorizationToken itself, for unit tests of what is done with a
// token: nothing is sent, so no endpoint or credentials need to work.
import type { AuthorizationData, ECRClient } from "@aws-sdk/client-ecr";

export function answerAuthorizationToken(client: ECRClient, data: AuthorizationData): void {
  client.middlewareStack.add(
    () => () => Promise.resolve({ response: {}, output: { $metadata: {}, authorizationData: [data] } }),
    { step: "build" },
  );
}
