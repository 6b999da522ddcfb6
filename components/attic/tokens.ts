/**
 * Attic access tokens: RS256 JWTs minted here with the stack's signing key, in the form atticd's
 * token crate expects (token/src/lib.rs). atticd treats an invalid token as anonymous without
 * saying why, so the claims are built exactly: permission letters with the integer 1.
 *
 * atticd resolves a token's permissions on a cache by its exact name first, then by the FIRST
 * matching glob in the claim's order — not the union of the globs that match (and attic builds
 * before 2024-05-25 kept the claim in an unordered map). So the claim carries no globs: every key
 * of the config's `permissions` is expanded here into exact entries, one per declared cache, each
 * with the union of the permissions of every key that covers it (config/attic.ts, grantsByCache).
 * What the config says is then what atticd grants, in every attic version. A glob thus covers the
 * caches declared when the token is minted: declaring another cache re-mints the tokens it matches.
 *
 * RSASSA-PKCS1-v1_5 signatures are deterministic: the same key and claims give the same token, so an
 * unchanged stack mints byte-identical tokens and `pulumi up` shows no diff.
 */
import { createPrivateKey, createPublicKey, sign, verify } from "node:crypto";
import { epochSeconds, expiry, grantsByCache, type Permission, type TokenConfig } from "../../config/schema";

export const ATTIC_CLAIM = "https://jwt.attic.rs/v1";

/**
 * The largest RSA modulus atticd accepts for its token key: jwt-simple 0.11.9 checks keys with the
 * rsa crate 0.7.2, `check_public_with_max_size(.., 4096)`; a larger key stops atticd at startup.
 */
export const MAX_RSA_BITS = 4096;

/** Permission name in the config → claim letter in the token. */
export const PERMISSION_LETTERS: Record<Permission, string> = {
  pull: "r",
  push: "w",
  delete: "d",
  createCache: "cc",
  configureCache: "cr",
  configureRetention: "cq",
  destroyCache: "cd",
};
const LETTER_ORDER = Object.values(PERMISSION_LETTERS);

export interface AtticClaims {
  sub: string;
  exp?: number;
  nbf?: number;
  iat?: number;
  [ATTIC_CLAIM]: { caches: Record<string, Record<string, 1>> };
}

const b64url = (data: Buffer | string): string => Buffer.from(data).toString("base64url");

/** The claim for a token's permissions over the declared caches: exact cache names only. */
export function permissionClaim(
  permissions: Partial<Record<string, readonly Permission[]>>,
  declaredCaches: readonly string[],
): AtticClaims[typeof ATTIC_CLAIM] {
  const entries = [...grantsByCache(permissions, declaredCaches)].map(([cache, granted]) => {
    const letters = new Set([...granted].map((p) => PERMISSION_LETTERS[p]));
    return [
      cache,
      Object.fromEntries(LETTER_ORDER.filter((l) => letters.has(l)).map((l) => [l, 1 as const])),
    ];
  });
  // fromEntries defines own properties: a cache named like an Object.prototype member stays data.
  return { caches: Object.fromEntries(entries) as Record<string, Record<string, 1>> };
}

export function tokenClaims(token: TokenConfig, declaredCaches: readonly string[]): AtticClaims {
  const claims: AtticClaims = {
    sub: token.subject,
    exp: expiry(token.validUntil),
    [ATTIC_CLAIM]: permissionClaim(token.permissions, declaredCaches),
  };
  if (token.notBefore) claims.nbf = epochSeconds(token.notBefore);
  return claims;
}

/**
 * atticd reads its RS256 key with jwt-simple 0.11.9, whose rsa crate (0.7.2) refuses a modulus over
 * 4096 bits: the server would not start. Checked wherever the key signs.
 */
export function assertSigningKeySize(privateKeyPem: string): void {
  const bits = createPrivateKey(privateKeyPem).asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits > MAX_RSA_BITS)
    throw new Error(
      `the token signing key is ${bits}-bit RSA; atticd (jwt-simple 0.11.9) refuses keys over ${MAX_RSA_BITS} bits and would not start: use a key of at most ${MAX_RSA_BITS} bits`,
    );
}

/** Signs claims as a compact RS256 JWT. */
export function signJwt(privateKeyPem: string, claims: AtticClaims): string {
  assertSigningKeySize(privateKeyPem);
  const header = b64url(JSON.stringify({ alg: "RS256", typ: "JWT" }));
  const payload = b64url(JSON.stringify(claims));
  const signature = sign("sha256", Buffer.from(`${header}.${payload}`), createPrivateKey(privateKeyPem));
  return `${header}.${payload}.${b64url(signature)}`;
}

/** The token for one `attic-infra:attic.tokens` entry, over the caches the stack declares. */
export function mintToken(
  privateKeyPem: string,
  token: TokenConfig,
  declaredCaches: readonly string[],
): string {
  return signJwt(privateKeyPem, tokenClaims(token, declaredCaches));
}

/** Verifies an RS256 JWT with a public key and returns its claims; throws when it does not verify. */
export function verifyJwt(token: string, publicKeyPem: string): { header: unknown; claims: AtticClaims } {
  const [h, p, s, ...rest] = token.split(".");
  if (!h || !p || !s || rest.length > 0) throw new Error("not a compact JWT");
  const ok = verify(
    "sha256",
    Buffer.from(`${h}.${p}`),
    createPublicKey(publicKeyPem),
    Buffer.from(s, "base64url"),
  );
  if (!ok) throw new Error("signature does not verify");
  return {
    header: JSON.parse(Buffer.from(h, "base64url").toString()),
    claims: JSON.parse(Buffer.from(p, "base64url").toString()),
  };
}
