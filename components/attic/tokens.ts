/**
 * Attic access tokens: RS256 JWTs minted here with the stack's signing key, in the form atticd's
 * token crate expects (token/src/lib.rs). atticd treats an invalid token as anonymous without
 * saying why, so the claims are built exactly: permission letters with the integer 1.
 *
 * RSASSA-PKCS1-v1_5 signatures are deterministic: the same key and claims give the same token, so an
 * unchanged stack mints byte-identical tokens and `pulumi up` shows no diff.
 */
import { createPrivateKey, createPublicKey, sign, verify } from "node:crypto";
import { epochSeconds, expiry, type Permission, type TokenConfig } from "../../config/schema";

export const ATTIC_CLAIM = "https://jwt.attic.rs/v1";

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

export function permissionClaim(
  permissions: Partial<Record<string, readonly Permission[]>>,
): AtticClaims[typeof ATTIC_CLAIM] {
  const caches: Record<string, Record<string, 1>> = {};
  for (const pattern of Object.keys(permissions).sort()) {
    const letters = new Set((permissions[pattern] ?? []).map((p) => PERMISSION_LETTERS[p]));
    caches[pattern] = Object.fromEntries(
      LETTER_ORDER.filter((l) => letters.has(l)).map((l) => [l, 1 as const]),
    );
  }
  return { caches };
}

export function tokenClaims(token: TokenConfig): AtticClaims {
  const claims: AtticClaims = {
    sub: token.subject,
    exp: expiry(token.validUntil),
    [ATTIC_CLAIM]: permissionClaim(token.permissions),
  };
  if (token.notBefore) claims.nbf = epochSeconds(token.notBefore);
  return claims;
}

/** Signs claims as a compact RS256 JWT. */
export function signJwt(privateKeyPem: string, claims: AtticClaims): string {
  const header = b64url(JSON.stringify({ alg: "RS256", typ: "JWT" }));
  const payload = b64url(JSON.stringify(claims));
  const signature = sign("sha256", Buffer.from(`${header}.${payload}`), createPrivateKey(privateKeyPem));
  return `${header}.${payload}.${b64url(signature)}`;
}

export function mintToken(privateKeyPem: string, token: TokenConfig): string {
  return signJwt(privateKeyPem, tokenClaims(token));
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
