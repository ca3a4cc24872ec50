// ECR registry host names: which account, region and partition a host belongs to, and so which
// token it needs. Accepts exactly the hosts patterns.registryHost in crd.ts accepts.

import { patterns } from "./crd.ts";
import { invalidInput } from "./invalid-input.ts";
import type { InvalidInput } from "./invalid-input.ts";

export type Partition = "aws" | "aws-cn" | "aws-us-gov";

export interface PrivateRegistryHost {
  readonly kind: "private";
  readonly host: string;
  readonly accountId: string;
  readonly region: string;
  readonly partition: Partition;
  readonly fips: boolean;
}

export interface PublicRegistryHost {
  readonly kind: "public";
  readonly host: typeof publicHost;
  /** ECR Public hands out tokens in us-east-1 only. */
  readonly region: "us-east-1";
}

export type RegistryHost = PrivateRegistryHost | PublicRegistryHost;

const publicHost = "public.ecr.aws";
const forms =
  "<12-digit account>.dkr.ecr.<region>.amazonaws.com, <account>.dkr.ecr-fips.<region>.amazonaws.com, " +
  `<account>.dkr.ecr.cn-<...>.amazonaws.com.cn or ${publicHost}`;
const regionPattern = new RegExp(patterns.region);
const accountIdPattern = /^[0-9]{12}$/;
// Deliberately loose, so that a near miss gets a message about the part that is wrong.
const privateShape = /^(?:(.*)[.])?dkr[.](ecr|ecr-fips)[.]([^.]+)[.](amazonaws[.]com(?:[.]cn)?)$/;

export function parseRegistryHost(host: string): RegistryHost | InvalidInput {
  if (host === publicHost) return { kind: "public", host: publicHost, region: "us-east-1" };
  return parsePrivateRegistryHost(host);
}

/**
 * The registry of an account in a region, as in the proxyEndpoint of the token ECR returns for it.
 * Errors when accountId or region is malformed.
 */
export function defaultRegistryHost(accountId: string, region: string): PrivateRegistryHost | InvalidInput {
  const domain = region.startsWith("cn-") ? "amazonaws.com.cn" : "amazonaws.com";
  return parsePrivateRegistryHost(`${accountId}.dkr.ecr.${region}.${domain}`);
}

function parsePrivateRegistryHost(host: string): PrivateRegistryHost | InvalidInput {
  const problem = (detail: string): InvalidInput =>
    invalidInput(`registry host "${host}" ${detail}; expected ${forms}`);

  if (host === "") return invalidInput(`registry host is empty; expected ${forms}`);
  if (host.includes("://")) return problem("must not include a scheme such as https://");
  if (host.includes("/")) return problem("must be a host name without a path");
  if (host.includes(":")) return problem("must not include a port");
  if (host !== host.toLowerCase()) return problem("must be lower case");
  if (/^ecr(-fips)?[.]/.test(host) || host.startsWith("api.ecr.")) {
    return problem("is the ECR API endpoint, not a registry");
  }

  const match = privateShape.exec(host);
  if (match === null) return problem("is not an ECR registry");
  const [, account, service, hostRegion = "", domain] = match;

  if (account === undefined) return problem("has no account id");
  if (!accountIdPattern.test(account)) return problem(`has account id "${account}", which is not 12 digits`);
  if (!regionPattern.test(hostRegion)) return problem(`has "${hostRegion}", which is not an AWS region`);
  if (hostRegion.includes("-iso")) return problem("is in an AWS ISO partition, which is not supported");

  const china = hostRegion.startsWith("cn-");
  const fips = service === "ecr-fips";
  if (china && domain !== "amazonaws.com.cn") return problem("is in a China region, so must end in .com.cn");
  if (!china && domain === "amazonaws.com.cn") return problem("ends in .com.cn but is not in a China region");
  if (china && fips) return problem("asks for FIPS, which ECR does not offer in China regions");

  const partition: Partition = china ? "aws-cn" : hostRegion.startsWith("us-gov-") ? "aws-us-gov" : "aws";
  return { kind: "private", host, accountId: account, region: hostRegion, partition, fips };
}
