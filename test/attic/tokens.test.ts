import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { ATTIC_CLAIM, mintToken, tokenClaims, verifyJwt } from "../../components/attic/tokens";
import { expiry, type TokenConfig } from "../../config/schema";
import { exampleBlocks, toConfigMap } from "../support/stacks";
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
    const claims = tokenClaims({
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
    });
    expect(claims[ATTIC_CLAIM]).toEqual({
      caches: { "n3x-*": { r: 1, w: 1, d: 1, cc: 1, cr: 1, cq: 1, cd: 1 } },
    });
  });

  it("validUntil as a date lasts through that day (UTC); a timestamp is taken as given", () => {
    expect(expiry("2027-12-31")).toBe(Date.parse("2028-01-01T00:00:00Z") / 1000);
    expect(expiry("2027-12-31T12:00:00Z")).toBe(Date.parse("2027-12-31T12:00:00Z") / 1000);
  });

  it("sets nbf only when notBefore is configured, and never iat", () => {
    expect(tokenClaims(base)).not.toHaveProperty("nbf");
    expect(tokenClaims(base)).not.toHaveProperty("iat");
    expect(tokenClaims({ ...base, notBefore: "2027-01-01" }).nbf).toBe(
      Date.parse("2027-01-01T00:00:00Z") / 1000,
    );
  });

  it("mintToken is deterministic", () => {
    expect(mintToken(FIXTURE_SIGNING_KEY_PEM, base)).toBe(mintToken(FIXTURE_SIGNING_KEY_PEM, base));
  });
});
