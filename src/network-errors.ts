// Socket and undici error codes, shared by the Kubernetes and AWS error classifiers.

/**
 * Codes that mean the server could not be reached or did not answer. ENOTFOUND is not one of them:
 * whether a host name that does not resolve is an outage or a mistake depends on whose name it is.
 */
export const unreachableCodes: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
]);
