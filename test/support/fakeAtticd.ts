/**
 * A stand-in for atticd's HTTP API, derived from attic's source at b7c905657cb81b8ec9c26b0d9f53aa2e4f231810
 * (the commit the stacks pin) and the crates its Cargo.lock names: jwt-simple 0.11.9, serde_with
 * 3.21.0 (BoolFromInt), axum 0.8.9 / axum-core 0.5.6, wildmatch 2.6.1. atticd itself cannot run here.
 * The research behind it is /work/wt/research/atticd.md (row numbers in brackets). V = verified in
 * the source at that commit, A = assumed. Each row names the test in test/fakeAtticd.test.ts that
 * fails if this stand-in were more lenient than atticd.
 *
 * | behaviour | atticd source (b7c90565) | V/A | test |
 * |---|---|---|---|
 * | `allowed-hosts`: the raw Host header compared exactly (case, port), on every route; mismatch 400 RequestError "Bad Host"; X-Forwarded-Host ignored [8.1-8.3] | server/src/middleware.rs, restrict_host, host_header | V | "allowed-hosts compares the raw Host header exactly…" |
 * | no Host header: 400 "Missing Host header" [8.4] | middleware.rs, host_header | V (that hyper lets such a request through: A) | "a request without Host…" |
 * | token only from `Authorization: (bearer\|basic) <rest>` (scheme case-insensitive, one space); Basic: strict standard base64, the JWT is everything after the first `:` [1.1, 1.2] | token/src/util.rs, parse_authorization_header | V | "the token comes from Bearer or from the Basic password…" |
 * | any token error makes the request anonymous, never an error of its own [1.4] | server/src/access/http.rs, apply_auth | V | every "…is anonymous" test |
 * | compact JWT of 3 strict base64url parts, header ≤ 8192 characters; `alg` exactly RS256; `typ`, when present, JWT or …+JWT (upper-cased) [1.5-1.7] | jwt-simple 0.11.9 token.rs, Token::verify | V | "a token whose header is not RS256/JWT is anonymous" |
 * | RS256 (PKCS#1 v1.5, SHA-256) checked before the claims are parsed [1.8] | jwt-simple token.rs, rsa.rs | V | "a token signed with another key is anonymous" |
 * | timestamps `exp`/`nbf`/`iat` optional numbers (a string or null drops the token); no clock tolerance: iat ≤ now, nbf ≤ now, exp ≥ now, on the server's clock [1.10-1.12] | token/src/lib.rs, Token::from_jwt (time_tolerance None); jwt-simple claims.rs, validate | V | "exp/nbf/iat as atticd checks them…" |
 * | the claim `https://jwt.attic.rs/v1` with `caches` is required; `sub` is not [1.10, 1.14] | token/src/lib.rs, TokenClaims, AtticAccess | V | "a token without the attic claim is anonymous; one without sub is not" |
 * | permission keys must match `^[A-Za-z0-9*][A-Za-z0-9-_+*]{0,49}$` (no `?`, `.`, over 50): one bad key drops the whole token [1.15] | attic/src/cache.rs, CACHE_NAME_PATTERN_REGEX, CacheNamePattern::deserialize | V | "a pattern with ?…drops the whole token" |
 * | permission letters are BoolFromInt: only the integers 0 and 1; `true`, `1.0`, `"1"`, `null`, 2 drop the whole token; a missing letter is 0; unknown letters are ignored [1.16] | token/src/lib.rs, CachePermission; serde_with BoolFromInt<Strict> | V | "\"w\": true drops the whole token…" |
 * | lookup: the exact cache name first, then the FIRST matching key in claim order (no union); `*` any run, the empty one included [2.1-2.4] | token/src/lib.rs, get_permission_for_cache; wildmatch | V | "the exact name wins over globs, then the first matching glob…" |
 * | a public cache grants pull to everyone; discovery = any permission after that grant [2.5, 2.6] | server/src/access/http.rs, auth_cache; token lib.rs, can_discover | V | "discovery decides 401 against 403/404…" |
 * | status per case: no discovery → NoSuchCache/AccessError become 401 Unauthorized; with it 404 NoSuchCache / 403 AccessError; POST checks `cc` on the token alone (no public grant) before the cache is looked at [0, 6.4-6.6, 10] | server/src/error.rs, into_no_discovery_permissions, into_clients; api/v1/cache_config.rs, create_cache | V | "discovery decides 401 against 403/404…", "create needs cc on the token alone…" |
 * | error bodies `{"code","error","message"}` (application/json) with atticd's messages [0] | server/src/error.rs, ErrorKind (displaydoc) | V | asserted throughout |
 * | cache names in paths: `^[A-Za-z0-9][A-Za-z0-9-_+]{0,49}$`, else 400 text/plain `Invalid URL: Invalid cache name "<name>"`, before the body, the token and the database [3.2] | attic/src/cache.rs, CacheName::deserialize; axum Path rejection | V | "POST /_api/v1/cache-config/bad.name is refused…" |
 * | JSON bodies before auth: no `Content-Type: application/json` (or application/*+json) → 415; bad JSON → 400; wrong shape or types → 422; all text/plain [4.1-4.5, 5.1-5.5] | axum 0.8.9 json.rs; attic/src/api/v1/cache_config.rs, get_missing_paths.rs | V (the serde message after the field path and its line/column: not modelled) | "the body is checked before auth…", "request bodies typed as atticd's structs…" |
 * | routes: `/`, `/{cache}/nix-cache-info`, `/{cache}/attic-cache-info`, `/{cache}/{path}` (narinfo), `/{cache}/nar/{path}`, `/_api/v1/get-missing-paths`, `/_api/v1/cache-config/{cache}`; a known path with another method 405 with an empty body; anything else 404 NotFound [3.4, 3.5, 6.1] | server/src/api/mod.rs, binary_cache.rs get_router, v1/mod.rs get_router; lib.rs fallback | V (matchit's precedence of static segments: A) | "routes, 404 and 405 as axum answers them" |
 * | nix-cache-info: pull; `WantMassQuery: 1`, `StoreDir`, `Priority`; `X-Attic-Cache-Visibility: public` on a public cache [6.8] | binary_cache.rs, get_nix_cache_info; middleware.rs, set_visibility_header | V | "nix-cache-info…" |
 * | narinfo: the object is looked up before auth, so a missing one is 404 NoSuchObject even anonymously; a bad hash 500 InvalidStorePathHash ("Error from the common components.") [6.9] | binary_cache.rs, get_store_path_info; error.rs, AtticError | V | "narinfo of a missing path is 404…" |
 * | cache-config GET (and `/{cache}/attic-cache-info`): pull; `substituter_endpoint` = substituter-endpoint or api-endpoint + name (plain concatenation); api-endpoint set: the request's Host is ignored; unset: guessed from X-Forwarded-Proto (exactly `https`) and the Host [6.1-6.3, 9] | api/v1/cache_config.rs, get_cache_config; lib.rs, api_endpoint, substituter_endpoint | V | "substituter_endpoint comes from api-endpoint…" |
 * | PATCH: cr; retention needs cq (403 before anything is written); a period must be a u32 (else 422) and fit the i32 column (else 400 "Invalid retention period"); nothing modifiable: 400 "No modifiable fields were set." [5.3-5.7] | api/v1/cache_config.rs, configure_cache; entity/cache.rs | V | "retention: u32 in the body, i32 in the database, cq…" |
 * | POST on a taken name (a soft-deleted one included): 400 CacheAlreadyExists [7.1, 7.2] | cache_config.rs, create_cache (ON CONFLICT DO NOTHING) | V | "soft delete keeps the name…" |
 * | DELETE: cd; with soft-delete-caches the row stays (deleted_at), so its name stays taken and GET/PATCH/DELETE see no cache [7.3, 7.4] | cache_config.rs, destroy_cache; database/mod.rs, find_cache | V | "soft delete keeps the name…" |
 * | get-missing-paths: body `{cache, store_path_hashes}` (a bad name or hash is 422), then push [3.3, 4.8] | api/v1/get_missing_paths.rs | V | "get-missing-paths…" |
 *
 * Not atticd: `unavailableFor` answers `GET /` with 503 like a proxy in front of a server still
 * starting. Not modelled: uploads (`PUT /_api/v1/upload-path` answers 404 here), stored paths (every
 * hash is missing), the database (atticd answers 500 when it is down), token-bound issuer and
 * audiences, serde's duplicate-field errors inside a token (JSON.parse keeps the last value), a
 * struct sent as a JSON array (serde accepts it; this stand-in answers 422), `{"Global": null}`
 * (refused here; serde_json probably accepts it), the 2 MB body limit.
 */
