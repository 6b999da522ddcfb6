/**
 * Pull-only twins of the configured tokens (components/attic/pullTokens.ts), as pure functions and
 * as the office example stack exports them: what a pull-request job gets instead of a push token.
 */
import { createPrivateKey, createPublicKey } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { pullOnly } from "../../components/attic/pullTokens";
import { ATTIC_CLAIM, tokenClaims, verifyJwt } from "../../components/attic/tokens";
import type { TokenConfig } from "../../config/schema";
import { synth } from "../../ci/commands/synth/harness";
import { FIXTURE_SIGNING_KEY_PEM } from "../../ci/commands/synth/mocks";
import { exampleConfig } from "../support/stacks";

const PUBLIC_KEY = createPublicKey(createPrivateKey(FIXTURE_SIGNING_KEY_PEM))
  .export({ type: "spki", format: "pem" })
  .toString();

const token = (permissions: TokenConfig["permissions"]): TokenConfig => ({
  name: "ci",
  subject: "github-actions",
  validUntil: "2027-12-31",
  notBefore: "2026-01-01",
  permissions,
});

describe("pullOnly", () => {
  it("keeps subject (suffixed), expiry, not-before and caches, with pull and nothing else", () => {
    const pull = pullOnly(token({ n3x: ["pull", "push", "delete"], "fw-*": ["pull", "createCache"] }))!;
    expect(tokenClaims(pull, ["n3x", "fw-a"])).toEqual({
      sub: "github-actions-pull",
      exp: Date.parse("2028-01-01T00:00:00Z") / 1000,
      nbf: Date.parse("2026-01-01T00:00:00Z") / 1000,
      [ATTIC_CLAIM]: { caches: { "fw-a": { r: 1 }, n3x: { r: 1 } } },
    });
  });

  it("pulls exactly where its token pulls, over every declared cache, and nowhere else", () => {
    const original = token({
      secret: ["push"],
      "fw-*": ["pull"],
      n3x: ["pull", "push"],
      "*": ["configureCache"],
    });
    const declared = ["n3x", "fw-a", "secret", "other"];
    const pulls = (t: TokenConfig) =>
      Object.entries(tokenClaims(t, declared)[ATTIC_CLAIM].caches)
        .filter(([, letters]) => letters.r === 1)
        .map(([cache]) => cache);
    const twin = tokenClaims(pullOnly(original)!, declared)[ATTIC_CLAIM].caches;
    expect(pulls(pullOnly(original)!)).toEqual(pulls(original));
    expect(pulls(original).sort()).toEqual(["fw-a", "n3x"]);
    for (const letters of Object.values(twin))
      expect(Object.keys(letters).filter((l) => l !== "r")).toEqual([]);
  });

  it("a token that cannot pull anywhere has no twin", () => {
    expect(pullOnly(token({ n3x: ["push"], other: ["configureCache"] }))).toBeUndefined();
  });
});

describe("the office example's pull tokens", () => {
  let outputs: { tokens: Record<string, string>; pullTokens: Record<string, string> };
  beforeAll(async () => {
    const result = await synth({ stack: "office", config: exampleConfig("office"), showSecrets: true });
    outputs = result.outputs.office as typeof outputs;
  });

  it("each token that can pull has a twin, signed with the stack's key, that can only pull", () => {
    expect(Object.keys(outputs.pullTokens).sort()).toEqual(Object.keys(outputs.tokens).sort());
    for (const [name, jwt] of Object.entries(outputs.pullTokens)) {
      const { claims } = verifyJwt(jwt, PUBLIC_KEY);
      const original = verifyJwt(outputs.tokens[name]!, PUBLIC_KEY).claims;
      expect(claims.sub).toBe(`${original.sub}-pull`);
      expect(claims.exp).toBe(original.exp);
      for (const [pattern, perms] of Object.entries(claims[ATTIC_CLAIM].caches))
        expect(perms, `${name} ${pattern}`).toEqual(original[ATTIC_CLAIM].caches[pattern]!.r ? { r: 1 } : {});
    }
    expect(verifyJwt(outputs.pullTokens.ci!, PUBLIC_KEY).claims[ATTIC_CLAIM]).toEqual({
      caches: { n3x: { r: 1 } },
    });
  });

  it("are secret in the outputs, as the tokens are", async () => {
    const hidden = await synth({ stack: "office", config: exampleConfig("office") });
    expect((hidden.outputs.office as Record<string, unknown>).pullTokens).toBe("[secret]");
  });
});
