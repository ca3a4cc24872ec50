// The pure core of the self-managed webhook TLS: from the certificates in the webhook Secret and
// the time, decide whether to issue a new CA, a new serving certificate, or nothing, so that the
// API server never meets a serving certificate it does not trust. A new CA is added to the trust
// bundle first; serving certificates move to it only once the API server has had time to see it.

/** What the shell reads from one certificate (node:crypto's X509Certificate). */
export interface CertificateFacts {
  /** SHA-256 fingerprint, as X509Certificate.fingerprint256 gives it. */
  fingerprint: string;
  notBefore: number;
  notAfter: number;
}

export interface ServingFacts extends CertificateFacts {
  /** Fingerprint of the trusted CA that signed it; undefined when none of them did. */
  issuer: string | undefined;
  /** Whether its subject alternative names cover every configured host. */
  coversHosts: boolean;
}

export interface TlsState {
  /** The trust bundle (the Secret's ca.crt), oldest first. */
  cas: CertificateFacts[];
  /** Fingerprint of the CA whose key the Secret holds (ca.key); undefined when there is none. */
  signingCa: string | undefined;
  serving: ServingFacts | undefined;
}

export interface RotationPolicy {
  servingValidityMs: number;
  caValidityMs: number;
  /** How long a new CA is trusted before serving certificates are issued from it. */
  propagationMs: number;
  /** How far notBefore is set back, for clocks that lag ours. */
  backdateMs: number;
}

/** The CA lives four times as long as a serving certificate; both are renewed with a third left. */
export function rotationPolicy(servingValidityMs: number): RotationPolicy {
  const skew = Math.min(60_000, Math.round(servingValidityMs / 10));
  return {
    servingValidityMs,
    caValidityMs: 4 * servingValidityMs,
    propagationMs: skew,
    backdateMs: skew,
  };
}

export interface TlsPlan {
  /** Issue a new signing CA and append it to the trust bundle. */
  newCa: boolean;
  /** Issue a serving certificate from the signing CA (the new one when newCa). */
  newServing: boolean;
  /** The CAs to keep trusting, oldest first, before a new one is appended: every unexpired one. */
  keepCas: string[];
  /** When to plan again at the latest. */
  recheckAt: number;
}

/**
 * `trustedSince(fingerprint)`: when the webhook configuration was first seen trusting that CA, or
 * undefined while it does not.
 */
export function planTls(
  state: TlsState,
  now: number,
  policy: RotationPolicy,
  trustedSince: (fingerprint: string) => number | undefined,
): TlsPlan {
  const live = state.cas.filter((ca) => ca.notAfter > now);
  const signing = live.find((ca) => ca.fingerprint === state.signingCa);
  const caRenewAt = signing === undefined ? now : signing.notAfter - policy.caValidityMs / 3;
  const newCa = now >= caRenewAt;
  const checks: number[] = live.map((ca) => ca.notAfter);
  if (!newCa) checks.push(caRenewAt);

  const serving = state.serving;
  const broken =
    serving === undefined ||
    serving.notAfter <= now ||
    !serving.coversHosts ||
    !live.some((ca) => ca.fingerprint === serving.issuer);
  let newServing = broken;
  if (serving !== undefined && !broken) {
    const renewAt = serving.notAfter - policy.servingValidityMs / 3;
    checks.push(renewAt, serving.notAfter);
    if (!newCa && signing !== undefined && serving.issuer === signing.fingerprint) {
      newServing = now >= renewAt;
    } else if (!newCa && signing !== undefined) {
      // Served from an older CA: move to the signing one once the API server has had time to trust it.
      const since = trustedSince(signing.fingerprint);
      const switchAt = since === undefined ? now + policy.propagationMs : since + policy.propagationMs;
      newServing = since !== undefined && now >= switchAt;
      checks.push(switchAt);
    }
  }
  const future = checks.filter((at) => at > now);
  return {
    newCa,
    newServing,
    keepCas: live.map((ca) => ca.fingerprint),
    recheckAt: future.length === 0 ? now + policy.propagationMs : Math.min(...future),
  };
}

/** notBefore and notAfter of a certificate issued now, never outliving its issuer. */
export function validityWindow(
  now: number,
  validityMs: number,
  policy: RotationPolicy,
  issuerNotAfter?: number,
): { notBefore: number; notAfter: number } {
  const notAfter = Math.min(now + validityMs, issuerNotAfter ?? Number.POSITIVE_INFINITY);
  return { notBefore: now - policy.backdateMs, notAfter };
}