import { createPublicKey, randomBytes, verify } from "node:crypto";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";

export interface FakeCache {
  is_public: boolean;
  store_dir: string;
  priority: number;
  upstream_cache_key_names: string[];
  retention_period: "Global" | { Period: number };
  public_key: string;
  /** Set when the cache was deleted with soft-delete-caches: the row, and so its name, stays. */
  deleted_at?: string;
}

export interface RecordedRequest {
  method: string;
  path: string;
  /** The Host header as sent. */
  host: string | undefined;
  /** The token's subject, or null when the request was anonymous (or the token invalid). */
  subject: string | null;
  /** Why the token was ignored, when one was sent and atticd would ignore it. */
  tokenError?: string;
  /** The token's entry for the request's cache (exact name, else first matching key), if any. */
  permissions: Record<string, unknown> | null;
  body: unknown;
}

const CLAIM = "https://jwt.attic.rs/v1";
const LETTERS = ["r", "w", "d", "cc", "cr", "cq", "cd"] as const;
type Letter = (typeof LETTERS)[number];
type Permission = Record<Letter, boolean>;

const CACHE_NAME = /^[A-Za-z0-9][A-Za-z0-9-_+]{0,49}$/;
const CACHE_NAME_PATTERN = /^[A-Za-z0-9*][A-Za-z0-9-_+*]{0,49}$/;
const STORE_PATH_HASH = /^[0123456789abcdfghijklmnpqrsvwxyz]{32}$/;
const I32_MAX = 2_147_483_647;
const U32_MAX = 4_294_967_295;

