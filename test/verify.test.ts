/**
 * `npm run verify` against the fake atticd (test/support/fakeAtticd.ts), over HTTP and over HTTPS
 * with certificates made here and trusted through --ca. The outputs are built the way the program
 * builds them (the real token minting and nix.conf snippet), with endpoints pointing at the fake.
 * Proven: each check's verdict and sentence, the exit status, the JSON shape, that no token value
 * is ever printed. Not proven: a real atticd, real DNS, a public CA chain (see the fake's header).
 */
import { execFile } from "node:child_process";
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { main } from "../ci/commands/verify/cli";
import { UsageError } from "../ci/commands/verify/site";
import { multiSiteNixConfSnippet } from "../components/attic/nixConf";
import { nixConfSnippet, netrcLine } from "../components/attic/server";
import { ATTIC_CLAIM, type AtticClaims, mintToken, signJwt } from "../components/attic/tokens";
import { grants, whyAtticdIgnores } from "../ci/commands/verify/tokens";
import type { TokenConfig } from "../config/schema";
import { type TestCertificates, makeTestCertificates } from "./support/certs";
import { FakeAtticd } from "./support/fakeAtticd";
import { ROOT } from "./support/stacks";
import { scaled } from "./support/timeScale";
import { haveTool } from "./support/tools";
import { FIXTURE_SIGNING_KEY_PEM } from "../ci/commands/synth/mocks";

const PUBLIC_KEY = createPublicKey(createPrivateKey(FIXTURE_SIGNING_KEY_PEM))
  .export({ type: "spki", format: "pem" })
  .toString();
const N3X_KEY = "n3x:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
const SECRET_KEY = "secret:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB=";

const token = (t: Partial<TokenConfig> & Pick<TokenConfig, "name" | "permissions">): TokenConfig => ({
  subject: t.name,
  validUntil: "2099-12-31",
  ...t,
});
/** ci pushes to both caches; reader only pulls the private one. */
const TOKENS = [
  token({
    name: "ci",
    subject: "github-actions",
    permissions: { n3x: ["pull", "push"], secret: ["pull", "push"] },
  }),
  token({ name: "reader", permissions: { secret: ["pull"] } }),
];

/** verify's --wait for GET / in these tests (the servers are up, or down on purpose), in seconds. */
const WAIT = scaled(0.3).ms / 1000;

