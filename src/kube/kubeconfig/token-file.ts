// A bearer token file, such as the in-cluster ServiceAccount token, re-read as kubelet rotates it.
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import type { Clock } from "../../clock.ts";
import type { Credential, RequestCredential } from "./credential.ts";
import { errorCode, KubeConfigError } from "./kubeconfig-error.ts";

/** Token files are re-read this often: kubelet rotates projected ServiceAccount tokens in place. */
export const TOKEN_REREAD_MS = 60_000;

/**
 * A bearer token file that may be rotated in place; re-read at most once per TOKEN_REREAD_MS. As in
 * client-go, a re-read that fails (file gone, unreadable or empty) keeps the last good token.
 */
export class TokenFile implements Credential {
  readonly #file: string;
  readonly #clock: Clock;
  #credential: RequestCredential;
  #readAt: number;

  constructor(file: string, where: string, clock: Clock) {
    this.#file = file;
    this.#clock = clock;
    // Read now, so a missing or empty file fails at start rather than on the first request.
    let content: string;
    try {
      content = readFileSync(file, "utf8");
    } catch (err) {
      throw new KubeConfigError(`${where}: cannot read ${file} (${errorCode(err)})`);
    }
    const token = content.trim();
    if (token === "") throw new KubeConfigError(`${where}: ${file} is empty`);
    this.#credential = { authorization: `Bearer ${token}` };
    this.#readAt = clock.now();
  }

  async current(): Promise<RequestCredential> {
    if (this.#clock.now() - this.#readAt >= TOKEN_REREAD_MS) {
      // Stamped before the read, so requests meanwhile keep the current token instead of reading too.
      this.#readAt = this.#clock.now();
      const token = await readFile(this.#file, "utf8").then(
        (content) => content.trim(),
        () => "",
      );
      const authorization = `Bearer ${token}`;
      if (token !== "" && authorization !== this.#credential.authorization) {
        this.#credential = { authorization };
      }
    }
    return this.#credential;
  }

  rejected(): void {
    // client-go does not re-read a token file on 401 either; the next scheduled re-read picks up a rotation.
  }
}
