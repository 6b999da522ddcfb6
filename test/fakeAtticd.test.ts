/**
 * The atticd stand-in's own contract (support/fakeAtticd.ts): each row of its fidelity table, pinned
 * here so that a change making the stand-in kinder than atticd fails. Requests are raw HTTP (the
 * Host header as given, tokens built byte by byte), as a client or an attacker may send them.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign } from "node:crypto";
import * as http from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { FIXTURE_SIGNING_KEY_PEM } from "../ci/commands/synth/mocks";
import { type FakeCache, FakeAtticd } from "./support/fakeAtticd";

const PUBLIC_KEY = createPublicKey(createPrivateKey(FIXTURE_SIGNING_KEY_PEM))
  .export({ type: "spki", format: "pem" })
  .toString();
const CLAIM = "https://jwt.attic.rs/v1";
const FAR = Math.floor(Date.now() / 1000) + 86_400;

const b64url = (s: string | Buffer) => Buffer.from(s).toString("base64url");

/** A JWT over exactly this payload text (any JSON, valid for atticd or not), RS256-signed. */
function jwt(
  payload: string,
  header: string = '{"alg":"RS256","typ":"JWT"}',
  key: string = FIXTURE_SIGNING_KEY_PEM,
): string {
  const body = `${b64url(header)}.${b64url(payload)}`;
  return `${body}.${b64url(sign("sha256", Buffer.from(body), createPrivateKey(key)))}`;
}

/** A token with these cache entries, given as JSON text so that `true` or `1.0` stay as written. */
const withCaches = (caches: string, extra = `"exp":${FAR}`) =>
  jwt(`{"sub":"tester",${extra},"${CLAIM}":{"caches":${caches}}}`);

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

let servers: FakeAtticd[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

const CACHE: FakeCache = {
  is_public: false,
  store_dir: "/nix/store",
  priority: 41,
  upstream_cache_key_names: ["cache.nixos.org-1"],
  retention_period: "Global",
  public_key: "secret:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
};

/** A fake holding the private cache `secret` and the public cache `open`, and a raw client for it. */
async function started(setup: (s: FakeAtticd) => void = () => {}) {
  const server = new FakeAtticd(PUBLIC_KEY);
  servers.push(server);
  server.caches.set("secret", { ...CACHE });
  server.caches.set("open", { ...CACHE, is_public: true, public_key: "open:BBBB" });
  setup(server);
  const port = await server.listen();
  const ask = (
    method: string,
    path: string,
    o: {
      token?: string;
      auth?: string;
      body?: string;
      type?: string | null;
      host?: string | null;
      headers?: Record<string, string>;
    } = {},
  ): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string> = { ...o.headers };
      if (o.host !== null) headers.host = o.host ?? `127.0.0.1:${port}`;
      if (o.token) headers.authorization = `Bearer ${o.token}`;
      if (o.auth) headers.authorization = o.auth;
      if (o.body !== undefined && o.type !== null) headers["content-type"] = o.type ?? "application/json";
      const req = http.request(
        { host: "127.0.0.1", port, method, path, headers, setHost: false, agent: false },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (body += c));
          res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        },
      );
      req.on("error", reject);
      req.end(o.body);
    });
  return { server, port, ask };
}

const json = (r: Reply) => JSON.parse(r.body) as { code: number; error: string; message: string };
const PULL_SECRET = withCaches('{"secret":{"r":1}}');