let dir: string;
let servers: FakeAtticd[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

/** A fake atticd holding the public cache n3x (priority 41) and the private cache secret (30). */
async function server(opts: { tls?: { key: string; cert: string }; secretIsPublic?: boolean } = {}) {
  const s = new FakeAtticd(PUBLIC_KEY, opts.tls);
  servers.push(s);
  const common = {
    store_dir: "/nix/store",
    upstream_cache_key_names: [],
    retention_period: "Global" as const,
  };
  s.caches.set("n3x", { ...common, is_public: true, priority: 41, public_key: N3X_KEY });
  s.caches.set("secret", {
    ...common,
    is_public: opts.secretIsPublic ?? false,
    priority: 30,
    public_key: SECRET_KEY,
  });
  const port = await s.listen();
  return { s, endpoint: `${opts.tls ? "https" : "http"}://127.0.0.1:${port}/` };
}

/** Stack outputs as index.ts exports them, for one site at `endpoint`. */
function outputs(
  endpoint: string,
  o: { tokens?: TokenConfig[]; n3xKey?: string; raw?: Record<string, string> } = {},
) {
  const caches = {
    n3x: { substituter: `${endpoint}n3x`, publicKey: o.n3xKey ?? N3X_KEY, public: true, priority: 41 },
    secret: { substituter: `${endpoint}secret`, publicKey: SECRET_KEY, public: false, priority: 30 },
  };
  const tokens = Object.fromEntries(
    (o.tokens ?? TOKENS).map((t) => [t.name, mintToken(FIXTURE_SIGNING_KEY_PEM, t, ["n3x", "secret"])]),
  );
  Object.assign(tokens, o.raw);
  return {
    sites: ["aws"],
    tokenPublicKey: PUBLIC_KEY,
    aws: {
      endpoint,
      caches,
      tokens,
      nixConf: nixConfSnippet(Object.values(caches)),
      netrc: Object.fromEntries(Object.entries(tokens).map(([k, v]) => [k, netrcLine(endpoint, v)])),
      ...AWS_NAMES,
    },
  };
}

/** The AWS site's other outputs (names verify does not read; the contract requires them). */
const AWS_NAMES = {
  bucketName: "chunks",
  databaseEndpoint: "db.example:5432",
  ecs: { cluster: "cluster", apiService: "api" },
  logGroup: "/attic-infra/test",
  gcRunTask: {
    cluster: "arn:cluster",
    taskDefinition: "gc",
    subnets: [],
    securityGroups: [],
    assignPublicIp: false,
  },
  // Checked with SNS only where AWS credentials are (test/verifyAlarms.test.ts); here there are none.
  alarmTopicArn: "arn:aws:sns:us-east-1:123456789012:alarms",
};

/** Everything any scenario printed, to search for token values. */
const printed: string[] = [];
const tokenValues = new Set<string>();

async function verify(outs: ReturnType<typeof outputs>, args: string[] = []) {
  for (const v of Object.values(outs.aws.tokens)) tokenValues.add(v);
  const file = path.join(dir, `outputs-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(outs));
  let text = "";
  const code = await main(["--outputs", file, "--wait", String(WAIT), ...args], (s) => (text += s));
  printed.push(text);
  const lines = text.split("\n").filter((l) => / aws: /.test(l));
  const line = (what: string) => lines.find((l) => l.includes(` aws: ${what} — `));
  return { code, text, lines, line };
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), "verify-"));
  // No AWS credentials reach the SDK (verifyAlarms.test.ts covers the alarm check with them).
  for (const k of Object.keys(process.env)) if (k.startsWith("AWS_")) delete process.env[k];
  Object.assign(process.env, {
    AWS_SHARED_CREDENTIALS_FILE: path.join(dir, "no-credentials"),
    AWS_CONFIG_FILE: path.join(dir, "no-config"),
    AWS_EC2_METADATA_DISABLED: "true",
  });
});

describe("npm run verify over HTTP", () => {
  it("all green: every check of the issue passes, one line each, read-only, exit 0", async () => {
    const { s, endpoint } = await server();
    const r = await verify(outputs(endpoint));
    expect(r.code, r.text).toBe(0);
    expect(new Set(r.lines.map((l) => /aws: (.*?) — /.exec(l)![1])).size).toBe(17);
    expect(r.lines).toHaveLength(17);
    // Nothing but reads: no create, configure, destroy or upload; pushes only as get-missing-paths.
    expect(
      new Set(s.requests.map((q) => `${q.method} ${q.path.replace(/\/(n3x|secret)(\/|$)/, "/<cache>$2")}`)),
    ).toEqual(
      new Set([
        "GET /",
        "GET /<cache>/nix-cache-info",
        "GET /_api/v1/cache-config/<cache>",
        "POST /_api/v1/get-missing-paths",
      ]),
    );
    const passed = [
      "token ci",
      "token reader",
      "nix.conf snippet",
      "endpoint answers GET /",
      "clock",
      "cache n3x nix-cache-info",
      "cache n3x public key",
      "token ci may push to n3x",
      "cache secret refuses anonymous access",
      "cache secret nix-cache-info",
      "cache secret public key",
      "token ci may pull from secret",
      "token ci may push to secret",
      "token reader may pull from secret",
      "token reader is refused push on secret",
    ];
    for (const check of passed) expect(r.line(check), `${check}\n${r.text}`).toMatch(/^✓ /);
    expect(r.line("cache n3x nix-cache-info")).toContain("anonymously: StoreDir /nix/store, Priority 41");
    expect(r.line("cache secret nix-cache-info")).toContain(
      "with token ci: StoreDir /nix/store, Priority 30",
    );
    expect(r.line("token ci may push to n3x")).toContain(
      "get-missing-paths (needs push, writes nothing) answered 200",
    );
    expect(r.line("token reader is refused push on secret")).toContain("403 AccessError");
    expect(r.line("token ci")).toContain("subject github-actions, valid until 2100-01-01T00:00:00Z");
    expect(r.line("token ci may pull from n3x")).toMatch(
      /^skip .*n3x is public: a pull would succeed even with an invalid token/,
    );
    expect(r.line("alarm topic has a confirmed subscription")).toMatch(/^skip .*no AWS credentials here/);
    expect(r.text).toMatch(/\nOK: 15 passed, 0 failed, 0 warnings, 2 skipped\n$/);
  });

  it("retries GET / within --wait while the server is still starting", async () => {
    const { s, endpoint } = await server();
    s.unavailableFor = 2;
    const file = path.join(dir, "retry.json");
    writeFileSync(file, JSON.stringify(outputs(endpoint)));
    let text = "";
    expect(await main(["--outputs", file, "--wait", String(scaled(2).ms / 1000)], (t) => (text += t))).toBe(
      0,
    );
    expect(text).toMatch(/✓ {4}aws: endpoint answers GET \/ — .* answered 200 in \d+ ms after 3 attempts/);
  });

  it("wrong public key in the outputs: that check fails with its sentence, exit 1", async () => {
    const { endpoint } = await server();
    const r = await verify(outputs(endpoint, { n3xKey: "n3x:CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC=" }));
    expect(r.code).toBe(1);
    expect(r.lines.filter((l) => l.startsWith("✗"))).toEqual([
      `✗    aws: cache n3x public key — the server signs with ${N3X_KEY}, the outputs say n3x:CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC=: Nix rejects every path of this cache where that key is trusted; run pulumi refresh and pulumi up, then update every consumer's trusted-public-keys`,
    ]);
    expect(r.text).toContain("FAILED: ");
  });

  it("a cache whose priority drifted on the server fails its nix-cache-info check", async () => {
    const { s, endpoint } = await server();
    s.caches.get("n3x")!.priority = 40;
    const r = await verify(outputs(endpoint));
    expect(r.code).toBe(1);
    expect(r.lines.filter((l) => l.startsWith("✗"))).toEqual([
      "✗    aws: cache n3x nix-cache-info — Priority is 40, the outputs say 41 (pulumi refresh reads the server's settings back, and the next pulumi up restores the configured ones)",
    ]);
  });

  it("the CI token lacking push: fails, because CI pushes with it and push.sh only warns", async () => {
    const { endpoint } = await server();
    const r = await verify(
      outputs(endpoint, {
        tokens: [token({ name: "ci", permissions: { n3x: ["pull"], secret: ["pull", "push"] } })],
      }),
    );
    expect(r.code).toBe(1);
    expect(r.lines.filter((l) => l.startsWith("✗"))).toEqual([
      "✗    aws: token ci may push to n3x — the token grants pull but not push on n3x, and it is the token ci-secrets hands to CI, which pushes with it (ci/nix-project/push.sh only warns when a push fails): add push to its permissions and pulumi up",
    ]);
  });

  it("a server that does not run the stack's signing key refuses the tokens: pull and push fail", async () => {
    const { endpoint } = await server();
    const s = servers[0]!;
    // The server verifies with another key, as after a rotation the server never received.
    (s as unknown as { publicKeyPem: string }).publicKeyPem = createPublicKey(
      createPrivateKey(makeOtherKey()),
    )
      .export({ type: "spki", format: "pem" })
      .toString();
    const r = await verify(outputs(endpoint));
    expect(r.code).toBe(1);
    expect(r.line("token ci may push to n3x")).toMatch(
      /^✗ .*get-missing-paths answered 403 AccessError although the token grants push: atticd treats a token it cannot verify as anonymous — does the server run this stack's signing key/,
    );
    expect(r.line("token ci may pull from secret")).toMatch(/^✗ .*nix-cache-info answered 401 Unauthorized/);
    expect(r.line("cache secret nix-cache-info")).toMatch(/^✗ /);
  });

  it("a private cache answering anonymously: fails with its sentence, exit 1", async () => {
    const { endpoint } = await server({ secretIsPublic: true });
    const r = await verify(outputs(endpoint));
    expect(r.code).toBe(1);
    expect(r.line("cache secret refuses anonymous access")).toBe(
      `✗    aws: cache secret refuses anonymous access — ${endpoint}secret/nix-cache-info answered 200 to an anonymous request, but the outputs say the cache is private: the server has it public. pulumi refresh reads that back and the next pulumi up makes it private again; or declare it public: true in attic-infra:attic.caches`,
    );
  });

  it("anonymous 403 or 404 on a private cache is a failure: atticd answers exactly 401, so something in front answered", async () => {
    const { endpoint } = await server();
    for (const status of [403, 404]) {
      // A proxy with its own rule for the private cache's anonymous requests; the rest reaches atticd.
      const proxy = http.createServer((req, res) => {
        if (!req.headers.authorization && req.url === "/secret/nix-cache-info") {
          res.writeHead(status, { "content-type": "text/html" });
          return void res.end("<html>denied</html>");
        }
        const upstream = http.request(
          new URL(req.url!, endpoint),
          { method: req.method, headers: req.headers },
          (up) => {
            res.writeHead(up.statusCode!, up.headers);
            up.pipe(res);
          },
        );
        req.pipe(upstream);
      });
      await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
      const front = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/`;
      try {
        const r = await verify(outputs(front));
        expect(r.code).toBe(1);
        expect(r.line("cache secret refuses anonymous access")).toBe(
          `✗    aws: cache secret refuses anonymous access — anonymous nix-cache-info answered ${status}; atticd answers an anonymous request for a private cache with exactly 401 Unauthorized, so this answer comes from something in front of it (a proxy, a load balancer rule) or the substituter URL reaches another server`,
        );
      } finally {
        proxy.closeAllConnections();
        await new Promise<void>((resolve) => proxy.close(() => resolve()));
      }
    }
  });

  it("a token with push but not pull on a private cache fails: attic push reads the cache's config first, which needs pull", async () => {
    const { endpoint } = await server();
    // Minted as an older version did (the config now refuses push without pull on a private cache).
    const r = await verify(
      outputs(endpoint, {
        tokens: [token({ name: "ci", permissions: { n3x: ["pull", "push"], secret: ["push"] } })],
      }),
    );
    expect(r.code).toBe(1);
    expect(r.lines.filter((l) => l.startsWith("✗"))).toEqual([
      "✗    aws: token ci may push to secret — get-missing-paths answered 200, but the token cannot pull secret, which is private: attic push and attic use read the cache's configuration first (GET cache-config answered 403 AccessError with this token), so every push fails; add pull to its permissions, pulumi up, then re-run ci-secrets",
    ]);
    expect(r.line("token ci is refused pull on secret")).toMatch(
      /^✓ .*nix-cache-info answered 403 AccessError$/,
    );
  });

  it("tokens whose claims atticd would drop fail with the reason, and are not used against the server", async () => {
    const { endpoint, s } = await server();
    const claims = (caches: unknown) =>
      ({ sub: "x", exp: 4102444800, [ATTIC_CLAIM]: { caches } }) as unknown as AtticClaims;
    const glob = signJwt(FIXTURE_SIGNING_KEY_PEM, claims({ "secre?": { r: 1 } }));
    const bool = signJwt(FIXTURE_SIGNING_KEY_PEM, claims({ secret: { r: 1, w: true } }));
    const r = await verify(
      outputs(endpoint, {
        tokens: [],
        raw: { glob, bool },
      }),
    );
    expect(r.code).toBe(1);
    const fix =
      "; fix the token's permissions in attic-infra:attic.tokens, pulumi up, then re-run ci-secrets";
    expect(r.line("token glob")).toBe(
      `✗    aws: token glob — atticd would ignore it and treat every request with it as anonymous: its permission key "secre?" is not a cache name or a glob atticd reads (only * is a wildcard)${fix}`,
    );
    expect(r.line("token bool")).toBe(
      `✗    aws: token bool — atticd would ignore it and treat every request with it as anonymous: "w" on "secret" is true, not the integer 0 or 1${fix}`,
    );
    expect(r.line("token bool on secret")).toBe(
      "skip aws: token bool on secret — the token itself is not valid (see above)",
    );
    // verify never sent them; the stand-in agrees that atticd would take both as anonymous.
    expect(s.requests.filter((q) => q.tokenError)).toEqual([]);
    for (const jwt of [glob, bool]) {
      const a = await fetch(`${endpoint}secret/nix-cache-info`, {
        headers: { authorization: `Bearer ${jwt}` },
      });
      expect([a.status, s.requests.at(-1)!.subject, s.requests.at(-1)!.tokenError !== undefined]).toEqual([
        401,
        null,
        true,
      ]);
    }
  });

  it("a private cache no exported token may pull: its content and key checks are skipped, refusals still checked", async () => {
    const { endpoint } = await server();
    const r = await verify(
      outputs(endpoint, { tokens: [token({ name: "ci", permissions: { n3x: ["pull", "push"] } })] }),
    );
    expect(r.code, r.text).toBe(0);
    const why = "the cache is private and no valid exported token may pull it";
    expect(r.line("cache secret nix-cache-info")).toBe(`skip aws: cache secret nix-cache-info — ${why}`);
    expect(r.line("cache secret public key")).toBe(`skip aws: cache secret public key — ${why}`);
    expect(r.line("cache secret refuses anonymous access")).toMatch(/^✓ .*401 Unauthorized$/);
    expect(r.line("token ci is refused pull on secret")).toMatch(/^✓ .*401 Unauthorized$/);
    expect(r.line("token ci is refused push on secret")).toMatch(/^✓ .*401 Unauthorized$/);
  });

  it("the server down: GET / fails after the bounded wait, the rest is skipped, exit 1", async () => {
    const { s, endpoint } = await server();
    await s.close();
    servers = [];
    const r = await verify(outputs(endpoint));
    expect(r.code).toBe(1);
    expect(r.line("endpoint answers GET /")).toMatch(
      new RegExp(
        `^✗ {4}aws: endpoint answers GET / — ${endpoint} could not be reached \\(ECONNREFUSED.*\\) \\(\\d+ attempts within --wait ${WAIT} s\\)$`,
      ),
    );
    expect(r.line("cache n3x")).toBe("skip aws: cache n3x — the endpoint does not answer");
  });

  it("an expired token fails locally; a server clock behind a token's nbf is a warning", async () => {
    const { s, endpoint } = await server();
    s.clockOffsetSeconds = -600;
    const nbf = new Date(Date.now() - 60_000).toISOString().replace(/\.\d+Z$/, "Z");
    const r = await verify(
      outputs(endpoint, {
        tokens: [
          ...TOKENS,
          token({ name: "old", validUntil: "2020-01-31", permissions: { n3x: ["pull"] } }),
          token({ name: "fresh", notBefore: nbf, permissions: { n3x: ["pull"] } }),
        ],
      }),
    );
    expect(r.code).toBe(1);
    expect(r.line("token old")).toBe(
      "✗    aws: token old — expired on 2020-02-01T00:00:00Z: atticd treats it as anonymous; extend validUntil and pulumi up",
    );
    expect(r.line("clock")).toMatch(
      /^! {4}aws: clock — the server's clock is (599|600|601) s behind ours: it rejects token fresh until .* \(nbf\); fix the server's time \(NTP\)$/,
    );
  });

  it("outputs from before verify (no public, priority, tokenPublicKey) give warnings, not failures", async () => {
    const { endpoint } = await server();
    const outs = outputs(endpoint);
    const { tokenPublicKey: _, ...old } = outs;
    for (const c of Object.values(old.aws.caches) as Partial<{ public: boolean; priority: number }>[]) {
      delete c.public;
      delete c.priority;
    }
    const r = await verify(old as typeof outs);
    expect(r.code, r.text).toBe(0);
    expect(r.line("cache secret visibility")).toMatch(
      /^! {4}aws: cache secret visibility — the outputs do not say whether the cache is public .*; it answers anonymous requests with 401 Unauthorized$/,
    );
    expect(r.line("cache secret nix-cache-info")).toMatch(
      /^! .*with token ci: .*the outputs carry no priority/,
    );
    expect(r.line("token ci")).toMatch(/^! .*signature not checked: the outputs have no tokenPublicKey$/);
    expect(r.text).toContain("0 failed");
  });

  it("--json is valid JSON with one entry per check, and the same verdicts", async () => {
    const { endpoint } = await server();
    const human = await verify(outputs(endpoint));
    const r = await verify(outputs(endpoint), ["--json"]);
    const parsed = JSON.parse(r.text) as {
      checks: { site: string; check: string; status: string; detail: string }[];
      summary: Record<string, number>;
    };
    expect(parsed.checks).toHaveLength(human.lines.length);
    expect(parsed.checks.map((c) => c.check)).toEqual(human.lines.map((l) => /aws: (.*?) — /.exec(l)![1]));
    expect(parsed.checks.find((c) => c.check === "cache n3x public key")).toEqual({
      site: "aws",
      check: "cache n3x public key",
      status: "pass",
      detail: `the server signs with ${N3X_KEY}, as the outputs say`,
    });
    expect(parsed.summary).toEqual({ pass: 15, fail: 0, warn: 0, skip: 2 });
  });

  it("--site checks only the chosen sites; the office snippet lists its caches, then AWS's, by priority", async () => {
    const { endpoint } = await server();
    const aws = outputs(endpoint).aws;
    const office = {
      endpoint: "http://127.0.0.1:9/",
      tokens: aws.tokens,
      netrc: aws.netrc,
      modulePath: "/etc/nixos/attic-infra/atticd.nix",
      caches: {
        lan: { substituter: "http://127.0.0.1:9/lan", publicKey: "lan:x", public: true, priority: 30 },
      },
    };
    const file = path.join(dir, "two-sites.json");
    const sites = [
      { site: "office", caches: office.caches },
      { site: "aws", caches: aws.caches },
    ];
    writeFileSync(
      file,
      JSON.stringify({
        sites: ["aws", "office"],
        tokenPublicKey: PUBLIC_KEY,
        aws: { ...aws, nixConf: multiSiteNixConfSnippet(sites, "aws") },
        office: { ...office, nixConf: multiSiteNixConfSnippet(sites, "office") },
      }),
    );
    let text = "";
    expect(await main(["--outputs", file, "--site", "aws"], (t) => (text += t))).toBe(0);
    expect(text).not.toContain("office:");
    text = "";
    expect(await main(["--outputs", file, "--site", "office", "--wait", "0"], (t) => (text += t))).toBe(1);
    expect(text).toMatch(
      /✓ {4}office: nix\.conf snippet — substituters http:\/\/127\.0\.0\.1:9\/lan\?priority=30 http:\S*\/secret\?priority=31 http:\S*\/n3x\?priority=42 with their keys, in the documented order/,
    );
    expect(text).not.toContain(" aws:");
  });
});

describe("outputs that are not the contract's (components/outputs.ts)", () => {
  it("are a usage error naming every wrong path, never a value", async () => {
    const outs = outputs("http://127.0.0.1:9/");
    const { publicKey: _, ...keyless } = outs.aws.caches.n3x;
    const bad = {
      ...outs,
      aws: {
        ...outs.aws,
        caches: { ...outs.aws.caches, n3x: keyless },
        tokens: { ci: "SYNTHSECRET-not-a-jwt" },
      },
    };
    const file = path.join(dir, "bad-outputs.json");
    writeFileSync(file, JSON.stringify(bad));
    const err = await main(["--outputs", file], () => {}).catch((e: Error) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(
      /^these are not attic-infra's stack outputs \(docs\/outputs\.md\): /,
    );
    expect((err as Error).message).toContain("aws.caches.n3x.publicKey: ");
    expect((err as Error).message).toContain("aws.tokens.ci: not a JWT");
    expect((err as Error).message).not.toContain("SYNTHSECRET");
  });
});

describe.skipIf(!haveTool("openssl"))(
  "npm run verify over HTTPS (certificates made with openssl, trusted via --ca)",
  () => {
    let certs: TestCertificates;
    beforeAll(() => {
      certs = makeTestCertificates();
    });

    it("all green with a private CA passed as --ca: the certificate's host, issuer and days left", async () => {
      const { endpoint } = await server({ tls: certs.valid });
      const r = await verify(outputs(endpoint), ["--ca", certs.caFile, "--cert-warn-days", "0"]);
      expect(r.code, r.text).toBe(0);
      expect(r.line("TLS certificate")).toMatch(
        /^✓ {4}aws: TLS certificate — valid for 127\.0\.0\.1, issued by attic-infra test CA, expires \d{4}-\d\d-\d\d \(1 day\)$/,
      );
      expect(r.line("cache secret public key")).toMatch(/^✓ /);
    });

    it("a certificate expiring within --cert-warn-days is a warning, not a failure", async () => {
      const { endpoint } = await server({ tls: certs.valid });
      const r = await verify(outputs(endpoint), ["--ca", certs.caFile]);
      expect(r.code).toBe(0);
      expect(r.line("TLS certificate")).toMatch(
        /^! {4}aws: TLS certificate — .*: only 1 day left \(--cert-warn-days 21\)$/,
      );
    });

    it("without --ca the private CA is not trusted: the certificate check fails and says how to fix it", async () => {
      const { endpoint } = await server({ tls: certs.valid });
      const r = await verify(outputs(endpoint));
      expect(r.code).toBe(1);
      expect(r.line("TLS certificate")).toMatch(
        /^✗ .*the chain does not lead to a trusted CA \(for a private CA pass --ca <pem>\)$/,
      );
    });

    it("a certificate for another host name fails, as Nix would refuse it", async () => {
      const { endpoint } = await server({ tls: certs.otherHost });
      const r = await verify(outputs(endpoint), ["--ca", certs.caFile]);
      expect(r.code).toBe(1);
      expect(r.line("TLS certificate")).toMatch(
        /^✗ {4}aws: TLS certificate — .*127\.0\.0\.1 is not in the cert's list/,
      );
    });

    it("an expired certificate: its own failing line, the rest skipped, exit 1", async () => {
      const { endpoint } = await server({ tls: certs.expired });
      const r = await verify(outputs(endpoint), ["--ca", certs.caFile]);
      expect(r.code).toBe(1);
      expect(r.line("TLS certificate")).toMatch(
        /^✗ {4}aws: TLS certificate — expired on 2020-02-01 \(\d+ days ago\): Nix refuses the cache$/,
      );
      expect(r.line("endpoint answers GET /")).toMatch(/^✓ /);
      expect(r.line("cache n3x")).toBe("skip aws: cache n3x — the certificate is not valid");
    });
  },
);

describe("npm run verify as a program", () => {
  const run = (args: string[], env: Record<string, string> = {}) =>
    promisify(execFile)(
      process.execPath,
      [
        path.join(ROOT, "node_modules/tsx/dist/cli.mjs"),
        path.join(ROOT, "ci/commands/verify/cli.ts"),
        ...args,
      ],
      { encoding: "utf8", env: { ...process.env, ...env } },
    ).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({
        code: e.code,
        stdout: e.stdout,
        stderr: e.stderr,
      }),
    );

  it("package.json's verify script runs this file", () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts.verify).toBe("tsx ci/commands/verify/cli.ts");
  });

  it("--help documents every flag; a usage error exits 2", async () => {
    const help = await run(["--help"]);
    expect(help.code).toBe(0);
    for (const flag of [
      "--stack",
      "--outputs",
      "--site",
      "--json",
      "--ca",
      "--cert-warn-days",
      "--wait",
      "--help",
    ])
      expect(help.stdout).toContain(flag);
    const bad = await run(["--outputs", "x.json", "--stack", "dev"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("verify: give exactly one of --stack or --outputs");
  });

  it("--stack reads `pulumi stack output --json --show-secrets`; a failing check exits 1 from the process", async () => {
    const { endpoint } = await server({ secretIsPublic: true });
    const outs = outputs(endpoint);
    const bin = mkdtempSync(path.join(dir, "bin-"));
    writeFileSync(path.join(bin, "outputs.json"), JSON.stringify(outs));
    // A pulumi stand-in: records its argv, prints the outputs.
    writeFileSync(
      path.join(bin, "pulumi"),
      `#!/bin/sh\nprintf '%s\\n' "$*" > "${bin}/argv"\ncat "${bin}/outputs.json"\n`,
      { mode: 0o755 },
    );
    // Async: the fake answers from this process while the program runs.
    const r = await run(["--stack", "dev", "--wait", String(WAIT)], { PATH: `${bin}:${process.env.PATH}` });
    printed.push(r.stdout + r.stderr);
    expect(readFileSync(path.join(bin, "argv"), "utf8")).toBe(
      "stack output --json --show-secrets --stack dev\n",
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("✗    aws: cache secret refuses anonymous access");
    expect(r.stdout + r.stderr).not.toContain(outs.aws.tokens.ci);
  });
});

