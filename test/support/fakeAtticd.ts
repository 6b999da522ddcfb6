/**
 * A stand-in for atticd's cache-config API, written from its source (server/src/api/v1/
 * cache_config.rs, access/, error.rs) and ../shared/FACTS.md — not atticd itself, which cannot
 * run here. What it reproduces:
 * - `GET /` answers 200 without auth;
 * - RS256 Bearer tokens verified against the stack's public key; an invalid or expired token is
 *   treated as anonymous, as atticd does;
 * - permissions from the `https://jwt.attic.rs/v1` claim with globs; a public cache grants pull;
 * - errors as `{"code","error","message"}`: without any permission on the cache (no "discovery")
 *   a missing cache or a denied action is 401 Unauthorized, with one it is 404 NoSuchCache or
 *   403 AccessError; a duplicate create is 400 CacheAlreadyExists;
 * - POST needs all five create fields; PATCH needs at least one field and `cq` for retention.
 */
import { createPublicKey, randomBytes, verify } from "node:crypto";
import * as http from "node:http";
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
  private server: http.Server;

  constructor(private readonly publicKeyPem: string) {
    this.server = http.createServer((req, res) => {
      let data = "";
      req.on("data", (c) => (data += c));
      req.on("end", () => this.handle(req, data, res));
    });
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
    const m = /^Bearer (.+)$/.exec(header ?? "");
    if (!m) return null;
    const [h, p, s] = m[1]!.split(".");
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
      [CLAIM]?: { caches: Record<string, Record<string, number>> };
    };
    const now = Date.now() / 1000;
    if (claims.exp !== undefined && claims.exp < now) return null;
    if (claims.nbf !== undefined && claims.nbf > now) return null;
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
    const m = /^\/_api\/v1\/cache-config\/([^/]+)$/.exec(url.pathname);
    if (!m) return error(404, "NotFound", "Not found.");
    const name = decodeURIComponent(m[1]!);

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
