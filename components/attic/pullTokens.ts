/**
 * Pull-only twins of the configured tokens, for CI jobs that must never push (pull requests): a
 * job that can push can poison the cache, because atticd signs whatever is pushed and every
 * developer trusts that signature.
 *
 * The twin keeps every key of its token, each with `pull` or nothing. Minting expands keys into the
 * declared caches, each with the union of what the keys covering it grant (components/attic/
 * tokens.ts): the twin pulls exactly where its token pulls, and does nothing else.
 */
import type { TokenConfig } from "../../config/schema";

/** The token narrowed to pull, or undefined when it grants pull nowhere. */
export function pullOnly(token: TokenConfig): TokenConfig | undefined {
  const patterns = Object.entries(token.permissions);
  if (!patterns.some(([, perms]) => perms.includes("pull"))) return undefined;
  return {
    ...token,
    subject: `${token.subject}-pull`,
    permissions: Object.fromEntries(
      patterns.map(([pattern, perms]) => [pattern, perms.includes("pull") ? ["pull" as const] : []]),
    ),
  };
}