describe("Host and allowed-hosts", () => {
  it("allowed-hosts compares the raw Host header exactly (case and port), on every route; X-Forwarded-Host does not count", async () => {
    const { ask } = await started((s) => (s.allowedHosts = ["attic.lan"]));
    expect((await ask("GET", "/", { host: "attic.lan" })).status).toBe(200);
    const bad = { code: 400, error: "RequestError", message: "General request error: Bad Host" };
    for (const host of ["Attic.lan", "attic.lan:80", "attic.lan."]) {
      const r = await ask("GET", "/", { host });
      expect([r.status, json(r)], host).toEqual([400, bad]);
    }
    const forwarded = await ask("GET", "/", { host: "other", headers: { "x-forwarded-host": "attic.lan" } });
    expect(forwarded.status).toBe(400);
    // The fallback, a 405 and a bad cache name all answer Bad Host first.
    expect(json(await ask("GET", "/a/b/c/d", { host: "x" }))).toEqual(bad);
    expect(json(await ask("PUT", "/_api/v1/cache-config/secret", { host: "x" }))).toEqual(bad);
    expect(json(await ask("GET", "/bad.name/nix-cache-info", { host: "x" }))).toEqual(bad);
  });

  it("without allowed-hosts any Host is accepted; a request without Host gets 400 Missing Host header", async () => {
    const { ask } = await started();
    expect((await ask("GET", "/", { host: "Anything:1" })).status).toBe(200);
    const r = await ask("GET", "/", { host: null });
    expect([r.status, json(r).message]).toEqual([400, "General request error: Missing Host header"]);
  });
});

describe("token decoding", () => {
  it("the token comes from Bearer or from the Basic password (strict base64); anything else is anonymous", async () => {
    const { ask, server } = await started();
    const info = "/secret/nix-cache-info";
    const basic = (s: string) => `Basic ${Buffer.from(s).toString("base64")}`;
    expect((await ask("GET", info, { auth: `Bearer ${PULL_SECRET}` })).status).toBe(200);
    expect((await ask("GET", info, { auth: `bEaReR ${PULL_SECRET}` })).status).toBe(200);
    expect((await ask("GET", info, { auth: basic(`anyone:${PULL_SECRET}`) })).status).toBe(200);
    expect((await ask("GET", info, { auth: basic(`:${PULL_SECRET}`) })).status).toBe(200);
    for (const auth of [
      `Bearer  ${PULL_SECRET}`,
      `Token ${PULL_SECRET}`,
      basic(PULL_SECRET),
      `Basic ${Buffer.from(`u:${PULL_SECRET}`).toString("base64").replace(/=+$/, "")}`,
    ]) {
      const r = await ask("GET", info, { auth });
      expect([r.status, server.requests.at(-1)!.subject], auth.slice(0, 12)).toEqual([401, null]);
    }
  });

  it("a token whose header is not RS256/JWT, or not strict base64url, is anonymous", async () => {
    const { ask, server } = await started();
    const info = "/secret/nix-cache-info";
    const payload = `{"exp":${FAR},"${CLAIM}":{"caches":{"secret":{"r":1}}}}`;
    for (const header of ['{"alg":"RS256"}', '{"alg":"RS256","typ":"jwt"}', '{"alg":"RS256","typ":"at+jwt"}'])
      expect((await ask("GET", info, { token: jwt(payload, header) })).status, header).toBe(200);
    for (const header of [
      '{"alg":"RS384","typ":"JWT"}',
      '{"alg":"rs256"}',
      '{"alg":"RS256","typ":"JWS"}',
      '{"typ":"JWT"}',
    ]) {
      expect((await ask("GET", info, { token: jwt(payload, header) })).status, header).toBe(401);
      expect(server.requests.at(-1)!.tokenError).toBeDefined();
    }
    const [h, p, s] = jwt(payload).split(".");
    expect((await ask("GET", info, { token: `${h}=.${p}.${s}` })).status).toBe(401);
    expect((await ask("GET", info, { token: `${h}.${p}` })).status).toBe(401);
  });

  it("a token signed with another key is anonymous", async () => {
    const { ask } = await started();
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({
      type: "pkcs8",
      format: "pem",
    });
    const token = jwt(`{"exp":${FAR},"${CLAIM}":{"caches":{"secret":{"r":1}}}}`, undefined, other.toString());
    expect((await ask("GET", "/secret/nix-cache-info", { token })).status).toBe(401);
  });

  it("exp/nbf/iat as atticd checks them: optional numbers (float too), no tolerance, the server's clock", async () => {
    const { ask, server } = await started();
    const info = "/secret/nix-cache-info";
    const now = Math.floor(Date.now() / 1000);
    const at = (times: string) => withCaches('{"secret":{"r":1}}', times);
    expect((await ask("GET", info, { token: at(`"exp":${FAR}.5`) })).status).toBe(200);
    expect((await ask("GET", info, { token: at(`"nbf":${now - 5},"iat":${now - 5}`) })).status).toBe(200);
    for (const times of [
      `"exp":${now - 2}`,
      `"nbf":${now + 60}`,
      `"iat":${now + 60}`,
      `"exp":"${FAR}"`,
      `"exp":null`,
    ])
      expect((await ask("GET", info, { token: at(times) })).status, times).toBe(401);
    // The server's clock decides: 120 s behind, a token expired 60 s ago is still valid there.
    server.clockOffsetSeconds = -120;
    expect((await ask("GET", info, { token: at(`"exp":${now - 60}`) })).status).toBe(200);
  });

  it("a token without the attic claim (or its caches) is anonymous; one without sub is not", async () => {
    const { ask, server } = await started();
    const info = "/secret/nix-cache-info";
    expect((await ask("GET", info, { token: jwt(`{"exp":${FAR}}`) })).status).toBe(401);
    expect((await ask("GET", info, { token: jwt(`{"exp":${FAR},"${CLAIM}":{}}`) })).status).toBe(401);
    expect(
      (await ask("GET", info, { token: jwt(`{"${CLAIM}":{"caches":{"secret":{"r":1}}}}`) })).status,
    ).toBe(200);
    expect(server.requests.at(-1)!.subject).toBeNull();
  });

  it("a pattern with ?, a dot, a leading - or over 50 characters drops the whole token", async () => {
    const { ask, server } = await started();
    for (const bad of ["n3x-?", "a.b", "-x", `${"a".repeat(50)}*`]) {
      const token = withCaches(`{"secret":{"r":1},${JSON.stringify(bad)}:{"r":1}}`);
      const r = await ask("GET", "/secret/nix-cache-info", { token });
      expect([r.status, server.requests.at(-1)!.tokenError], bad).toEqual([
        401,
        `invalid cache name pattern ${JSON.stringify(bad)}`,
      ]);
    }
    const fifty = withCaches(`{"secret":{"r":1},"${"a".repeat(49)}*":{"r":1}}`);
    expect((await ask("GET", "/secret/nix-cache-info", { token: fifty })).status).toBe(200);
  });

  it('"w": true drops the whole token, as do 1.0, "1", null and 2; a missing letter is 0; unknown letters are ignored', async () => {
    const { ask } = await started();
    const info = "/secret/nix-cache-info";
    for (const v of ["true", "1.0", '"1"', "null", "2", "-1"])
      expect((await ask("GET", info, { token: withCaches(`{"secret":{"r":1,"w":${v}}}`) })).status, v).toBe(
        401,
      );
    expect((await ask("GET", info, { token: withCaches('{"secret":{"r":1,"w":0,"x":7}}') })).status).toBe(
      200,
    );
    // Pull missing (0) but push granted: the cache is discovered, pull refused.
    expect((await ask("GET", info, { token: withCaches('{"secret":{"w":1}}') })).status).toBe(403);
    expect((await ask("GET", info, { token: withCaches('{"secret":"r"}') })).status).toBe(401);
  });
});

