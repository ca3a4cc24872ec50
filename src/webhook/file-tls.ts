// A serving certificate from files (tls.crt and tls.key in a directory), such as a cert-manager
// Secret mounted as a volume: read at start and again whenever the kubelet has updated them. The
// CA bundle is then someone else's job (cert-manager's CA injector).
import { readFile } from "node:fs/promises";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { join } from "node:path";
import type { Clock, TimerHandle } from "../clock.ts";
import type { Logger } from "../observability/logger.ts";
import type { ServingCertificate, TlsSource } from "./server.ts";
import { SERVING_CERT_KEY, SERVING_KEY_KEY } from "./tls-secret.ts";

/** The kubelet refreshes mounted Secrets about once a minute; this is well within that. */
const rereadMs = 10_000;

export class FileTls implements TlsSource {
  readonly #dir: string;
  readonly #clock: Clock;
  readonly #log: Logger;
  #listener: ((cert: ServingCertificate) => void) | undefined;
  #published: string | undefined;
  #timer: TimerHandle | undefined;
  #stopped = false;
  #reading: Promise<void> | undefined;

  constructor(dir: string, clock: Clock, log: Logger) {
    this.#dir = dir;
    this.#clock = clock;
    this.#log = log;
  }

  onCertificate(listener: (cert: ServingCertificate) => void): void {
    this.#listener = listener;
  }

  start(): void {
    this.kick();
  }

  kick(): void {
    if (this.#stopped || this.#reading !== undefined) return;
    this.#reading = this.#read().finally(() => {
      this.#reading = undefined;
      if (this.#stopped) return;
      if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
      this.#timer = this.#clock.setTimer(() => {
        this.#timer = undefined;
        this.kick();
      }, rereadMs);
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    await this.#reading;
  }

  async #read(): Promise<void> {
    let certPem: string;
    let keyPem: string;
    try {
      [certPem, keyPem] = await Promise.all([
        readFile(join(this.#dir, SERVING_CERT_KEY), "utf8"),
        readFile(join(this.#dir, SERVING_KEY_KEY), "utf8"),
      ]);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      this.#log.warn({ dir: this.#dir, code }, "cannot read the webhook's serving certificate files yet");
      return;
    }
    if (certPem === this.#published) return;
    let notAfter: number;
    try {
      const cert = new X509Certificate(certPem);
      // Read between the kubelet's updates of the two files, they may not belong together yet.
      if (!cert.checkPrivateKey(createPrivateKey(keyPem))) {
        this.#log.info(
          { dir: this.#dir },
          "the serving certificate and key do not match yet; reading again soon",
        );
        return;
      }
      notAfter = Date.parse(cert.validTo);
    } catch (err) {
      if (!(err instanceof Error)) throw err;
      this.#log.warn(
        { dir: this.#dir },
        `${SERVING_CERT_KEY} or ${SERVING_KEY_KEY} is not a PEM certificate or key`,
      );
      return;
    }
    this.#published = certPem;
    this.#listener?.({ certPem, keyPem, notAfter });
  }
}
