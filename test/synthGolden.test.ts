/**
 * The synth of the dev, office and vps examples, byte for byte: every generated file, every resource
 * (its inputs — scripts, triggers, deploy ids — and options) and the stack outputs, against the
 * capture in test/golden/synth/<stack>/ (as `npm run synth -- --stack <stack> --show-secrets` writes
 * it; the secrets there are the synth's throwaway key and the examples' placeholders).
 *
 * Why bytes: a command whose create script changes is re-run by pulumi-command at the next
 * `pulumi up` (on every host and switch), a changed trigger replaces its resource, and a changed
 * NixOS module is a new deploy. A refactor leaves all of them as they were. A difference that could
 * not be avoided is listed, reviewed, in test/golden/synth/reviewed-changes.txt (hunks; see
 * test/support/synthGolden.ts). A deliberate change regenerates the golden — which also empties the
 * reviewed changes, now part of it — in the same commit:
 *
 *   UPDATE_SYNTH_GOLDEN=1 npx vitest run test/synthGolden.test.ts    (then review git diff test/golden)
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { SynthResource, SynthResult } from "../ci/commands/synth/harness";
import { shellQuote } from "../components/text";
import { ROOT, synthExample } from "./support/stacks";
import {
  applyChanges,
  differences,
  firstDifference,
  parseChanges,
  readTree,
  texts,
  type Tree,
  withRollbackFiles,
  writtenTree,
} from "./support/synthGolden";

const STACKS = ["dev", "office", "vps"];
const GOLDEN = path.join(ROOT, "test", "golden", "synth");
const CHANGES = path.join(GOLDEN, "reviewed-changes.txt");
const UPDATE = process.env.UPDATE_SYNTH_GOLDEN === "1";
const REGENERATE = "UPDATE_SYNTH_GOLDEN=1 npx vitest run test/synthGolden.test.ts";

/** The fresh resources in the golden's order (new ones last), so a regenerated golden diffs cleanly. */
function inGoldenOrder(fresh: SynthResource[], dir: string): SynthResource[] {
  let order: string[] = [];
  try {
    order = (JSON.parse(readFileSync(path.join(dir, "resources.json"), "utf8")) as SynthResource[]).map(
      (r) => r.urn,
    );
  } catch {
    // No golden yet.
  }
  const rank = (urn: string) => (order.includes(urn) ? order.indexOf(urn) : order.length);
  return [...fresh].sort((a, b) => rank(a.urn) - rank(b.urn));
}

function regenerate(results: Map<string, SynthResult>): void {
  for (const [stack, result] of results) {
    const dir = path.join(GOLDEN, stack);
    const tree = writtenTree(result, inGoldenOrder(result.resources, dir));
    rmSync(dir, { recursive: true, force: true });
    for (const [rel, text] of tree) {
      mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      writeFileSync(path.join(dir, rel), text);
    }
  }
  // The reviewed changes are part of the new golden: only the file's opening comment stays.
  const text = readFileSync(CHANGES, "utf8");
  const firstHunk = text.search(/^@@ /m);
  if (firstHunk >= 0) writeFileSync(CHANGES, text.slice(0, firstHunk));
}

describe("the synth of the example stacks is byte-identical to test/golden/synth", () => {
  const results = new Map<string, SynthResult>();
  let expected: Tree[] = [];
  let unused: string[] = [];

  beforeAll(async () => {
    for (const stack of STACKS) results.set(stack, await synthExample(stack, true));
    if (UPDATE) regenerate(results);
    const changes = parseChanges(readFileSync(CHANGES, "utf8"));
    const golden = STACKS.map((stack) => texts(withRollbackFiles(readTree(path.join(GOLDEN, stack)))));
    const applied = applyChanges(golden, changes);
    expected = applied.trees;
    unused = applied.unused.map((c) => `@@ ${c.why}`);
  });

  it.each(STACKS)("%s: every file, resource and output", (stack) => {
    const fresh = texts(writtenTree(results.get(stack)!));
    const problems = differences(expected[STACKS.indexOf(stack)]!, fresh);
    expect(
      problems,
      `test/golden/synth/${stack}, with the reviewed changes applied, differs from the synth:\n${problems.join("\n")}\n\n` +
        `A deliberate change? Regenerate the golden with\n  ${REGENERATE}\nand review git diff test/golden/synth.`,
    ).toEqual([]);
  });

  it("every reviewed change still applies to the golden", () => {
    expect(
      unused,
      "these hunks of test/golden/synth/reviewed-changes.txt match nothing: remove them",
    ).toEqual([]);
  });
});

