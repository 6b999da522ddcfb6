/**
 * Generated documents (ci/commands/docs.ts): the committed file is what `npm run docs` writes.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { generatedDocs, outputRows } from "../ci/commands/docs";
import { stackOutputsSchema } from "../components/outputs";
import { firstDifference } from "./support/synthGolden";
import { ROOT } from "./support/stacks";

describe("generated documents", () => {
  it.each(Object.entries(generatedDocs()))("%s is up to date", (file, text) => {
    const committed = readFileSync(path.join(ROOT, file), "utf8");
    expect(
      committed === text,
      `${file} is stale (${firstDifference(committed, text).replace("golden:", "committed:").replace("synth: ", "now:   ")}): run \`npm run docs\``,
    ).toBe(true);
  });

  it("npm run docs writes them", () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts.docs).toBe("tsx ci/commands/docs.ts");
  });

  it("docs/outputs.md lists every field of the outputs schema with its description, names as <placeholders>", () => {
    const rows = outputRows(stackOutputsSchema);
    const table = generatedDocs()["docs/outputs.md"]!;
    for (const r of rows) expect(table).toContain(`| \`${r.path}\` | ${r.text} |`);
    expect(rows).toContainEqual({
      path: "vps.caches.<cache>.publicKey",
      text: "The cache's public signing key (`<cache>:<base64>`).",
    });
    expect(rows).toContainEqual({ path: "office.tokens.<token>", text: "The minted token (secret)." });
    // A record keyed by data, not by config names, is one row.
    expect(rows.map((r) => r.path)).toContain("mikrotik.dnsRecords");
  });
});
