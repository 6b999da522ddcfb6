import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { SIGNING_KEY_BITS } from "../../components/attic/signingKey";
import { ATTIC_CLAIM, MAX_RSA_BITS, mintToken, tokenClaims, verifyJwt } from "../../components/attic/tokens";
import { expiry, globMatches, type TokenConfig } from "../../config/schema";
import { FakeAtticd } from "../support/fakeAtticd";
import { exampleBlocks, ROOT, toConfigMap } from "../support/stacks";
import { synth } from "../../ci/commands/synth/harness";
import { FIXTURE_SIGNING_KEY_PEM } from "../../ci/commands/synth/mocks";

const PUBLIC_KEY = createPublicKey(createPrivateKey(FIXTURE_SIGNING_KEY_PEM))
  .export({ type: "spki", format: "pem" })
  .toString();

async function officeTokens(
  edit: (b: Record<string, any>) => void = () => {},
): Promise<Record<string, string>> {
  const blocks = exampleBlocks("office") as Record<string, any>;
  edit(blocks);
  const result = await synth({ stack: "office", config: toConfigMap(blocks), showSecrets: true });
  return (result.outputs.office as { tokens: Record<string, string> }).tokens;
}

let tokens: Record<string, string>;
beforeAll(async () => {
  tokens = await officeTokens();
});

describe("minted tokens (office example stack)", () => {
  it("verify with the stack's public key and carry exactly the configured claims", () => {
    const { header, claims } = verifyJwt(tokens.ci!, PUBLIC_KEY);
    expect(header).toEqual({ alg: "RS256", typ: "JWT" });
    expect(claims).toEqual({
      sub: "office-ci",
      exp: Date.parse("2028-01-01T00:00:00Z") / 1000,
      [ATTIC_CLAIM]: { caches: { n3x: { r: 1, w: 1 } } },
    });
    expect(verifyJwt(tokens.developers!, PUBLIC_KEY).claims).toEqual({
      sub: "office-developers",
      exp: Date.parse("2027-07-01T00:00:00Z") / 1000,
      [ATTIC_CLAIM]: { caches: { n3x: { r: 1 } } },
    });
  });

  it("do not verify with another key", () => {
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({
      type: "spki",
      format: "pem",
    });
    expect(() => verifyJwt(tokens.ci!, other.toString())).toThrow("signature does not verify");
  });

  it("are identical across runs", async () => {
    expect(await officeTokens()).toEqual(tokens);
  });

  it("changing one token's config re-mints that token only", async () => {
    const changed = await officeTokens((b) => (b["attic-infra:attic"].tokens[1].validUntil = "2027-09-30"));
    expect(changed.ci).toBe(tokens.ci);
    expect(changed.developers).not.toBe(tokens.developers);
  });
});

describe("claims", () => {
  const base: TokenConfig = {
    name: "t",
    subject: "s",
    validUntil: "2027-12-31",
    permissions: { n3x: ["pull"] },
  };

  it("maps every permission to its letter, with the integer 1", () => {
    const claims = tokenClaims(
      {
        ...base,
        permissions: {
          "n3x-*": [
            "destroyCache",
            "configureRetention",
            "configureCache",
            "createCache",
            "delete",
            "push",
            "pull",
          ],
        },
      },
      ["n3x-a"],
    );
    expect(claims[ATTIC_CLAIM]).toEqual({
      caches: { "n3x-a": { r: 1, w: 1, d: 1, cc: 1, cr: 1, cq: 1, cd: 1 } },
    });
  });

  it("validUntil as a date lasts through that day (UTC); a timestamp is taken as given", () => {
    expect(expiry("2027-12-31")).toBe(Date.parse("2028-01-01T00:00:00Z") / 1000);
    expect(expiry("2027-12-31T12:00:00Z")).toBe(Date.parse("2027-12-31T12:00:00Z") / 1000);
  });

  it("sets nbf only when notBefore is configured, and never iat", () => {
    expect(tokenClaims(base, ["n3x"])).not.toHaveProperty("nbf");
    expect(tokenClaims(base, ["n3x"])).not.toHaveProperty("iat");
    expect(tokenClaims({ ...base, notBefore: "2027-01-01" }, ["n3x"]).nbf).toBe(
      Date.parse("2027-01-01T00:00:00Z") / 1000,
    );
  });

  it("mintToken is deterministic", () => {
    expect(mintToken(FIXTURE_SIGNING_KEY_PEM, base, ["n3x"])).toBe(
      mintToken(FIXTURE_SIGNING_KEY_PEM, base, ["n3x"]),
    );
  });
});