describe("secrets", () => {
  it("no token value appears in anything verify printed (tokens are named, never shown)", () => {
    expect(printed.length).toBeGreaterThan(5);
    expect(tokenValues.size).toBeGreaterThan(3);
    for (const text of printed) {
      for (const v of tokenValues) {
        expect(text).not.toContain(v);
        // Nor the signature alone, the part that makes a token a credential.
        expect(text).not.toContain(v.split(".")[2]);
      }
      // And no check tried to print one: the CLI's redaction found nothing to replace.
      expect(text).not.toContain("<token ");
    }
    expect(printed.some((t) => t.includes("token ci"))).toBe(true);
  });
});

function makeOtherKey(): string {
  return generateKeyPairSync("rsa", { modulusLength: 2048 })
    .privateKey.export({ type: "pkcs8", format: "pem" })
    .toString();
}

describe("how verify reads a token's claims (ci/commands/verify/tokens.ts)", () => {
  it("grants: the exact name, then the first matching key in claim order, as atticd; names of Object.prototype members are plain", () => {
    const c = (caches: unknown) => ({ [ATTIC_CLAIM]: { caches } });
    expect(grants(c({ "*": { r: 1 }, "n3x-*": { r: 1, w: 1 } }), "n3x-foo")).toEqual({ r: 1 });
    expect(grants(c({ "*": { r: 1 }, "n3x-foo": {} }), "n3x-foo")).toEqual({});
    expect(grants(c({ "n3x-*": { w: 1 } }), "n3x-")).toEqual({ w: 1 });
    expect(grants(c({ n3x: { r: 1 } }), "constructor")).toEqual({});
    expect(grants(c({ constructor: { r: 1 } }), "constructor")).toEqual({ r: 1 });
  });

  it("whyAtticdIgnores reads numbers as written: 1.0 is not 1; a missing letter or an unknown one is fine", () => {
    const tok = (payload: string) =>
      `${Buffer.from('{"alg":"RS256","typ":"JWT"}').toString("base64url")}.${Buffer.from(payload).toString("base64url")}.x`;
    expect(whyAtticdIgnores(tok(`{"${ATTIC_CLAIM}":{"caches":{"a":{"r":1.0}}}}`))).toBe(
      '"r" on "a" is 1.0, not the integer 0 or 1',
    );
    expect(whyAtticdIgnores(tok(`{"${ATTIC_CLAIM}":{"caches":{"a":{"r":1,"x":"y"}}}}`))).toBeUndefined();
    expect(whyAtticdIgnores(tok(`{"exp":"1","${ATTIC_CLAIM}":{"caches":{}}}`))).toBe(
      "its exp is not a number",
    );
    expect(whyAtticdIgnores(tok(`{"sub":"x"}`))).toBe(`it has no ${ATTIC_CLAIM} claim with caches`);
  });
});
