/**
 * The attic server as a site sees it: the caches declared in config, created through atticd's API
 * once the site's server answers, the tokens minted for CI, and the snippets clients paste into
 * nix.conf and netrc. Used by the aws and office sites alike.
 */
import * as pulumi from "@pulumi/pulumi";
import type * as tls from "@pulumi/tls";
import { parseHumantime } from "../../config/humantime";
import type { AtticConfig } from "../../config/schema";
import { AtticCache } from "./cacheProvider";
import { mintToken } from "./tokens";

export interface CacheOutput {
  substituter: string;
  publicKey: string;
}

export interface AtticServerArgs {
  attic: AtticConfig;
  /** The URL clients and this program use, ending with "/". */
  apiEndpoint: pulumi.Input<string>;
  signingKey: tls.PrivateKey;
  /** Resources that must exist before the API answers (the service, the host switch). */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
  /** How long cache creation waits for the server to answer. */
  waitSeconds?: number;
}

export class AtticServer extends pulumi.ComponentResource {
  public readonly endpoint: pulumi.Output<string>;
  public readonly caches: pulumi.Output<Record<string, CacheOutput>>;
  /** Token name → JWT. Secret. */
  public readonly tokens: pulumi.Output<Record<string, string>>;
  /** Lines for nix.conf: extra-substituters and extra-trusted-public-keys. */
  public readonly nixConf: pulumi.Output<string>;
  /** Token name → `machine <host> password <token>` for netrc-file. Secret. */
  public readonly netrc: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: AtticServerArgs, opts?: pulumi.ComponentResourceOptions) {
    // Args stay out of super(): they would be stored in the state and may hold Outputs (pulumi#23953).
    super("attic:attic:Server", name, {}, opts);

    this.endpoint = pulumi.output(args.apiEndpoint);

    const caches = args.attic.caches.map(
      (c) =>
        new AtticCache(
          `${name}-cache-${c.name}`,
          {
            apiEndpoint: args.apiEndpoint,
            name: c.name,
            isPublic: c.public,
            priority: c.priority,
            upstreamCacheKeyNames: c.upstreamCacheKeyNames,
            retentionSeconds: c.retention === undefined ? null : Math.round(parseHumantime(c.retention)!),
            destroyOnDelete: c.destroyOnDelete,
            signingKeyPem: args.signingKey.privateKeyPem,
            ...(args.waitSeconds === undefined ? {} : { waitSeconds: args.waitSeconds }),
          },
          { parent: this, dependsOn: args.dependsOn ?? [] },
        ),
    );
    this.caches = pulumi
      .all(caches.map((c) => pulumi.all([c.substituterEndpoint, c.publicKey])))
      .apply((pairs) =>
        Object.fromEntries(
          args.attic.caches.map((c, i) => [c.name, { substituter: pairs[i]![0], publicKey: pairs[i]![1] }]),
        ),
      );

    const tokens = Object.fromEntries(
      args.attic.tokens.map((t) => [t.name, args.signingKey.privateKeyPem.apply((pem) => mintToken(pem, t))]),
    );
    this.tokens = pulumi.secret(pulumi.all(tokens));

    this.nixConf = this.caches.apply((cs) => nixConfSnippet(Object.values(cs)));
    this.netrc = pulumi.secret(
      pulumi
        .all([this.endpoint, this.tokens])
        .apply(([endpoint, ts]) =>
          Object.fromEntries(Object.entries(ts).map(([k, jwt]) => [k, netrcLine(endpoint, jwt)])),
        ),
    );

    this.registerOutputs({
      endpoint: this.endpoint,
      caches: this.caches,
      tokens: this.tokens,
      nixConf: this.nixConf,
      netrc: this.netrc,
    });
  }
}

/** nix.conf lines for a list of caches, in order of preference. */
export function nixConfSnippet(caches: CacheOutput[]): string {
  return [
    `extra-substituters = ${caches.map((c) => c.substituter).join(" ")}`,
    `extra-trusted-public-keys = ${caches.map((c) => c.publicKey).join(" ")}`,
    "",
  ].join("\n");
}

/** The cache sites, nearest first: the office LAN, then the public NixOS host, then AWS. */
export const SITE_ORDER = ["office", "vps", "aws"] as const;
export type CacheSite = (typeof SITE_ORDER)[number];

/**
 * nix.conf lines for a stack with several cache sites, for the clients of `forSite`: that site and
 * every farther one (a client of the VPS or of AWS may not reach the office LAN). Nix tries
 * substituters by priority (lower first; list order only breaks ties), so each URL carries
 * `?priority=<cache priority + the site's rank among the stack's sites>`: for the same cache the
 * nearer site wins, and a cache's own priority still orders it against other caches and
 * cache.nixos.org (40).
 */
export function multiSiteNixConfSnippet(
  priorities: Record<string, number>,
  sites: Array<{ site: CacheSite; caches: Record<string, CacheOutput> }>,
  forSite: CacheSite,
): string {
  const ordered = [...sites].sort((a, b) => SITE_ORDER.indexOf(a.site) - SITE_ORDER.indexOf(b.site));
  const start = ordered.findIndex((s) => s.site === forSite);
  const entries = ordered
    .flatMap((s, rank) =>
      rank < start
        ? []
        : Object.entries(s.caches).map(([name, c]) => ({
            substituter: `${c.substituter}?priority=${priorities[name]! + rank}`,
            publicKey: c.publicKey,
            priority: priorities[name]! + rank,
          })),
    )
    .sort((a, b) => a.priority - b.priority);
  return nixConfSnippet(entries);
}

/** A netrc line for Nix's netrc-file: Nix sends the token as the password of the cache's host. */
export function netrcLine(endpoint: string, token: string): string {
  return `machine ${new URL(endpoint).hostname} password ${token}`;
}
