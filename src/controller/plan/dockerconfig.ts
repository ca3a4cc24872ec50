// The .dockerconfigjson payload of a managed Secret.
import { compareStrings } from "../../order.ts";

export interface RegistryCredential {
  host: string;
  username: string;
  password: string;
}

/** Serialises credentials as a docker config; hosts sorted so equal input gives equal bytes. */
export function buildDockerConfigJson(credentials: readonly RegistryCredential[]): string {
  const auths: Record<string, { username: string; password: string; auth: string }> = {};
  for (const { host, username, password } of [...credentials].sort((a, b) =>
    compareStrings(a.host, b.host),
  )) {
    auths[host] = { username, password, auth: Buffer.from(`${username}:${password}`).toString("base64") };
  }
  return JSON.stringify({ auths });
}

export interface ParsedAuth {
  username?: unknown;
  password?: unknown;
}

/** The `auths` of a docker config, as found; empty when it is not one. */
export function parseAuths(dockerConfigJson: string): Record<string, ParsedAuth | undefined> {
  let auths: unknown;
  try {
    auths = (JSON.parse(dockerConfigJson) as { auths?: unknown } | null)?.auths;
  } catch (err) {
    if (err instanceof SyntaxError) return {};
    throw err;
  }
  return typeof auths === "object" && auths !== null ? (auths as Record<string, ParsedAuth | undefined>) : {};
}

/** The registry hosts of a docker config. */
export function hostsOf(dockerConfigJson: string): string[] {
  return Object.keys(parseAuths(dockerConfigJson));
}
