/**
 * What verify knows about a stack and a site while it checks them, and how a check is recorded.
 * The outputs are the contract's (components/outputs.ts): per cache site `endpoint`, `caches`
 * {substituter, publicKey, public, priority}, `tokens` (name → JWT), `nixConf`; at the top
 * `tokenPublicKey`.
 */
import type { CacheOutputs, CacheSiteOutputs, StackOutputs } from "../../../components/outputs";

export type Status = "pass" | "fail" | "warn" | "skip";

export interface Check {
  site: string;
  check: string;
  status: Status;
  detail: string;
}

export type CacheOut = CacheOutputs;
export type SiteOut = CacheSiteOutputs;

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

/** The cache sites among the outputs, by name. */
export function sitesOf(outputs: StackOutputs): Record<string, SiteOut> {
  const sites: Record<string, SiteOut> = {};
  for (const name of ["aws", "office", "vps"] as const) {
    const site = outputs[name];
    if (site) sites[name] = site;
  }
  return sites;
}
