// The .dockerconfigjson payload of a managed Secret.

export interface RegistryCredential {
  host: string;
  username: string;
  password: string;
}

/** Serialises credentials as a docker config; hosts sorted so equal input gives equal bytes. */
export function buildDockerConfigJson(credentials: readonly RegistryCredential[]): string {
  const auths: Record<string, { username: string; password: string; auth: string }> = {};
  for (const { host, username, password } of [...credentials].sort((a, b) => a.host.localeCompare(b.host))) {
    auths[host] = { username, password, auth: Buffer.from(`${username}:${password}`).toString("base64") };
  }
  return JSON.stringify({ auths });
}
