/**
 * The pull-only tokens (outputs `pullTokens`, components/attic/pullTokens.ts), read locally: each
 * must verify with the stack's key and grant pull alone, since it is the one pull-request jobs get
 * (`ATTIC_PULL_TOKEN`). A pull token that could push would let unreviewed code poison the cache.
 */
import { ATTIC_CLAIM, verifyJwt } from "../../../components/attic/tokens";
import { type SiteRun, date } from "./site";

export function checkPullTokens(run: SiteRun): void {
  for (const [name, jwt] of Object.entries(run.site.pullTokens ?? {})) {
    const what = `pull token ${name}`;
    let claims: Record<string, unknown>;
    try {
      claims = run.tokenKey
        ? (verifyJwt(jwt, run.tokenKey).claims as unknown as Record<string, unknown>)
        : (JSON.parse(Buffer.from(jwt.split(".")[1] ?? "", "base64url").toString()) as Record<
            string,
            unknown
          >);
    } catch (err) {
      run.add(
        what,
        "fail",
        `does not verify with the stack's tokenPublicKey (${(err as Error).message}): re-run pulumi up and ci-secrets`,
      );
      continue;
    }
    const caches = ((claims[ATTIC_CLAIM] as { caches?: unknown } | undefined)?.caches ?? {}) as Record<
      string,
      Record<string, number>
    >;
    const beyondPull = Object.entries(caches).flatMap(([pattern, perms]) =>
      Object.keys(perms)
        .filter((letter) => letter !== "r")
        .map((letter) => `${letter} on ${pattern}`),
    );
    const exp = typeof claims.exp === "number" ? claims.exp : undefined;
    if (beyondPull.length > 0)
      run.add(
        what,
        "fail",
        `grants ${beyondPull.join(", ")}: pull-request jobs get this token, so unreviewed code could write to the cache; it must grant pull alone (run pulumi up, then ci-secrets)`,
      );
    else if (exp !== undefined && exp < run.now)
      run.add(what, "fail", `expired on ${date(exp)}: extend the token's validUntil and pulumi up`);
    else
      run.add(
        what,
        run.tokenKey ? "pass" : "warn",
        `subject ${String(claims.sub)}, pull only on ${Object.entries(caches)
          .filter(([, p]) => p.r === 1)
          .map(([c]) => c)
          .join(
            ", ",
          )}${run.tokenKey ? "; signature verifies" : "; signature not checked: the outputs have no tokenPublicKey"}`,
      );
  }
}