describe("globs, expanded at minting", () => {
  const overlapping: TokenConfig = {
    name: "t",
    subject: "s",
    validUntil: "2099-12-31",
    permissions: { "*": ["pull"], "n3x-*": ["pull", "push"], "n3x-foo": ["delete"] },
  };
  const CACHES = ["other", "n3x-foo", "n3x-bar", "n3x-"];

  it("become exact cache names with the union of every key that covers them, in code-point order", () => {
    const caches = tokenClaims(overlapping, CACHES)[ATTIC_CLAIM].caches;
    expect(JSON.stringify(caches)).toBe(
      JSON.stringify({
        "n3x-": { r: 1, w: 1 },
        "n3x-bar": { r: 1, w: 1 },
        "n3x-foo": { r: 1, w: 1, d: 1 },
        other: { r: 1 },
      }),
    );
    // The same claim whatever the order of the config.
    const reordered = {
      ...overlapping,
      permissions: { "n3x-foo": ["delete"], "n3x-*": ["push", "pull"], "*": ["pull"] },
    };
    expect(tokenClaims(reordered as TokenConfig, [...CACHES].reverse())).toEqual(
      tokenClaims(overlapping, CACHES),
    );
  });

  it("a cache named like an Object.prototype member is a plain entry", () => {
    const permissions = Object.fromEntries([["constructor", ["pull"]]]) as TokenConfig["permissions"];
    const caches = tokenClaims({ ...overlapping, permissions }, ["constructor"])[ATTIC_CLAIM].caches;
    expect(Object.hasOwn(caches, "constructor")).toBe(true);
    expect(JSON.parse(JSON.stringify(caches))).toEqual({ constructor: { r: 1 } });
  });

  it("the minted token grants on every declared cache what the config says, under atticd's first-match rule (fake atticd)", async () => {
    const server = new FakeAtticd(PUBLIC_KEY);
    for (const name of CACHES)
      server.caches.set(name, {
        is_public: false,
        store_dir: "/nix/store",
        priority: 41,
        upstream_cache_key_names: [],
        retention_period: "Global",
        public_key: `${name}:AAAA`,
      });
    const port = await server.listen();
    try {
      const jwt = mintToken(FIXTURE_SIGNING_KEY_PEM, overlapping, CACHES);
      const headers = { authorization: `Bearer ${jwt}`, "content-type": "application/json" };
      for (const cache of CACHES) {
        const granted = new Set(
          Object.entries(overlapping.permissions)
            .filter(([p]) => globMatches(p, cache))
            .flatMap(([, perms]) => perms),
        );
        const pull = await fetch(`http://127.0.0.1:${port}/${cache}/nix-cache-info`, { headers });
        const push = await fetch(`http://127.0.0.1:${port}/_api/v1/get-missing-paths`, {
          method: "POST",
          headers,
          body: JSON.stringify({ cache, store_path_hashes: [] }),
        });
        expect([cache, pull.status, push.status]).toEqual([
          cache,
          granted.has("pull") ? 200 : 403,
          granted.has("push") ? 200 : 403,
        ]);
      }
    } finally {
      await server.close();
    }
  });
});

describe("the signing key's size", () => {
  it("the stack generates a key atticd accepts (jwt-simple: at most 4096 bits)", () => {
    expect(SIGNING_KEY_BITS).toBeLessThanOrEqual(MAX_RSA_BITS);
    expect(MAX_RSA_BITS).toBe(4096);
  });

  it("minting with a larger key is refused with the reason", () => {
    const big = readFileSync(path.join(ROOT, "test", "fixtures", "rsa-4104-signing-key.pem"), "utf8");
    const t: TokenConfig = {
      name: "t",
      subject: "s",
      validUntil: "2099-12-31",
      permissions: { n3x: ["pull"] },
    };
    expect(() => mintToken(big, t, ["n3x"])).toThrow(
      "the token signing key is 4104-bit RSA; atticd (jwt-simple 0.11.9) refuses keys over 4096 bits and would not start: use a key of at most 4096 bits",
    );
  });
});