/** A JSON number with its text, as serde_json tells integers from floats. */
class JsonNumber {
  constructor(readonly source: string) {}
  get value(): number {
    return Number(this.source);
  }
  /** An integer literal within [min, max]. */
  isInt(min: number, max: number): boolean {
    return /^-?\d+$/.test(this.source) && this.value >= min && this.value <= max;
  }
}

/** JSON.parse keeping each number's text (Node's JSON.parse source access). */
function parseJson(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown, context?: { source?: string }) =>
    typeof value === "number" ? new JsonNumber(context?.source ?? String(value)) : value,
  );
}

/** Plain JSON again (numbers as numbers), for recording and for the caches' state. */
function plain(v: unknown): unknown {
  if (v instanceof JsonNumber) return v.value;
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof JsonNumber);

/** wildmatch with `*` only: any run of characters, the empty one included; case-sensitive. */
function wildmatch(pattern: string, name: string): boolean {
  return new RegExp(
    `^${pattern
      .split("*")
      .map((p) => p.replace(/[-+]/g, "\\$&"))
      .join(".*")}$`,
  ).test(name);
}

/** Strict base64url without padding (ct-codecs): only the alphabet, canonical trailing bits. */
function base64url(segment: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(segment) || segment.length % 4 === 1) return undefined;
  const bytes = Buffer.from(segment, "base64url");
  return bytes.toString("base64url") === segment ? bytes : undefined;
}

/** Strict standard base64 with padding (the base64 crate's BASE64_STANDARD). */
function base64(text: string): Buffer | undefined {
  if (!/^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) return undefined;
  const bytes = Buffer.from(text, "base64");
  return bytes.toString("base64") === text ? bytes : undefined;
}

interface Token {
  sub: string | null;
  /** The claim's entries in document order. */
  caches: Array<[string, Record<string, unknown>]>;
}

class Reply {
  constructor(
    readonly status: number,
    readonly body: string,
    readonly headers: Record<string, string> = {},
  ) {}
  static json(status: number, payload: unknown, headers: Record<string, string> = {}) {
    return new Reply(status, JSON.stringify(payload), { "content-type": "application/json", ...headers });
  }
  static text(status: number, text: string) {
    return new Reply(status, text, { "content-type": "text/plain; charset=utf-8" });
  }
}

/** atticd's error kinds: status, name and message (server/src/error.rs). */
const ERRORS = {
  NotFound: [404, "The URL you requested was not found."],
  Unauthorized: [401, "Unauthorized."],
  NoSuchCache: [404, "The requested cache does not exist."],
  NoSuchObject: [404, "The requested object does not exist."],
  CacheAlreadyExists: [400, "The cache already exists."],
  AccessError: [403, "Access error: User does not have permission to complete this action."],
} as const;

