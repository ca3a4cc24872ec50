// The error a kubeconfig that cannot be used raises, at start or when a credential is renewed.

/** A kubeconfig that cannot be used. The message names the file, entry and field, never a secret. */
export class KubeConfigError extends Error {
  override readonly name = "KubeConfigError";
}

/** The code of a failed file read (ENOENT, EACCES ...), which is all a message needs of the error. */
export function errorCode(err: unknown): string {
  return err instanceof Error && "code" in err && typeof err.code === "string" ? err.code : "unknown error";
}
