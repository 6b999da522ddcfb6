/**
 * Pull-only twins of the configured tokens, for CI jobs that must never push (pull requests): a
 * job that can push can poison the cache, because atticd signs whatever is pushed and every
 * developer trusts that signature.
 *
 * The twin keeps every cache pattern of its token, each with `pull` or nothing: atticd applies one
 * pattern per cache (the exact name, else the first glob that matches; FACTS.md, token claims), so
 * with the same patterns the same one applies as for the token, and it grants at most pull. Dropping
 * a pattern without pull would let another, broader one grant pull where the token had none.
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