const error = (kind: keyof typeof ERRORS) =>
  Reply.json(ERRORS[kind][0], { code: ERRORS[kind][0], error: kind, message: ERRORS[kind][1] });
const requestError = (message: string) =>
  Reply.json(400, { code: 400, error: "RequestError", message: `General request error: ${message}` });
const dataError = (detail: string) =>
  Reply.text(422, `Failed to deserialize the JSON body into the target type: ${detail}`);

/** A permission check as the handler makes it: its error with the request's discovery applied. */
function denied(perm: Permission): Reply {
  return LETTERS.some((l) => perm[l]) ? error("AccessError") : error("Unauthorized");
}

/** Type checks of request bodies, as serde derives them; the first problem, as `<path>: <what>`. */
const check = {
  keypair(v: unknown): string | undefined {
    if (v === "Generate") return undefined;
    if (isObject(v) && Object.keys(v).length === 1 && typeof v.Keypair === "string") {
      const m = /^([^:]+):(.*)$/.exec(v.Keypair);
      if (m && base64(m[2]!)?.length === 64) return undefined;
      return "keypair: invalid keypair";
    }
    return "keypair: unknown variant, expected `Generate` or `Keypair`";
  },
  bool: (path: string, v: unknown) =>
    typeof v === "boolean" ? undefined : `${path}: invalid type, expected a boolean`,
  string: (path: string, v: unknown) =>
    typeof v === "string" ? undefined : `${path}: invalid type, expected a string`,
  i32: (path: string, v: unknown) =>
    v instanceof JsonNumber && v.isInt(-I32_MAX - 1, I32_MAX) ? undefined : `${path}: expected i32`,
  strings: (path: string, v: unknown) =>
    Array.isArray(v) && v.every((x) => typeof x === "string")
      ? undefined
      : `${path}: expected a sequence of strings`,
  retention(v: unknown): string | undefined {
    if (v === "Global") return undefined;
    if (isObject(v) && Object.keys(v).length === 1 && "Period" in v)
      return v.Period instanceof JsonNumber && v.Period.isInt(0, U32_MAX)
        ? undefined
        : "retention_period.Period: expected u32";
    return "retention_period: unknown variant, expected `Global` or `Period`";
  },
};

/** CreateCacheRequest (attic/src/api/v1/cache_config.rs): all five fields, unknown ones ignored. */
function createRequestProblem(b: unknown): string | undefined {
  if (!isObject(b)) return "invalid type, expected struct CreateCacheRequest";
  for (const f of ["keypair", "is_public", "store_dir", "priority", "upstream_cache_key_names"])
    if (!(f in b)) return `missing field \`${f}\``;
  return (
    check.keypair(b.keypair) ??
    check.bool("is_public", b.is_public) ??
    check.string("store_dir", b.store_dir) ??
    check.i32("priority", b.priority) ??
    check.strings("upstream_cache_key_names", b.upstream_cache_key_names)
  );
}

/** CacheConfig (PATCH): every field optional, null meaning absent. */
function cacheConfigProblem(b: unknown): string | undefined {
  if (!isObject(b)) return "invalid type, expected struct CacheConfig";
  const present = (f: string) => b[f] !== undefined && b[f] !== null;
  for (const f of ["substituter_endpoint", "api_endpoint", "public_key", "store_dir"])
    if (present(f)) {
      const p = check.string(f, b[f]);
      if (p) return p;
    }
  return (
    (present("keypair") ? check.keypair(b.keypair) : undefined) ??
    (present("is_public") ? check.bool("is_public", b.is_public) : undefined) ??
    (present("priority") ? check.i32("priority", b.priority) : undefined) ??
    (present("upstream_cache_key_names")
      ? check.strings("upstream_cache_key_names", b.upstream_cache_key_names)
      : undefined) ??
    (present("retention_period") ? check.retention(b.retention_period) : undefined)
  );
}