describe("permission lookup", () => {
  const probe = (cache: string) =>
    JSON.stringify({ cache, store_path_hashes: ["00000000000000000000000000000000"] });

  it("the exact name wins over globs, then the first matching glob in claim order, never a union", async () => {
    const { ask } = await started((s) => {
      s.caches.set("n3x-foo", { ...CACHE, public_key: "n3x-foo:CCCC" });
      s.caches.set("team-", { ...CACHE, public_key: "team-:DDDD" });
    });
    const push = (token: string, cache = "n3x-foo") =>
      ask("POST", "/_api/v1/get-missing-paths", { token, body: probe(cache) }).then((r) => r.status);
    // An exact entry with nothing shadows the glob: no discovery, 401.
    expect(await push(withCaches('{"*":{"r":1,"w":1},"n3x-foo":{}}'))).toBe(401);
    // First match, not union: "*" (pull) comes first, so no push.
    expect(await push(withCaches('{"*":{"r":1},"n3x-*":{"r":1,"w":1}}'))).toBe(403);
    expect(await push(withCaches('{"n3x-*":{"r":1,"w":1},"*":{"r":1}}'))).toBe(200);
    // `*` matches the empty run and `-`; globs are case-sensitive.
    expect(await push(withCaches('{"team-*":{"w":1}}'), "team-")).toBe(200);
    expect(await push(withCaches('{"N3X-*":{"w":1}}'))).toBe(401);
  });

  it("discovery decides 401 against 403/404: anonymous or nothing on the name is 401; a public cache gives everyone pull", async () => {
    const { ask } = await started();
    const config = (name: string, token?: string) =>
      ask("GET", `/_api/v1/cache-config/${name}`, token ? { token } : {}).then((r) => [
        r.status,
        json(r).error,
      ]);
    expect(await config("missing")).toEqual([401, "Unauthorized"]);
    expect(await config("missing", withCaches('{"other":{"r":1}}'))).toEqual([401, "Unauthorized"]);
    expect(await config("missing", withCaches('{"missing":{"r":0}}'))).toEqual([401, "Unauthorized"]);
    expect(await config("missing", withCaches('{"*":{"r":1}}'))).toEqual([404, "NoSuchCache"]);
    expect(await config("missing", withCaches('{"*":{"cd":1}}'))).toEqual([404, "NoSuchCache"]);
    expect(await config("secret")).toEqual([401, "Unauthorized"]);
    expect(await config("secret", withCaches('{"secret":{"w":1}}'))).toEqual([403, "AccessError"]);
    expect(
      json(await ask("GET", "/_api/v1/cache-config/secret", { token: withCaches('{"secret":{"w":1}}') })),
    ).toEqual({
      code: 403,
      error: "AccessError",
      message: "Access error: User does not have permission to complete this action.",
    });
    // Public: pull for anyone, so every other action is 403, never 401.
    expect((await ask("GET", "/open/nix-cache-info")).status).toBe(200);
    expect(await config("open")).toEqual([200, undefined]);
    expect((await ask("DELETE", "/_api/v1/cache-config/open")).status).toBe(403);
    expect((await ask("POST", "/_api/v1/get-missing-paths", { body: probe("open") })).status).toBe(403);
    expect((await ask("POST", "/_api/v1/get-missing-paths", { body: probe("secret") })).status).toBe(401);
  });

  it("create needs cc on the token alone (a public cache grants none); a taken name is 400 CacheAlreadyExists", async () => {
    const { ask, server } = await started();
    const body = JSON.stringify({
      keypair: "Generate",
      is_public: false,
      store_dir: "/nix/store",
      priority: 41,
      upstream_cache_key_names: [],
      retention_period: { Period: 5 },
    });
    const post = (name: string, token?: string) =>
      ask("POST", `/_api/v1/cache-config/${name}`, { body, ...(token ? { token } : {}) }).then((r) => [
        r.status,
        r.body,
      ]);
    expect(await post("open")).toEqual([401, JSON.stringify(ERR401)]);
    expect((await post("new", withCaches('{"new":{"r":1}}')))[0]).toBe(403);
    expect(await post("new", withCaches('{"new":{"cc":1}}'))).toEqual([200, ""]);
    // Unknown fields such as retention_period are ignored on create.
    expect(server.caches.get("new")).toMatchObject({ retention_period: "Global", is_public: false });
    expect(server.caches.get("new")!.public_key).toMatch(/^new:[A-Za-z0-9+/]{43}=$/);
    expect(await post("new", withCaches('{"new":{"cc":1}}'))).toEqual([
      400,
      '{"code":400,"error":"CacheAlreadyExists","message":"The cache already exists."}',
    ]);
  });
});

