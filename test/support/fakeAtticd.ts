/**
 * A stand-in for atticd's HTTP API, written from its source (server/src/api/v1/cache_config.rs,
 * get_missing_paths.rs, api/binary_cache.rs, access/, token/src/lib.rs and util.rs, error.rs) and
 * ../shared/FACTS.md — not atticd itself, which cannot run here. What it reproduces:
 * - `GET /` answers 200 without auth;
 * - the token from `Authorization: Bearer <jwt>` or as the Basic-auth password (what Nix sends from
 *   netrc), RS256-verified against the stack's public key; an invalid token, an expired one, one
 *   whose `nbf` or `iat` lies in the future (jwt-simple with no time tolerance) is treated as
 *   anonymous, as atticd does — measured on the server's own clock (`clockOffsetSeconds`), which
 *   is also what its `Date` header says;
 * - permissions from the `https://jwt.attic.rs/v1` claim with globs; a public cache grants pull;
 * - errors as `{"code","error","message"}`: without any permission on the cache (no "discovery")
 *   a missing cache or a denied action is 401 Unauthorized, with one it is 404 NoSuchCache or
 *   403 AccessError; a duplicate create is 400 CacheAlreadyExists;
 * - cache-config: POST needs all five create fields; PATCH needs at least one field and `cq` for
 *   retention; GET needs pull;
 * - `GET /<cache>/nix-cache-info` needs pull and answers `WantMassQuery`, `StoreDir`, `Priority`;
 * - `POST /_api/v1/get-missing-paths` `{cache, store_path_hashes}` needs push, validates each hash
 *   (32 characters of Nix's base32, else 422 like axum's Json rejection) and answers
 *   `{missing_paths}`: this stand-in stores no paths, so every requested hash is missing;
 * - over HTTPS when given a key and certificate.
 * Not modelled: uploads, narinfo/NAR serving, token-bound issuer/audiences, the database (a real
 * atticd answers 500 on nix-cache-info when its database is down), `allowed-hosts`, axum's 415
 * for a JSON body without `Content-Type: application/json`.
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
}

export interface RecordedRequest {
  method: string;
  path: string;
  /** The token's subject, or null when the request was anonymous (or the token invalid). */
  subject: string | null;
  permissions: Record<string, number> | null;
  body: unknown;
}

const CLAIM = "https://jwt.attic.rs/v1";

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[-+.]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
}

export class FakeAtticd {
  readonly caches = new Map<string, FakeCache>();
  readonly requests: RecordedRequest[] = [];
  /** While > 0, `GET /` answers 503 and decrements (a server still starting behind a proxy). */
  unavailableFor = 0;
  /** How far the server's clock is ahead of ours (negative: behind), in seconds. */
  clockOffsetSeconds = 0;
  private server: http.Server;

  /** `tls`: serve HTTPS with this key and certificate chain (PEM). */
  constructor(
    private readonly publicKeyPem: string,
    tls?: { key: string; cert: string },
  ) {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      let data = "";
      req.on("data", (c) => (data += c));
      req.on("end", () => this.handle(req, data, res));
    };
    this.server = tls ? https.createServer(tls, handler) : http.createServer(handler);
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

  private auth(
    header: string | undefined,
  ): { sub: string; caches: Record<string, Record<string, number>> } | null {
    // token/src/util.rs: "bearer" or "basic" (case-insensitive); Basic carries the JWT as password.
    const m = /^(bearer|basic) (.*)$/i.exec(header ?? "");
    if (!m) return null;
    let jwt = m[2]!;
    if (m[1]!.toLowerCase() === "basic") {
      const userPass = Buffer.from(jwt, "base64").toString();
      if (!userPass.includes(":")) return null;
      jwt = userPass.slice(userPass.indexOf(":") + 1);
    }
    const [h, p, s] = jwt.split(".");
    if (!h || !p || !s) return null;
    const header_ = JSON.parse(Buffer.from(h, "base64url").toString()) as { alg?: string };
    if (header_.alg !== "RS256") return null;
    if (
      !verify(
        "sha256",
        Buffer.from(`${h}.${p}`),
        createPublicKey(this.publicKeyPem),
        Buffer.from(s, "base64url"),
      )
    )
      return null;
    const claims = JSON.parse(Buffer.from(p, "base64url").toString()) as {
      sub: string;
      exp?: number;
      nbf?: number;
      iat?: number;
      [CLAIM]?: { caches: Record<string, Record<string, number>> };
    };
    const now = this.now();
    if (claims.exp !== undefined && claims.exp < now) return null;
    if (claims.nbf !== undefined && claims.nbf > now) return null;
    if (claims.iat !== undefined && claims.iat > now) return null;
    return { sub: claims.sub, caches: claims[CLAIM]?.caches ?? {} };
  }