/** GetMissingPathsRequest (attic/src/api/v1/get_missing_paths.rs). */
function missingPathsProblem(b: unknown): string | undefined {
  if (!isObject(b)) return "invalid type, expected struct GetMissingPathsRequest";
  if (!("cache" in b)) return "missing field `cache`";
  if (typeof b.cache !== "string") return "cache: invalid type, expected a string";
  if (!CACHE_NAME.test(b.cache)) return `cache: Invalid cache name ${JSON.stringify(b.cache)}`;
  if (!("store_path_hashes" in b)) return "missing field `store_path_hashes`";
  const hashes = b.store_path_hashes;
  if (!Array.isArray(hashes)) return "store_path_hashes: invalid type, expected a sequence";
  const bad = hashes.findIndex((h) => typeof h !== "string" || !STORE_PATH_HASH.test(h));
  return bad === -1 ? undefined : `store_path_hashes[${bad}]: invalid store path hash`;
}

export class FakeAtticd {
  /** Every cache row, soft-deleted ones included, by name. */
  readonly caches = new Map<string, FakeCache>();
  readonly requests: RecordedRequest[] = [];
  /** While > 0, `GET /` answers 503 and decrements (a proxy in front of a server still starting). */
  unavailableFor = 0;
  /** How far the server's clock is ahead of ours (negative: behind), in seconds. */
  clockOffsetSeconds = 0;
  /** atticd's `allowed-hosts`: empty allows any Host. */
  allowedHosts: string[] = [];
  /** atticd's `api-endpoint`; unset: guessed from each request. */
  apiEndpoint: string | undefined;
  /** atticd's `substituter-endpoint`. */
  substituterEndpoint: string | undefined;
  /** atticd's `soft-delete-caches`. */
  softDeleteCaches = false;
  private server: http.Server;

