// Which proxy a request to the API server goes through, decided as client-go decides it: the
// cluster's proxy-url for every host, else Go's http.ProxyFromEnvironment (HTTPS_PROXY or
// HTTP_PROXY by the server's scheme, NO_PROXY, and never for localhost or a loopback address).
import { BlockList, isIP } from "node:net";
import { KubeConfigError } from "./kubeconfig-error.ts";

const proxySchemes = ["http:", "https:"];

/** A proxy-url from a kubeconfig, checked; client-go also takes socks5, which this client does not. */
export function parseProxyUrl(value: string, where: string): URL {
  const url = URL.canParse(value) ? new URL(value) : undefined;
  if (url?.protocol === "socks5:" || url?.protocol === "socks5h:") {
    throw new KubeConfigError(
      `${where}: proxy-url: SOCKS5 proxies are not supported; use an http:// or https:// proxy`,
    );
  }
  if (url === undefined || !proxySchemes.includes(url.protocol) || url.hostname === "") {
    throw new KubeConfigError(`${where}: proxy-url must be an http:// or https:// URL`);
  }
  return url;
}

/** The first of the variables that is set and not empty, as Go's getEnvAny. */
function envAny(env: Readonly<Record<string, string | undefined>>, ...names: string[]): string {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value !== "") return value;
  }
  return "";
}

/** A proxy variable's value as Go reads it: a bare host:port means http://host:port. */
function proxyFromEnvValue(value: string, name: string): URL {
  const url = URL.canParse(value) ? new URL(value) : undefined;
  if (url !== undefined && proxySchemes.includes(url.protocol) && url.hostname !== "") return url;
  const withScheme = `http://${value}`;
  if (URL.canParse(withScheme) && new URL(withScheme).hostname !== "") return new URL(withScheme);
  throw new KubeConfigError(`${name} is not a proxy URL this client can use (http:// or https://)`);
}

const loopback = new BlockList();
loopback.addSubnet("127.0.0.0", 8, "ipv4");
loopback.addAddress("::1", "ipv6");

function ipFamily(host: string): "ipv4" | "ipv6" | undefined {
  const family = isIP(host);
  return family === 4 ? "ipv4" : family === 6 ? "ipv6" : undefined;
}

/** Splits "host:port", "[v6]:port" or a bare host; the port is "" when absent. */
function splitHostPort(entry: string): { host: string; port: string } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed !== null) return { host: bracketed[1] ?? "", port: bracketed[2] ?? "" };
  const colon = entry.lastIndexOf(":");
  if (colon > 0 && entry.indexOf(":") === colon && /^\d+$/.test(entry.slice(colon + 1))) {
    return { host: entry.slice(0, colon), port: entry.slice(colon + 1) };
  }
  return { host: entry, port: "" };
}

/** Whether NO_PROXY exempts host:port, by Go's rules (golang.org/x/net/http/httpproxy). */
export function noProxyMatches(noProxy: string, host: string, port: string): boolean {
  const address = host.toLowerCase();
  const family = ipFamily(address);
  for (const raw of noProxy.split(",")) {
    const entry = raw.trim().toLowerCase();
    if (entry === "") continue;
    if (entry === "*") return true;
    const cidr = /^(.+)\/(\d{1,3})$/.exec(entry);
    if (cidr !== null) {
      const [, network = "", prefix = ""] = cidr;
      const networkFamily = ipFamily(network);
      if (networkFamily !== undefined && family !== undefined) {
        const list = new BlockList();
        list.addSubnet(network, Number(prefix), networkFamily);
        if (list.check(address, family)) return true;
      }
      continue;
    }
    const { host: entryHost, port: entryPort } = splitHostPort(entry);
    if (entryHost === "") continue;
    const portMatches = entryPort === "" || entryPort === port;
    if (ipFamily(entryHost) !== undefined) {
      if (family !== undefined && portMatches && sameIp(entryHost, address)) return true;
      continue;
    }
    // "example.com" matches it and its subdomains; ".example.com" and "*.example.com" only subdomains.
    const suffix = entryHost.startsWith("*.") ? entryHost.slice(1) : entryHost;
    const matchesHost = !suffix.startsWith(".");
    const dotted = matchesHost ? `.${suffix}` : suffix;
    if ((address.endsWith(dotted) || (matchesHost && address === suffix)) && portMatches) return true;
  }
  return false;
}

function sameIp(a: string, b: string): boolean {
  const family = ipFamily(a);
  if (family === undefined || ipFamily(b) !== family) return false;
  const list = new BlockList();
  list.addAddress(a, family);
  return list.check(b, family);
}

/**
 * The proxy for requests to `server`: `proxyUrl` when the kubeconfig sets one, else the environment's,
 * or undefined for a direct connection.
 */
export function proxyFor(
  server: URL,
  proxyUrl: URL | undefined,
  env: Readonly<Record<string, string | undefined>>,
): URL | undefined {
  if (proxyUrl !== undefined) return proxyUrl;
  const https = server.protocol === "https:";
  const name = https ? "HTTPS_PROXY" : "HTTP_PROXY";
  const value = envAny(env, name, name.toLowerCase());
  if (value === "") return undefined;
  const host = server.hostname.replace(/^\[(.*)\]$/, "$1");
  const family = ipFamily(host);
  if (host === "localhost" || (family !== undefined && loopback.check(host, family))) return undefined;
  const port = server.port === "" ? (https ? "443" : "80") : server.port;
  if (noProxyMatches(envAny(env, "NO_PROXY", "no_proxy"), host, port)) return undefined;
  return proxyFromEnvValue(value, name);
}