  private handle(req: http.IncomingMessage, data: string, res: http.ServerResponse) {
    const url = new URL(req.url ?? "/", "http://fake");
    const method = req.method ?? "GET";
    const who = this.auth(req.headers.authorization);
    let body: unknown;
    try {
      body = data ? JSON.parse(data) : null;
    } catch {
      body = data;
    }
    res.setHeader("date", new Date(this.now() * 1000).toUTCString());
    const send = (status: number, payload?: unknown) => {
      res.writeHead(status, payload === undefined ? {} : { "content-type": "application/json" });
      res.end(payload === undefined ? "" : JSON.stringify(payload));
    };
    const error = (status: number, kind: string, message: string) =>
      send(status, { code: status, error: kind, message });

    if (url.pathname === "/" && method === "GET") {
      this.requests.push({ method, path: url.pathname, subject: who?.sub ?? null, permissions: null, body });
      if (this.unavailableFor > 0) {
        this.unavailableFor--;
        return error(503, "ServiceUnavailable", "starting");
      }
      res.writeHead(200, { "content-type": "text/plain" });
      return void res.end("attic push");
    }
    let name: string;
    let route: "cache-config" | "nix-cache-info" | "get-missing-paths";
    const config = /^\/_api\/v1\/cache-config\/([^/]+)$/.exec(url.pathname);
    const info = /^\/([^/_][^/]*)\/nix-cache-info$/.exec(url.pathname);
    if (config) {
      route = "cache-config";
      name = decodeURIComponent(config[1]!);
    } else if (info && method === "GET") {
      route = "nix-cache-info";
      name = decodeURIComponent(info[1]!);
    } else if (url.pathname === "/_api/v1/get-missing-paths" && method === "POST") {
      route = "get-missing-paths";
      const b = body as { cache?: unknown; store_path_hashes?: unknown } | null;
      const hashes = b?.store_path_hashes;
      if (
        typeof b?.cache !== "string" ||
        !Array.isArray(hashes) ||
        !hashes.every((h) => typeof h === "string" && /^[0-9a-df-np-sv-z]{32}$/.test(h))
      )
        return send(422, "Failed to deserialize the JSON body into the target type");
      name = b.cache;
    } else {
      return error(404, "NotFound", "Not found.");
    }

    let perms: Record<string, number> | null = null;
    for (const [pattern, p] of Object.entries(who?.caches ?? {})) {
      if (globToRegExp(pattern).test(name)) {
        perms = p;
        break;
      }
    }
    this.requests.push({ method, path: url.pathname, subject: who?.sub ?? null, permissions: perms, body });
    const cache = this.caches.get(name);
    const discovery = perms !== null || (cache?.is_public ?? false);
    const has = (letter: string) => perms?.[letter] === 1 || (letter === "r" && (cache?.is_public ?? false));
    const denied = () =>
      discovery ? error(403, "AccessError", "Access error.") : error(401, "Unauthorized", "Unauthorized.");
    const noSuchCache = () =>
      discovery
        ? error(404, "NoSuchCache", "The requested cache does not exist.")
        : error(401, "Unauthorized", "Unauthorized.");

    if (route === "nix-cache-info") {
      if (!cache) return noSuchCache();
      if (!has("r")) return denied();
      res.writeHead(200, { "content-type": "text/x-nix-cache-info" });
      return void res.end(`WantMassQuery: 1\nStoreDir: ${cache.store_dir}\nPriority: ${cache.priority}\n`);
    }
    if (route === "get-missing-paths") {
      if (!cache) return noSuchCache();
      if (!has("w")) return denied();
      return send(200, {
        missing_paths: [...new Set((body as { store_path_hashes: string[] }).store_path_hashes)],
      });
    }
    if (method === "POST") {
      if (!has("cc")) return denied();
      const b = body as Partial<FakeCache> & { keypair?: unknown };
      for (const field of ["keypair", "is_public", "store_dir", "priority", "upstream_cache_key_names"]) {
        if (!(field in (b ?? {})))
          return send(422, `Failed to deserialize the JSON body: missing field \`${field}\``);
      }
      if (cache) return error(400, "CacheAlreadyExists", "The cache already exists.");
      this.caches.set(name, {
        is_public: b.is_public!,
        store_dir: b.store_dir!,
        priority: b.priority!,
        upstream_cache_key_names: b.upstream_cache_key_names!,
        retention_period: "Global",
        public_key: `${name}:${randomBytes(32).toString("base64")}`,
      });
      return send(200);
    }
    if (!cache) return noSuchCache();
    if (method === "GET") {
      if (!has("r")) return denied();
      return send(200, {
        substituter_endpoint: `http://${req.headers.host}/${name}`,
        api_endpoint: `http://${req.headers.host}/`,
        public_key: cache.public_key,
        is_public: cache.is_public,
        store_dir: cache.store_dir,
        priority: cache.priority,
        upstream_cache_key_names: cache.upstream_cache_key_names,
        retention_period: cache.retention_period,
      });
    }
    if (method === "PATCH") {
      if (!has("cr")) return denied();
      const b = (body ?? {}) as Partial<FakeCache>;
      const fields = [
        "is_public",
        "store_dir",
        "priority",
        "upstream_cache_key_names",
        "retention_period",
      ] as const;
      if (!fields.some((f) => f in b))
        return error(400, "RequestError", "Bad request: No modifiable fields were set.");
      if ("retention_period" in b && !has("cq")) return denied();
      for (const f of fields) if (f in b) (cache as unknown as Record<string, unknown>)[f] = b[f];
      return send(200);
    }
    if (method === "DELETE") {
      if (!has("cd")) return denied();
      this.caches.delete(name);
      return send(200);
    }
    return error(405, "MethodNotAllowed", "Method not allowed.");
  }
}