  /** `tls`: serve HTTPS with this key and certificate chain (PEM). */
  constructor(
    private readonly publicKeyPem: string,
    tls?: { key: string; cert: string },
  ) {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => this.respond(req, Buffer.concat(chunks).toString(), res));
    };
    // requireHostHeader: false lets a request without Host reach atticd's own answer to it.
    this.server = tls
      ? https.createServer({ ...tls, requireHostHeader: false }, handler)
      : http.createServer({ requireHostHeader: false }, handler);
  }

  private now(): number {
    return Date.now() / 1000 + this.clockOffsetSeconds;
  }

  async listen(port = 0): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(port, "127.0.0.1", resolve));
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The live cache of that name: soft-deleted rows are invisible (database/mod.rs, find_cache). */
  private live(name: string): FakeCache | undefined {
    const c = this.caches.get(name);
    return c && !c.deleted_at ? c : undefined;
  }

  /** token/src/util.rs and lib.rs, jwt-simple: the token, or why atticd would ignore it. */
  private token(header: string | undefined): Token | { error: string } | undefined {
    if (header === undefined) return undefined;
    if (!/^[\t\x20-\x7e]*$/.test(header)) return { error: "the header is not visible ASCII" };
    const m = /^(bearer|basic) (.*)$/i.exec(header);
    if (!m) return { error: "neither Bearer nor Basic" };
    let jwt = m[2]!;
    if (m[1]!.toLowerCase() === "basic") {
      const decoded = base64(jwt);
      const text = decoded?.toString("utf8");
      if (!text || !text.includes(":")) return { error: "Basic credentials without user:password" };
      jwt = text.slice(text.indexOf(":") + 1);
    }
    const parts = jwt.split(".");
    if (parts.length !== 3) return { error: "not a compact JWT" };
    const [h, p, s] = parts as [string, string, string];
    if (h.length > 8192) return { error: "header too long" };
    const hb = base64url(h);
    const pb = base64url(p);
    const sb = base64url(s);
    if (!hb || !pb || !sb) return { error: "not strict base64url" };
    let jwtHeader: unknown;
    try {
      jwtHeader = JSON.parse(hb.toString());
    } catch {
      return { error: "header is not JSON" };
    }
    if (!isObject(jwtHeader) || jwtHeader.alg !== "RS256") return { error: "alg is not RS256" };
    if (jwtHeader.typ !== undefined) {
      const typ = typeof jwtHeader.typ === "string" ? jwtHeader.typ.toUpperCase() : undefined;
      if (typ !== "JWT" && !typ?.endsWith("+JWT")) return { error: "typ is not JWT" };
    }
    if (!verify("sha256", Buffer.from(`${h}.${p}`), createPublicKey(this.publicKeyPem), sb))
      return { error: "signature does not verify" };
    let claims: unknown;
    try {
      claims = parseJson(pb.toString());
    } catch {
      return { error: "claims are not JSON" };
    }
    if (!isObject(claims)) return { error: "claims are not an object" };
    const times: Record<string, number> = {};
    for (const t of ["exp", "nbf", "iat"]) {
      const v = claims[t];
      if (v === undefined) continue;
      if (!(v instanceof JsonNumber)) return { error: `${t} is not a number` };
      times[t] = v.value;
    }
    if (claims.sub !== undefined && claims.sub !== null && typeof claims.sub !== "string")
      return { error: "sub is not a string" };
    const access = claims[CLAIM];
    if (!isObject(access) || !isObject(access.caches)) return { error: `no ${CLAIM} claim with caches` };
    const caches: Array<[string, Record<string, unknown>]> = [];
    for (const [pattern, perm] of Object.entries(access.caches)) {
      if (!CACHE_NAME_PATTERN.test(pattern))
        return { error: `invalid cache name pattern ${JSON.stringify(pattern)}` };
      if (!isObject(perm)) return { error: `the permissions of ${pattern} are not an object` };
      for (const l of LETTERS) {
        const v = perm[l];
        if (v !== undefined && !(v instanceof JsonNumber && (v.source === "0" || v.source === "1")))
          return { error: `${pattern}.${l} is not the integer 0 or 1` };
      }
      caches.push([pattern, plain(perm) as Record<string, unknown>]);
    }
    const now = this.now();
    if (times.iat !== undefined && times.iat > now) return { error: "iat is in the future" };
    if (times.nbf !== undefined && now < times.nbf) return { error: "not valid yet (nbf)" };
    if (times.exp !== undefined && now > times.exp) return { error: "expired" };
    return { sub: typeof claims.sub === "string" ? claims.sub : null, caches };
  }

  private respond(req: http.IncomingMessage, data: string, res: http.ServerResponse) {
    const url = new URL(req.url ?? "/", "http://fake");
    const method = req.method ?? "GET";
    const decoded = this.token(req.headers.authorization);
    const token = decoded && "caches" in decoded ? decoded : undefined;
    const record: RecordedRequest = {
      method,
      path: url.pathname,
      host: req.headers.host,
      subject: token?.sub ?? null,
      ...(decoded && "error" in decoded ? { tokenError: decoded.error } : {}),
      permissions: null,
      body: undefined,
    };
    try {
      record.body = data ? plain(parseJson(data)) : undefined;
    } catch {
      record.body = data;
    }
    this.requests.push(record);
    const reply = this.handle(req, url, method, data, token, record);
    res.setHeader("date", new Date(this.now() * 1000).toUTCString());
    res.writeHead(reply.status, reply.headers);
    res.end(reply.body);
  }

  /** The token's permission on a cache (get_permission_for_cache), plus the public grant. */
  private permission(
    token: Token | undefined,
    name: string,
    isPublic: boolean,
    record: RecordedRequest,
  ): Permission {
    const entry =
      token?.caches.find(([pattern]) => pattern === name) ??
      token?.caches.find(([pattern]) => wildmatch(pattern, name));
    record.permissions = entry?.[1] ?? null;
    const perm = Object.fromEntries(LETTERS.map((l) => [l, entry?.[1][l] === 1])) as Permission;
    if (isPublic) perm.r = true;
    return perm;
  }

  /** auth_cache: the live cache and the permission on it, or the error atticd answers. */
  private authCache(
    token: Token | undefined,
    name: string,
    record: RecordedRequest,
    need: Letter,
  ): { cache: FakeCache; perm: Permission } | Reply {
    const cache = this.live(name);
    const perm = this.permission(token, name, cache?.is_public ?? false, record);
    if (!cache) return LETTERS.some((l) => perm[l]) ? error("NoSuchCache") : error("Unauthorized");
    if (!perm[need]) return denied(perm);
    return { cache, perm };
  }

  /** The Json extractor (axum json.rs): 415, 400 or the parsed body. */
  private json(req: http.IncomingMessage, data: string): { body: unknown } | Reply {
    const mime = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
    const [type, subtype] = mime.split("/");
    if (type !== "application" || !(subtype === "json" || subtype?.endsWith("+json")))
      return Reply.text(415, "Expected request with `Content-Type: application/json`");
    try {
      return { body: parseJson(data) };
    } catch (err) {
      return Reply.text(400, `Failed to parse the request body as JSON: ${(err as Error).message}`);
    }
  }

  private endpoints(req: http.IncomingMessage, name: string) {
    const api =
      this.apiEndpoint ??
      `${req.headers["x-forwarded-proto"] === "https" ? "https" : "http"}://${req.headers.host}/`;
    return { api, substituter: `${this.substituterEndpoint ?? api}${name}` };
  }

  private handle(
    req: http.IncomingMessage,
    url: URL,
    method: string,
    data: string,
    token: Token | undefined,
    record: RecordedRequest,
  ): Reply {
    // restrict_host wraps every route, the fallback and 405 included.
    const host = req.headers.host;
    if (host === undefined) return requestError("Missing Host header");
    if (this.allowedHosts.length > 0 && !this.allowedHosts.includes(host)) return requestError("Bad Host");

    const segments = url.pathname.split("/").slice(1);
    const get = method === "GET" || method === "HEAD";
    const route = (methods: string[]) =>
      methods.includes(method) || (methods.includes("GET") && method === "HEAD")
        ? undefined
        : new Reply(405, "", { allow: [...methods, ...(methods.includes("GET") ? ["HEAD"] : [])].join(",") });
    const cacheName = (raw: string): string | Reply => {
      let name: string;
      try {
        name = decodeURIComponent(raw);
      } catch {
        return Reply.text(400, `Invalid URL: Cannot parse \`${raw}\``);
      }
      return CACHE_NAME.test(name)
        ? name
        : Reply.text(400, `Invalid URL: Invalid cache name ${JSON.stringify(name)}`);
    };

    if (url.pathname === "/") {
      const wrong = route(["GET"]);
      if (wrong) return wrong;
      if (this.unavailableFor > 0) {
        this.unavailableFor--;
        return Reply.text(503, "starting");
      }
      return new Reply(200, "<!DOCTYPE html><title>Attic Binary Cache</title>", {
        "content-type": "text/html; charset=utf-8",
      });
    }

    if (url.pathname === "/_api/v1/get-missing-paths") {
      const wrong = route(["POST"]);
      if (wrong) return wrong;
      const parsed = this.json(req, data);
      if (parsed instanceof Reply) return parsed;
      const problem = missingPathsProblem(parsed.body);
      if (problem) return dataError(problem);
      const b = plain(parsed.body) as { cache: string; store_path_hashes: string[] };
      const auth = this.authCache(token, b.cache, record, "w");
      if (auth instanceof Reply) return auth;
      return Reply.json(200, { missing_paths: [...new Set(b.store_path_hashes)] });
    }

    if (
      segments.length === 4 &&
      segments[0] === "_api" &&
      segments[1] === "v1" &&
      segments[2] === "cache-config" &&
      segments[3] !== ""
    ) {
      const wrong = route(["GET", "POST", "PATCH", "DELETE"]);
      if (wrong) return wrong;
      const name = cacheName(segments[3]!);
      if (name instanceof Reply) return name;
      if (get) return this.getConfig(req, token, name, record);
      if (method === "POST") return this.create(req, data, token, name, record);
      if (method === "PATCH") return this.configure(req, data, token, name, record);
      return this.destroy(token, name, record);
    }

    if (segments.length === 2 && segments[1] !== "") {
      const wrong = route(["GET"]);
      if (wrong) return wrong;
      const name = cacheName(segments[0]!);
      if (name instanceof Reply) return name;
      if (segments[1] === "nix-cache-info") {
        const auth = this.authCache(token, name, record, "r");
        if (auth instanceof Reply) return auth;
        return new Reply(
          200,
          `WantMassQuery: 1\nStoreDir: ${auth.cache.store_dir}\nPriority: ${auth.cache.priority}\n`,
          {
            "content-type": "text/x-nix-cache-info",
            ...(auth.cache.is_public ? { "x-attic-cache-visibility": "public" } : {}),
          },
        );
      }
      if (segments[1] === "attic-cache-info") return this.getConfig(req, token, name, record);
      // get_store_path_info: `splitn(2, '.')`, and only `.narinfo` is served.
      const path = segments[1]!;
      const dot = path.indexOf(".");
      if (dot === -1 || path.slice(dot + 1) !== "narinfo") return error("NotFound");
      if (!STORE_PATH_HASH.test(path.slice(0, dot)))
        return Reply.json(500, {
          code: 500,
          error: "InvalidStorePathHash",
          message: "Error from the common components.",
        });
      // No path is ever stored here: the lookup, made before auth, finds nothing.
      return error("NoSuchObject");
    }

    if (segments.length === 3 && segments[1] === "nar" && segments[2] !== "") {
      const wrong = route(["GET"]);
      if (wrong) return wrong;
      const name = cacheName(segments[0]!);
      if (name instanceof Reply) return name;
      return error("NoSuchObject");
    }

    return error("NotFound");
  }

  private getConfig(
    req: http.IncomingMessage,
    token: Token | undefined,
    name: string,
    record: RecordedRequest,
  ): Reply {
    const auth = this.authCache(token, name, record, "r");
    if (auth instanceof Reply) return auth;
    const { cache } = auth;
    const { api, substituter } = this.endpoints(req, name);
    return Reply.json(200, {
      substituter_endpoint: substituter,
      api_endpoint: api,
      public_key: cache.public_key,
      is_public: cache.is_public,
      store_dir: cache.store_dir,
      priority: cache.priority,
      upstream_cache_key_names: cache.upstream_cache_key_names,
      retention_period: cache.retention_period,
    });
  }

  private create(
    req: http.IncomingMessage,
    data: string,
    token: Token | undefined,
    name: string,
    record: RecordedRequest,
  ): Reply {
    const parsed = this.json(req, data);
    if (parsed instanceof Reply) return parsed;
    const problem = createRequestProblem(parsed.body);
    if (problem) return dataError(problem);
    // cc is checked on the token alone: create_cache asks for no public grant.
    const perm = this.permission(token, name, false, record);
    if (!perm.cc) return denied(perm);
    if (this.caches.has(name)) return error("CacheAlreadyExists");
    const b = plain(parsed.body) as Omit<FakeCache, "public_key" | "retention_period"> & { keypair: unknown };
    this.caches.set(name, {
      is_public: b.is_public,
      store_dir: b.store_dir,
      priority: b.priority,
      upstream_cache_key_names: b.upstream_cache_key_names,
      retention_period: "Global",
      public_key: publicKeyOf(name, b.keypair),
    });
    return new Reply(200, "");
  }

  private configure(
    req: http.IncomingMessage,
    data: string,
    token: Token | undefined,
    name: string,
    record: RecordedRequest,
  ): Reply {
    const parsed = this.json(req, data);
    if (parsed instanceof Reply) return parsed;
    const problem = cacheConfigProblem(parsed.body);
    if (problem) return dataError(problem);
    const auth = this.authCache(token, name, record, "cr");
    if (auth instanceof Reply) return auth;
    const b = plain(parsed.body) as Record<string, unknown>;
    const set = (f: string) => b[f] !== undefined && b[f] !== null;
    const update: Partial<FakeCache> = {};
    if (set("keypair")) update.public_key = publicKeyOf(name, b.keypair);
    for (const f of ["is_public", "store_dir", "priority", "upstream_cache_key_names"] as const)
      if (set(f)) (update as Record<string, unknown>)[f] = b[f];
    if (set("retention_period")) {
      if (!auth.perm.cq) return denied(auth.perm);
      const r = b.retention_period as "Global" | { Period: number };
      if (r !== "Global" && r.Period > I32_MAX) return requestError("Invalid retention period");
      update.retention_period = r;
    }
    if (Object.keys(update).length === 0) return requestError("No modifiable fields were set.");
    Object.assign(auth.cache, update);
    return new Reply(200, "");
  }

  private destroy(token: Token | undefined, name: string, record: RecordedRequest): Reply {
    const auth = this.authCache(token, name, record, "cd");
    if (auth instanceof Reply) return auth;
    if (this.softDeleteCaches) auth.cache.deleted_at = new Date(this.now() * 1000).toISOString();
    else this.caches.delete(name);
    return new Reply(200, "");
  }
}

/** `"<cache>:<base64 of 32 bytes>"`: a generated key is named after the cache (signing/mod.rs). */
function publicKeyOf(name: string, keypair: unknown): string {
  if (keypair === "Generate") return `${name}:${randomBytes(32).toString("base64")}`;
  // NixKeypair "name:base64(64 bytes)": the public key is the last 32 bytes (ed25519, A).
  const [keyName, b64] = (keypair as { Keypair: string }).Keypair.split(/:(.*)/s) as [string, string];
  return `${keyName}:${Buffer.from(b64, "base64").subarray(32).toString("base64")}`;
}
