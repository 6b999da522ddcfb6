/**
 * Tokens read locally: decoded, verified with the stack's token public key (what the servers
 * verify with), checked for expiry and not-before. atticd treats a token it cannot verify as
 * anonymous without saying so, so this is the only place such a token shows.
 */
import { ATTIC_CLAIM, verifyJwt } from "../../../components/attic/tokens";
import { CACHE_NAME_PATTERN, globMatches } from "../../../config/schema";
import { DAY, type SiteRun, date, dayCount } from "./site";

/** The permission letters of atticd's CachePermission (token/src/lib.rs). */
const LETTERS = ["r", "w", "d", "cc", "cr", "cq", "cd"];

function decodeClaims(jwt: string): Record<string, unknown> | undefined {
  try {
    const claims: unknown = JSON.parse(Buffer.from(jwt.split(".")[1] ?? "", "base64url").toString());
    return claims && typeof claims === "object" ? (claims as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A JSON number as written (so that 1.0 is not 1), through JSON.parse's source text access. */
class Written {
  constructor(readonly text: string) {}
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Written);

/**
 * Why atticd would ignore this token and treat whoever holds it as anonymous, or undefined. The
 * claims are read as atticd's token crate deserialises them (token/src/lib.rs with jwt-simple
 * 0.11.9): any claim it cannot read drops the whole token, without a word outside its debug log.
 */
export function whyAtticdIgnores(jwt: string): string | undefined {
  const [h = "", p = ""] = jwt.split(".");
  let header: unknown;
  let claims: unknown;
  try {
    header = JSON.parse(Buffer.from(h, "base64url").toString());
    claims = JSON.parse(
      Buffer.from(p, "base64url").toString(),
      (_k, v: unknown, ctx?: { source?: string }) =>
        typeof v === "number" ? new Written(ctx?.source ?? String(v)) : v,
    );
  } catch {
    return "its header or claims are not JSON";
  }
  if (!isObject(header) || header.alg !== "RS256") return "its header's alg is not RS256";
  const typ = isObject(header) ? header.typ : undefined;
  if (typ !== undefined && !(typeof typ === "string" && /^(.*\+)?JWT$/.test(typ.toUpperCase())))
    return `its header's typ ${JSON.stringify(typ)} is not JWT`;
  if (!isObject(claims)) return "its claims are not a JSON object";
  for (const t of ["exp", "nbf", "iat"])
    if (claims[t] !== undefined && !(claims[t] instanceof Written)) return `its ${t} is not a number`;
  const access = claims[ATTIC_CLAIM];
  if (!isObject(access) || !isObject(access.caches)) return `it has no ${ATTIC_CLAIM} claim with caches`;
  for (const [pattern, perm] of Object.entries(access.caches)) {
    if (!CACHE_NAME_PATTERN.test(pattern))
      return `its permission key ${JSON.stringify(pattern)} is not a cache name or a glob atticd reads (only * is a wildcard)`;
    if (!isObject(perm)) return `the permissions of ${JSON.stringify(pattern)} are not an object`;
    for (const l of LETTERS) {
      const v = perm[l];
      if (v !== undefined && !(v instanceof Written && (v.text === "0" || v.text === "1")))
        return `"${l}" on ${JSON.stringify(pattern)} is ${v instanceof Written ? v.text : JSON.stringify(v)}, not the integer 0 or 1`;
    }
  }
  return undefined;
}

/**
 * The permission letters a token grants on a cache as atticd resolves them
 * (get_permission_for_cache): the exact name first, then the FIRST matching key in the claim's
 * order — not the union of the keys that match.
 */
export function grants(claims: Record<string, unknown>, cache: string): Record<string, number> {
  const caches = (claims[ATTIC_CLAIM] as { caches?: unknown } | undefined)?.caches;
  if (!isObject(caches)) return {};
  const entry = Object.hasOwn(caches, cache)
    ? caches[cache]
    : Object.entries(caches).find(([pattern]) => globMatches(pattern, cache))?.[1];
  return isObject(entry) ? (entry as Record<string, number>) : {};
}

/** Whether atticd lets the holder see the cache at all ("discovery"): any permission on it. */
export const discovers = (g: Record<string, number>): boolean => LETTERS.some((l) => g[l] === 1);

/** One line per token; fills `run.tokens` for the checks that use them against the server. */
export function checkTokens(run: SiteRun): void {
  const { now, tokenKey } = run;
  for (const [name, jwt] of Object.entries(run.site.tokens)) {
    let claims = decodeClaims(jwt);
    let problem: string | undefined;
    const ignored = claims && whyAtticdIgnores(jwt);
    if (!claims) problem = "is not a JWT";
    else if (ignored)
      problem = `atticd would ignore it and treat every request with it as anonymous: ${ignored}; fix the token's permissions in attic-infra:attic.tokens, pulumi up, then re-run ci-secrets`;
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