const ERR401 = { code: 401, error: "Unauthorized", message: "Unauthorized." };

describe("paths and bodies before auth", () => {
  it("POST /_api/v1/cache-config/bad.name is refused with 400 before the body, the token or the database", async () => {
    const { ask } = await started();
    const invalid = (name: string) => ({ status: 400, body: `Invalid URL: Invalid cache name "${name}"` });
    const r = await ask("POST", "/_api/v1/cache-config/bad.name");
    expect({ status: r.status, body: r.body }).toEqual(invalid("bad.name"));
    expect(r.headers["content-type"]).toMatch(/^text\/plain/);
    for (const [method, path, name] of [
      ["GET", "/_api/v1/cache-config/bad%2Ename", "bad.name"],
      ["DELETE", "/_api/v1/cache-config/-x", "-x"],
      ["PATCH", "/_api/v1/cache-config/_x", "_x"],
      ["GET", "/_x/nix-cache-info", "_x"],
      ["GET", `/${"a".repeat(51)}/nix-cache-info`, "a".repeat(51)],
      ["GET", "/a.b/00000000000000000000000000000000.narinfo", "a.b"],
      ["GET", "/a.b/attic-cache-info", "a.b"],
    ] as const) {
      const a = await ask(method, path, { token: withCaches('{"*":{"r":1,"cc":1,"cr":1,"cd":1}}') });
      expect({ status: a.status, body: a.body }, `${method} ${path}`).toEqual(invalid(name));
    }
  });

  it("the body is checked before auth: an anonymous request gets 415, 400 or 422, not 401", async () => {
    const { ask } = await started();
    const r = await ask("POST", "/_api/v1/cache-config/x", { body: "{}" });
    expect([r.status, r.body]).toEqual([
      422,
      "Failed to deserialize the JSON body into the target type: missing field `keypair`",
    ]);
    expect(r.headers["content-type"]).toMatch(/^text\/plain/);
    expect(
      await ask("POST", "/_api/v1/cache-config/x", { body: "{}", type: null }).then((a) => [
        a.status,
        a.body,
      ]),
    ).toEqual([415, "Expected request with `Content-Type: application/json`"]);
    expect((await ask("POST", "/_api/v1/cache-config/x", { body: "{}", type: "text/plain" })).status).toBe(
      415,
    );
    const syntax = await ask("POST", "/_api/v1/cache-config/x", { body: "{" });
    expect([syntax.status, syntax.body.startsWith("Failed to parse the request body as JSON: ")]).toEqual([
      400,
      true,
    ]);
    expect((await ask("PATCH", "/_api/v1/cache-config/secret", { body: '{"priority":1.5}' })).status).toBe(
      422,
    );
    expect((await ask("PATCH", "/_api/v1/cache-config/secret", { body: "" })).status).toBe(400);
    const missing = await ask("POST", "/_api/v1/get-missing-paths", {
      body: '{"cache":"bad.name","store_path_hashes":[]}',
    });
    expect([missing.status, missing.body]).toEqual([
      422,
      'Failed to deserialize the JSON body into the target type: cache: Invalid cache name "bad.name"',
    ]);
  });

  it("request bodies are typed as atticd's structs: bool, i32, the Generate/Keypair enum, u32 periods", async () => {
    const { ask } = await started();
    const token = withCaches('{"*":{"cc":1,"cr":1,"cq":1}}');
    const good = {
      keypair: "Generate",
      is_public: true,
      store_dir: "/nix/store",
      priority: 41,
      upstream_cache_key_names: [],
    };
    const post = (body: string, type?: string) =>
      ask("POST", "/_api/v1/cache-config/x", { token, body, ...(type ? { type } : {}) }).then(
        (r) => r.status,
      );
    const text = (o: Record<string, unknown>) => JSON.stringify({ ...good, ...o });
    expect(await post(text({ is_public: "yes" }))).toBe(422);
    expect(await post(text({ keypair: "generate" }))).toBe(422);
    expect(await post(text({ upstream_cache_key_names: [1] }))).toBe(422);
    expect(await post(text({ priority: 2_147_483_648 }))).toBe(422);
    expect(await post(text({}).replace('"priority":41', '"priority":41.0'))).toBe(422);
    expect(await post(text({}).replace('"priority":41', '"priority":1.5'))).toBe(422);
    expect(await post(text({}), "application/vnd.attic+json; charset=utf-8")).toBe(200);
    expect(
      await ask("PATCH", "/_api/v1/cache-config/x", {
        token,
        body: '{"is_public":null,"retention_period":"global"}',
      }).then((r) => r.status),
    ).toBe(422);
  });
});

