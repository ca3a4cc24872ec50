// What a request carries to authenticate, and the fixed kinds: none, or a token or Basic pair from
// the kubeconfig. A token file (token-file.ts) and an exec plugin (exec-plugin.ts) renew theirs.

/** The credential of one request. Providers hand out the same object until the credential changes. */
export interface RequestCredential {
  /** The Authorization header value. */
  authorization?: string;
  /** A client certificate and key (PEM) that replace the kubeconfig's for this request. */
  cert?: string;
  key?: string;
}

export interface Credential {
  current(): Promise<RequestCredential>;
  /** The server answered 401 Unauthorized to a request that carried `used`. */
  rejected(used: RequestCredential): void;
}

const anonymous: RequestCredential = {};

export const noCredential: Credential = {
  current: () => Promise.resolve(anonymous),
  rejected: () => undefined,
};

export function fixedCredential(authorization: string): Credential {
  const credential: RequestCredential = { authorization };
  return { current: () => Promise.resolve(credential), rejected: () => undefined };
}
