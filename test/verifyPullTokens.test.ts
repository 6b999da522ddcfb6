/**
 * `npm run verify`'s check of the pull-only tokens (ci/commands/verify/pullTokens.ts), on an office
 * site's outputs (no AWS, no alarm check); the server is not reachable, only the local token lines
 * are read. Proven: a pull token that can do more than pull, or that does not verify, fails.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../ci/commands/verify/cli";
import { pullOnly } from "../components/attic/pullTokens";
import { mintToken } from "../components/attic/tokens";
import type { TokenConfig } from "../config/schema";
import { FIXTURE_SIGNING_KEY_PEM } from "../ci/commands/synth/mocks";

const PUBLIC_KEY = createPublicKey(createPrivateKey(FIXTURE_SIGNING_KEY_PEM))
  .export({ type: "spki", format: "pem" })
  .toString();
const CI: TokenConfig = {
  name: "ci",
  subject: "github-actions",
  validUntil: "2099-12-31",
  permissions: { n3x: ["pull", "push"] },
};

async function pullTokenLines(pullTokens: Record<string, string>): Promise<string[]> {
  const endpoint = "http://127.0.0.1:9/";
  const dir = mkdtempSync(path.join(tmpdir(), "verify-pull-"));
  const file = path.join(dir, "outputs.json");
  writeFileSync(
    file,
    JSON.stringify({
      sites: ["office"],
      tokenPublicKey: PUBLIC_KEY,
      office: {
        endpoint,
        caches: { n3x: { substituter: `${endpoint}n3x`, publicKey: "n3x:AAAA", public: true, priority: 41 } },
        tokens: { ci: mintToken(FIXTURE_SIGNING_KEY_PEM, CI, ["n3x"]) },
        pullTokens,
        nixConf: "",
        netrc: {},
        modulePath: "/etc/nixos/attic-infra/atticd.nix",
      },
    }),
  );
  let text = "";
  await main(["--outputs", file, "--wait", "0"], (s) => (text += s));
  return text.split("\n").filter((l) => l.includes(" office: pull token "));
}

describe("verify: pull tokens", () => {
  it("passes a pull-only token that verifies", async () => {
    expect(await pullTokenLines({ ci: mintToken(FIXTURE_SIGNING_KEY_PEM, pullOnly(CI)!, ["n3x"]) })).toEqual([
      "✓    office: pull token ci — subject github-actions-pull, pull only on n3x; signature verifies",
    ]);
  });

  it("fails a pull token that can push, and one signed with another key", async () => {
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 })
      .privateKey.export({ type: "pkcs8", format: "pem" })
      .toString();
    const lines = await pullTokenLines({
      ci: mintToken(FIXTURE_SIGNING_KEY_PEM, CI, ["n3x"]),
      forged: mintToken(other, pullOnly(CI)!, ["n3x"]),
    });
    expect(lines).toEqual([
      "✗    office: pull token ci — grants w on n3x: pull-request jobs get this token, so unreviewed code could write to the cache; it must grant pull alone (run pulumi up, then ci-secrets)",
      "✗    office: pull token forged — does not verify with the stack's tokenPublicKey (signature does not verify): re-run pulumi up and ci-secrets",
    ]);
  });
});
