/**
 * The synth of the dev, office and vps examples, byte for byte: every generated file, every resource
 * (its inputs — scripts, triggers, deploy ids — and options) and the stack outputs, against the
 * capture in test/golden/synth/<stack>/ (as `npm run synth -- --stack <stack> --show-secrets` writes
 * it; the secrets there are the synth's throwaway key and the examples' placeholders).
 *
 * Why bytes: a command whose create script changes is re-run by pulumi-command at the next
 * `pulumi up` (on every host and switch), a changed trigger replaces its resource, and a changed
 * NixOS module is a new deploy. A refactor leaves all of them as they were; a deliberate change
 * updates the golden in the same commit:
 *
 *   UPDATE_SYNTH_GOLDEN=1 npx vitest run test/synthGolden.test.ts    (then review git diff test/golden)
 *
 * Resources are compared one by one, by URN: the order in which they register depends on how the
 * program is run (Pulumi's engine or in process, test/synth.test.ts), not on what it registers.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import type { SynthResult, SynthResource } from "../ci/commands/synth/harness";
import { ROOT, synthExample } from "./support/stacks";

const STACKS = ["dev", "office", "vps"];
const GOLDEN = path.join(ROOT, "test", "golden", "synth");
const UPDATE = process.env.UPDATE_SYNTH_GOLDEN === "1";
const REGENERATE = "UPDATE_SYNTH_GOLDEN=1 npx vitest run test/synthGolden.test.ts";

const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

/** Relative path → text, as `npm run synth` writes them (ci/commands/synth/cli.ts). */
function written(r: SynthResult, resources = r.resources): Map<string, string> {
  const out = new Map([
    ["resources.json", json(resources)],
    ["outputs.json", json(r.outputs)],
  ]);
  for (const [rel, content] of Object.entries(r.files)) out.set(`files/${rel}`, content);
  return out;
}

function readTree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const rel of readdirSync(dir, { recursive: true }) as string[]) {
    const file = path.join(dir, rel);
    if (statSync(file).isFile()) out.set(rel.split(path.sep).join("/"), readFileSync(file, "utf8"));
  }
  return out;
}

/** The first line where two texts differ, for a message a person can act on. */
export function firstDifference(expected: string, actual: string): string {
  const a = expected.split("\n");
  const b = actual.split("\n");
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) {
      const show = (l: string | undefined) => (l === undefined ? "(no such line)" : JSON.stringify(l));
      return `line ${i + 1}:\n    golden: ${show(a[i])}\n    synth:  ${show(b[i])}`;
    }
  }
  return "the same lines, different bytes";
}

/** resources.json, one entry per URN (its JSON as the file holds it). */
function resourcesByUrn(text: string): Map<string, string> {
  const list = JSON.parse(text) as SynthResource[];
  return new Map(list.map((r) => [r.urn, JSON.stringify(r, null, 2)]));
}

/** Every difference between the golden tree and a fresh synth, one paragraph each. */
export function differences(golden: Map<string, string>, fresh: Map<string, string>, dir: string): string[] {
  const problems: string[] = [];
  for (const rel of golden.keys())
    if (!fresh.has(rel)) problems.push(`${dir}/${rel}: in the golden, not written by the synth`);
  for (const [rel, text] of fresh) {
    const before = golden.get(rel);
    if (before === undefined) problems.push(`${dir}/${rel}: written by the synth, not in the golden`);
    else if (rel === "resources.json") problems.push(...resourceDifferences(before, text, `${dir}/${rel}`));
    else if (before !== text) problems.push(`${dir}/${rel} ${firstDifference(before, text)}`);
  }
  return problems;
}

function resourceDifferences(golden: string, fresh: string, where: string): string[] {
  const before = resourcesByUrn(golden);
  const after = resourcesByUrn(fresh);
  const problems: string[] = [];
  for (const urn of before.keys())
    if (!after.has(urn)) problems.push(`${where}: ${urn} is in the golden, not registered by the program`);
  for (const [urn, entry] of after) {
    const was = before.get(urn);
    if (was === undefined) problems.push(`${where}: ${urn} is registered, not in the golden`);
    else if (was !== entry) problems.push(`${where}, ${urn}, ${firstDifference(was, entry)} of its entry`);
  }
  return problems;
}

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

describe("the synth of the example stacks is byte-identical to test/golden/synth", () => {
  it.each(STACKS)("%s", async (stack) => {
    const result = await synthExample(stack, true);
    const dir = path.join(GOLDEN, stack);
    if (UPDATE) {
      const fresh = written(result, inGoldenOrder(result.resources, dir));
      rmSync(dir, { recursive: true, force: true });
      for (const [rel, text] of fresh) {
        mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
        writeFileSync(path.join(dir, rel), text);
      }
      return;
    }
    const problems = differences(readTree(dir), written(result), path.relative(ROOT, dir));
    expect(
      problems,
      `${problems.join("\n")}\n\nA deliberate change? Regenerate the golden with\n  ${REGENERATE}\nand review git diff test/golden/synth.`,
    ).toEqual([]);
  });
});

describe("the comparison", () => {
  it("names the file and the first differing line, and files on one side only", () => {
    const golden = new Map([
      ["a.sh", "one\ntwo\nthree\n"],
      ["gone.sh", "x"],
    ]);
    const fresh = new Map([
      ["a.sh", "one\nTWO\nthree\n"],
      ["new.sh", "y"],
    ]);
    expect(differences(golden, fresh, "g")).toEqual([
      "g/gone.sh: in the golden, not written by the synth",
      'g/a.sh line 2:\n    golden: "two"\n    synth:  "TWO"',
      "g/new.sh: written by the synth, not in the golden",
    ]);
    expect(firstDifference("a\n", "a\nb")).toBe('line 2:\n    golden: ""\n    synth:  "b"');
  });

  it("compares resources by URN, whatever their order, naming the resource and the line of its entry", () => {
    const a = { urn: "urn:a", inputs: { create: "x" } };
    const b = { urn: "urn:b", inputs: { create: "y" } };
    const golden = new Map([["resources.json", json([a, b])]]);
    expect(differences(golden, new Map([["resources.json", json([b, a])]]), "g")).toEqual([]);
    const changed = { urn: "urn:b", inputs: { create: "z" } };
    const c = { urn: "urn:c", inputs: {} };
    expect(differences(golden, new Map([["resources.json", json([changed, c])]]), "g")).toEqual([
      "g/resources.json: urn:a is in the golden, not registered by the program",
      'g/resources.json, urn:b, line 4:\n    golden: "    \\"create\\": \\"y\\""\n    synth:  "    \\"create\\": \\"z\\"" of its entry',
      "g/resources.json: urn:c is registered, not in the golden",
    ]);
  });
});
