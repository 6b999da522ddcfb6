/**
 * Tokens read locally: decoded, verified with the stack's token public key (what the servers
 * verify with), checked for expiry and not-before. atticd treats a token it cannot verify as
 * anonymous without saying so, so this is the only place such a token shows.
 */
import { ATTIC_CLAIM, verifyJwt } from "../../../components/attic/tokens";
import { DAY, type SiteRun, date, dayCount } from "./site";

function decodeClaims(jwt: string): Record<string, unknown> | undefined {
  try {
    const claims: unknown = JSON.parse(Buffer.from(jwt.split(".")[1] ?? "", "base64url").toString());
    return claims && typeof claims === "object" ? (claims as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The permission letters a token grants on a cache: the exact name first, then globs, as atticd. */
export function grants(claims: Record<string, unknown>, cache: string): Record<string, number> {
  const caches = ((claims[ATTIC_CLAIM] as { caches?: unknown } | undefined)?.caches ?? {}) as Record<
    string,
    Record<string, number>
  >;
  if (caches[cache]) return caches[cache];
  for (const [pattern, perms] of Object.entries(caches)) {
    const re = new RegExp(`^${pattern.replace(/[-+.]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
    if (re.test(cache)) return perms;
  }
  return {};
}

/** One line per token; fills `run.tokens` for the checks that use them against the server. */
export function checkTokens(run: SiteRun): void {
  const { now, tokenKey } = run;
  for (const [name, jwt] of Object.entries(run.site.tokens)) {
    let claims = decodeClaims(jwt);
    let problem: string | undefined;
    if (!claims) problem = "is not a JWT";
    else if (tokenKey) {
      try {
        claims = verifyJwt(jwt, tokenKey).claims as unknown as Record<string, unknown>;
      } catch (err) {
        problem = `does not verify with the stack's tokenPublicKey (${(err as Error).message}): atticd would treat it as anonymous; re-run pulumi up and ci-secrets`;
      }
    }
    const c = claims ?? {};
    const exp = typeof c.exp === "number" ? c.exp : undefined;
    const nbf = typeof c.nbf === "number" ? c.nbf : undefined;
    if (!problem && exp !== undefined && exp < now)
      problem = `expired on ${date(exp)}: atticd treats it as anonymous; extend validUntil and pulumi up`;
    run.tokens.set(name, { jwt, claims: c, valid: !problem });

    const what = `token ${name}`;
    if (problem) {
      run.add(what, "fail", problem);
      continue;
    }
    const perms = Object.keys(run.site.caches)
      .map((cache) => {
        const g = grants(c, cache);
        return `${cache}: ${[g.r === 1 && "pull", g.w === 1 && "push"].filter(Boolean).join("+") || "nothing"}`;
      })
      .join(", ");
    const left = exp === undefined ? undefined : Math.floor((exp - now) / DAY);
    const life = exp === undefined ? "never expires" : `valid until ${date(exp)} (${dayCount(left!)})`;
    const sig = tokenKey ? "signature verifies" : "signature not checked: the outputs have no tokenPublicKey";
    const detail = `subject ${String(c.sub)}, ${life}, ${perms}; ${sig}`;
    if (nbf !== undefined && nbf > now) run.add(what, "warn", `${detail}; not valid before ${date(nbf)}`);
    else if (left !== undefined && left < run.opts.certWarnDays)
      run.add(what, "warn", `${detail}; expires in ${dayCount(left)}: extend validUntil`);
    else run.add(what, tokenKey ? "pass" : "warn", detail);
  }
}