describe("routes and answers", () => {
  it("routes, 404 and 405 as axum answers them", async () => {
    const { ask } = await started();
    const put = await ask("PUT", "/_api/v1/cache-config/bad.name");
    expect([put.status, put.body, put.headers.allow]).toEqual([405, "", "GET,POST,PATCH,DELETE,HEAD"]);
    expect((await ask("GET", "/_api/v1/get-missing-paths")).status).toBe(405);
    expect((await ask("POST", "/secret/nix-cache-info")).status).toBe(405);
    for (const path of ["/a/b/c/d", "/_api/v1/cache-config/", "/secret", "/secret/"]) {
      const r = await ask("GET", path);
      expect([r.status, r.body], path).toEqual([
        404,
        '{"code":404,"error":"NotFound","message":"The URL you requested was not found."}',
      ]);
    }
    expect((await ask("HEAD", "/")).status).toBe(200);
  });

  it("nix-cache-info needs pull and says WantMassQuery, StoreDir, Priority; a public cache is marked public", async () => {
    const { ask } = await started();
    const open = await ask("GET", "/open/nix-cache-info");
    expect([
      open.status,
      open.body,
      open.headers["content-type"],
      open.headers["x-attic-cache-visibility"],
    ]).toEqual([
      200,
      "WantMassQuery: 1\nStoreDir: /nix/store\nPriority: 41\n",
      "text/x-nix-cache-info",
      "public",
    ]);
    const secret = await ask("GET", "/secret/nix-cache-info", { token: PULL_SECRET });
    expect([secret.status, secret.headers["x-attic-cache-visibility"]]).toEqual([200, undefined]);
  });

  it("narinfo of a missing path is 404 NoSuchObject even anonymously on a private cache; a bad hash is 500", async () => {
    const { ask } = await started();
    const r = await ask("GET", "/secret/00000000000000000000000000000000.narinfo");
    expect([r.status, json(r).error]).toEqual([404, "NoSuchObject"]);
    expect(json(await ask("GET", "/secret/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee.narinfo"))).toEqual({
      code: 500,
      error: "InvalidStorePathHash",
      message: "Error from the common components.",
    });
    expect((await ask("GET", "/secret/00000000000000000000000000000000.ls")).status).toBe(404);
  });

  it("substituter_endpoint comes from api-endpoint (the Host is ignored), else from the Host and X-Forwarded-Proto", async () => {
    const configured = await started((s) => (s.apiEndpoint = "https://attic.example.com/"));
    const a = JSON.parse(
      (await configured.ask("GET", "/_api/v1/cache-config/open", { host: "other:1" })).body,
    );
    expect([a.api_endpoint, a.substituter_endpoint]).toEqual([
      "https://attic.example.com/",
      "https://attic.example.com/open",
    ]);
    const sub = await started((s) => {
      s.apiEndpoint = "https://api.example.com/";
      s.substituterEndpoint = "https://cdn.example.com/";
    });
    expect(JSON.parse((await sub.ask("GET", "/open/attic-cache-info")).body).substituter_endpoint).toBe(
      "https://cdn.example.com/open",
    );
    const guessed = await started();
    const g = (headers: Record<string, string>) =>
      guessed
        .ask("GET", "/_api/v1/cache-config/open", { host: "Attic.LAN:8080", headers })
        .then((r) => JSON.parse(r.body).substituter_endpoint);
    expect(await g({})).toBe("http://Attic.LAN:8080/open");
    expect(await g({ "x-forwarded-proto": "https" })).toBe("https://Attic.LAN:8080/open");
    expect(await g({ "x-forwarded-proto": "HTTPS" })).toBe("http://Attic.LAN:8080/open");
  });

  it("retention: a u32 in the body, the i32 column in the database, cq for any retention change, nothing written on refusal", async () => {
    const { ask, server } = await started();
    const patch = (body: unknown, caches = '{"secret":{"cr":1,"cq":1}}') =>
      ask("PATCH", "/_api/v1/cache-config/secret", { token: withCaches(caches), body: JSON.stringify(body) });
    const crOnly = await patch({ priority: 7, retention_period: { Period: 60 } }, '{"secret":{"cr":1}}');
    expect([crOnly.status, json(crOnly).error]).toEqual([403, "AccessError"]);
    expect(server.caches.get("secret")!.priority).toBe(41);
    const tooBig = await patch({ retention_period: { Period: 2_147_483_648 } });
    expect([tooBig.status, json(tooBig).message]).toEqual([
      400,
      "General request error: Invalid retention period",
    ]);
    expect((await patch({ retention_period: { Period: 4_294_967_296 } })).status).toBe(422);
    expect((await patch({ retention_period: { Period: -1 } })).status).toBe(422);
    expect((await patch({ retention_period: { Period: 2_147_483_647 } })).status).toBe(200);
    expect(server.caches.get("secret")!.retention_period).toEqual({ Period: 2_147_483_647 });
    expect((await patch({ retention_period: "Global" })).status).toBe(200);
    expect(server.caches.get("secret")!.retention_period).toBe("Global");
    const nothing = await patch({ public_key: "x", is_public: null });
    expect([nothing.status, json(nothing).message]).toEqual([
      400,
      "General request error: No modifiable fields were set.",
    ]);
    expect((await ask("PATCH", "/_api/v1/cache-config/secret", { body: "{}" })).status).toBe(401);
  });

  it("soft delete keeps the name: POST 400 CacheAlreadyExists, GET/PATCH/DELETE 404 with a token, 401 anonymous", async () => {
    const { ask, server } = await started((s) => (s.softDeleteCaches = true));
    const all = withCaches('{"secret":{"r":1,"cc":1,"cr":1,"cd":1}}');
    expect((await ask("DELETE", "/_api/v1/cache-config/secret", { token: all })).status).toBe(200);
    expect(server.caches.get("secret")!.deleted_at).toBeDefined();
    const create = JSON.stringify({
      keypair: "Generate",
      is_public: false,
      store_dir: "/nix/store",
      priority: 1,
      upstream_cache_key_names: [],
    });
    expect(json(await ask("POST", "/_api/v1/cache-config/secret", { token: all, body: create })).error).toBe(
      "CacheAlreadyExists",
    );
    expect(
      json(await ask("PATCH", "/_api/v1/cache-config/secret", { token: all, body: '{"priority":2}' })).error,
    ).toBe("NoSuchCache");
    expect((await ask("GET", "/_api/v1/cache-config/secret", { token: all })).status).toBe(404);
    expect((await ask("DELETE", "/_api/v1/cache-config/secret", { token: all })).status).toBe(404);
    expect((await ask("GET", "/_api/v1/cache-config/secret")).status).toBe(401);
    // Without soft delete the row goes, and the name with it.
    server.softDeleteCaches = false;
    const open = withCaches('{"open":{"cc":1,"cd":1}}');
    expect((await ask("DELETE", "/_api/v1/cache-config/open", { token: open })).status).toBe(200);
    expect(server.caches.has("open")).toBe(false);
    expect((await ask("POST", "/_api/v1/cache-config/open", { token: open, body: create })).status).toBe(200);
  });

  it("get-missing-paths needs push and answers every hash as missing; a bad hash is 422", async () => {
    const { ask } = await started();
    const token = withCaches('{"secret":{"w":1}}');
    const ok = await ask("POST", "/_api/v1/get-missing-paths", {
      token,
      body: '{"cache":"secret","store_path_hashes":["00000000000000000000000000000000"]}',
    });
    expect([ok.status, JSON.parse(ok.body)]).toEqual([
      200,
      { missing_paths: ["00000000000000000000000000000000"] },
    ]);
    const bad = await ask("POST", "/_api/v1/get-missing-paths", {
      token,
      body: '{"cache":"secret","store_path_hashes":["0000000000000000000000000000000e"]}',
    });
    expect(bad.status).toBe(422);
    expect(
      (
        await ask("POST", "/_api/v1/get-missing-paths", {
          token: PULL_SECRET,
          body: '{"cache":"secret","store_path_hashes":[]}',
        })
      ).status,
    ).toBe(403);
  });
});