describe("the comparison", () => {
  const tree = (entries: Array<[string, string]>): Tree => new Map(entries);

  it("names the text and the first differing line, and texts on one side only", () => {
    expect(
      differences(
        tree([
          ["files/s/a.sh", "one\ntwo\nthree\n"],
          ["files/s/gone.sh", "x"],
        ]),
        tree([
          ["files/s/a.sh", "one\nTWO\nthree\n"],
          ["files/s/new.sh", "y"],
        ]),
      ),
    ).toEqual([
      "files/s/gone.sh: in the golden only",
      'files/s/a.sh line 2:\n    golden: "two"\n    synth:  "TWO"',
      "files/s/new.sh: in the synth only",
    ]);
    expect(firstDifference("a\n", "a\nb")).toBe('line 2:\n    golden: ""\n    synth:  "b"');
  });

  it("splits resources.json by URN, whatever the order, with each multi-line string input a text of its own", () => {
    const a = { urn: "urn:a", name: "a", inputs: { create: "echo 1\necho 2\n" } };
    const b = { urn: "urn:b", name: "b", inputs: { port: 22 } };
    const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
    const one = texts(tree([["resources.json", json([a, b])]]));
    expect(differences(one, texts(tree([["resources.json", json([b, a])]])))).toEqual([]);
    expect(one.get("resources.json urn:a a.inputs.create")).toBe("echo 1\necho 2\n");
    expect(one.get("resources.json urn:a")).toContain('"create": "⟪text: a.inputs.create⟫"');
  });

  it("shows a script embedded in another text (quoted, run as root) as a token", () => {
    const deploy = "echo 'deploying'\n";
    const t = texts(
      tree([
        ["files/office/scripts/deploy.sh", deploy],
        ["files/office/scripts/driver.sh", `remote ${shellQuote(deploy)}\n`],
      ]),
    );
    expect(t.get("files/office/scripts/driver.sh")).toBe("remote ⟪quoted: scripts/deploy.sh⟫\n");
  });

  it("applies a hunk wherever its lines occur in the texts it names, a text change anywhere, and reports hunks that do not apply", () => {
    const changes = parseChanges(
      [
        "# a comment",
        "@@ [t] renamed",
        " keep",
        "-old",
        "+new",
        "+",
        "",
        "@@ text: an id",
        "-abc",
        "+xyz",
        "@@ [t, u] in a text it does not match",
        "-gone",
      ].join("\n"),
    );
    const { trees, unused } = applyChanges(
      [
        tree([
          ["t", "keep\nold\nid abc\nkeep\nold\n"],
          ["u", "gone\n"],
          ["v", "keep\nold\n"],
        ]),
      ],
      changes,
    );
    expect(trees[0]!.get("t")).toBe("keep\nnew\n\nid xyz\nkeep\nnew\n\n");
    // A hunk applies to the texts it names only.
    expect(trees[0]!.get("v")).toBe("keep\nold\n");
    expect(unused.map((c) => c.why)).toEqual(["in a text it does not match"]);
    expect(() => parseChanges("stray")).toThrow(/outside a hunk/);
    expect(() => parseChanges("@@ unscoped\n-x")).toThrow(/names no texts/);
  });
});
