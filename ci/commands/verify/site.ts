/**
 * What verify knows about a stack and a site while it checks them, and how a check is recorded.
 * The outputs' shape is index.ts's: per site `endpoint`, `caches` {substituter, publicKey, public,
 * priority}, `tokens` (name → JWT), `nixConf`; at the top `tokenPublicKey`.
 */
export type Status = "pass" | "fail" | "warn" | "skip";

export interface Check {
  site: string;
  check: string;
  status: Status;
  detail: string;
}

export interface CacheOut {
  substituter: string;
  publicKey: string;
  /** Absent in outputs from before verify existed. */
  public?: boolean;
  priority?: number;
}

export interface SiteOut {
  endpoint: string;
  caches: Record<string, CacheOut>;
  tokens: Record<string, string>;
  nixConf?: string;
}

export interface Options {
  /** Sites to check; all when empty. */
  sites?: string[];
  /** An extra trusted CA certificate (PEM). */
  ca?: string;
  certWarnDays: number;
  /** How long `GET /` is retried. */
  waitSeconds: number;
}

export class UsageError extends Error {}

/** A token as read locally: its claims, and whether it verified and is in date. */
export interface TokenFacts {
  jwt: string;
  claims: Record<string, unknown>;
  valid: boolean;
}

/** One site being checked. */
export interface SiteRun {
  name: string;
  site: SiteOut;
  /** Every site of the outputs (the office snippet lists AWS's caches too). */
  all: Record<string, SiteOut>;
  opts: Options;
  /** Node's roots plus --ca, or undefined for Node's roots alone. */
  trust: string[] | undefined;
  tokenKey: string | undefined;
  /** Seconds since the epoch when the site's checks started. */
  now: number;
  tokens: Map<string, TokenFacts>;
  add(check: string, status: Status, detail: string): void;
}

export const DAY = 86_400;
export const date = (epoch: number) => new Date(epoch * 1000).toISOString().replace(/\.000Z$/, "Z");
export const dayCount = (n: number) => `${n} day${n === 1 ? "" : "s"}`;

/** The site objects among the outputs: anything with an endpoint and caches. */
export function sitesOf(outputs: Record<string, unknown>): Record<string, SiteOut> {
  const sites: Record<string, SiteOut> = {};
  for (const [name, v] of Object.entries(outputs)) {
    const o = v as Partial<SiteOut> | null;
    if (
      o &&
      typeof o === "object" &&
      typeof o.endpoint === "string" &&
      o.caches &&
      typeof o.caches === "object"
    )
      sites[name] = { tokens: {}, ...o } as SiteOut;
  }
  return sites;
}
