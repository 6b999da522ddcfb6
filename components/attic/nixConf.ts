/**
 * The nix.conf and netrc lines clients paste, from a stack's cache outputs. Pure: used by the
 * program (index.ts, attic/server.ts) and by `npm run verify`, which checks a deployed stack's
 * snippet against the same rule.
 */

export interface Substituter {
  substituter: string;
  publicKey: string;
}

/** nix.conf lines for a list of caches, in order of preference. */
export function nixConfSnippet(caches: Substituter[]): string {
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
 * The substituters for the clients of `forSite` in a stack with several cache sites: that site and
 * every farther one (a client of the VPS or of AWS may not reach the office LAN). Nix tries
 * substituters by priority (lower first; list order only breaks ties), so each URL carries
 * `?priority=<cache priority + the site's rank among the stack's sites>`: for the same cache the
 * nearer site wins, and a cache's own priority still orders it against other caches and
 * cache.nixos.org (40).
 */
export function multiSiteSubstituters(
  sites: Array<{ site: string; caches: Record<string, Substituter & { priority?: number }> }>,
  forSite: string,
): Substituter[] {
  const rank = (s: string) => SITE_ORDER.indexOf(s as CacheSite);
  const ordered = sites.filter((s) => rank(s.site) >= 0).sort((a, b) => rank(a.site) - rank(b.site));
  const start = ordered.findIndex((s) => s.site === forSite);
  return ordered
    .flatMap((s, i) =>
      i < start
        ? []
        : Object.values(s.caches).map((c) => {
            const priority = (c.priority ?? 0) + i;
            return { substituter: `${c.substituter}?priority=${priority}`, publicKey: c.publicKey, priority };
          }),
    )
    .sort((a, b) => a.priority - b.priority)
    .map(({ substituter, publicKey }) => ({ substituter, publicKey }));
}

export const multiSiteNixConfSnippet = (
  sites: Parameters<typeof multiSiteSubstituters>[0],
  forSite: string,
): string => nixConfSnippet(multiSiteSubstituters(sites, forSite));

/** A netrc line for Nix's netrc-file: Nix sends the token as the password of the cache's host. */
export function netrcLine(endpoint: string, token: string): string {
  return `machine ${new URL(endpoint).hostname} password ${token}`;
}
