/**
 * The stack outputs are a contract (components/outputs.ts, docs/outputs.md generated from it): the
 * program exports exactly its paths, and what `ci-secrets` and the runbooks read is in it.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { z } from "zod";
import { settingsFrom } from "../ci/commands/ci-secrets";
import { outputRows } from "../ci/commands/docs";
import { stackOutputsSchema } from "../components/outputs";
import { ROOT, synthExample } from "./support/stacks";
import { type SynthResult, synth } from "../ci/commands/synth/harness";
import { readStackFile } from "../ci/commands/synth/stackFile";

type Path = string[];
const docs = (file: string) => readFileSync(path.join(ROOT, "docs", file), "utf8");

/** The contract's paths (docs/outputs.md's table), `<name>` a wildcard. */
function documentedPaths(): Path[] {
  return outputRows(stackOutputsSchema).map((r) => r.path.split("."));
}

/** Paths in `value` that the schema has no place for (a record's keys are its to choose). */
function outsideSchema(schema: z.ZodType, value: unknown, at: Path = []): Path[] {
  const def = schema.def as { type: string; innerType?: z.ZodType; shape?: Record<string, z.ZodType> };
  if (def.type === "optional") return outsideSchema(def.innerType!, value, at);
  if (def.type === "object" && value !== null && typeof value === "object") {
    const shape = (schema as z.ZodObject).shape as Record<string, z.ZodType>;
    return Object.entries(value).flatMap(([k, v]) =>
      shape[k] ? outsideSchema(shape[k], v, [...at, k]) : [[...at, k]],
    );
  }
  if (def.type === "record" && value !== null && typeof value === "object") {
    const valueType = (schema as z.ZodRecord<z.ZodString, z.ZodType>).valueType;
    return Object.entries(value).flatMap(([k, v]) => outsideSchema(valueType, v, [...at, k]));
  }
  return [];
}

const matches = (pattern: Path, p: Path) =>
  pattern.length <= p.length && pattern.every((seg, i) => (seg.startsWith("<") ? true : seg === p[i]));

function exists(outputs: unknown, pattern: Path): boolean {
  const [head, ...rest] = pattern;
  if (head === undefined) return outputs !== undefined;
  if (outputs === null || typeof outputs !== "object") return false;
  const obj = outputs as Record<string, unknown>;
  const keys = head.startsWith("<") ? Object.keys(obj) : [head];
  return keys.some((k) => k in obj && exists(obj[k], rest));
}

/**
 * Every output path docs/runbooks.md reads: `pulumi stack output <name>` and the jq paths applied
 * to it, directly (`| jq .x`) or through a shell variable (`jq -r .x <<<"$o"`).
 */
function runbookPaths(text: string): Path[] {
  const found: Path[] = [];
  const vars = new Map<string, Path>();
  const jqPaths = (expr: string) =>
    [...expr.matchAll(/(?<![\w"])\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)/g)].map((m) => m[1]!.split("."));
  for (const line of text.split("\n")) {
    for (const m of line.matchAll(
      /(?:(\w+)=)?\$\(pulumi stack output (\w+)[^|)]*(?:\|\s*jq(?: -r)? ('[^']*'|\S+))?\)/g,
    )) {
      const base = [m[2]!];
      const full = m[3] ? jqPaths(m[3]).map((p) => [...base, ...p]) : [base];
      found.push(...full);
      if (m[1]) vars.set(m[1], full[0]!);
    }
    for (const m of line.matchAll(/jq(?: -r)? ('[^']*'|\S+) <<<"\$(\w+)"/g)) {
      const base = vars.get(m[2]!);
      if (!base) throw new Error(`runbooks: $${m[2]} is read with jq but never set from the stack outputs`);
      found.push(...jqPaths(m[1]!).map((p) => [...base, ...p]));
    }
  }
  return found;
}

let dev: SynthResult;
let office: SynthResult;
let vps: SynthResult;
/** test/fixtures/Pulumi.adopt.yaml: existing infrastructure and `gc: service`. */
let adopt: SynthResult;
beforeAll(async () => {
  dev = await synthExample("dev", true);
  office = await synthExample("office", true);
  vps = await synthExample("vps", true);
  const { config } = readStackFile(path.join(ROOT, "test", "fixtures", "Pulumi.adopt.yaml"), "attic-infra");
  adopt = await synth({ stack: "adopt", config, showSecrets: true });
});
const inSomeStack = (p: Path) => [dev, office, vps, adopt].some((r) => exists(r.outputs, p));

describe("the output contract (docs/outputs.md)", () => {
  it("every path of the contract exists in a synth of the example stacks", () => {
    const paths = documentedPaths();
    expect(paths.length).toBeGreaterThan(30);
    expect(paths.filter((p) => !inSomeStack(p)).map((p) => p.join("."))).toEqual([]);
  });

  it("the example stacks' outputs parse with the contract, and hold nothing outside it", () => {
    for (const r of [dev, office, vps, adopt]) {
      expect(stackOutputsSchema.safeParse(r.outputs).error?.issues).toBeUndefined();
      expect(outsideSchema(stackOutputsSchema, r.outputs).map((p) => p.join("."))).toEqual([]);
    }
    // The check sees an output the contract lacks.
    expect(outsideSchema(stackOutputsSchema, { ...vps.outputs, vps: { extra: 1 } })).toEqual([
      ["vps", "extra"],
    ]);
  });

  it("every `pulumi stack output` path the runbooks read exists and is documented", () => {
    const used = runbookPaths(docs("runbooks.md"));
    expect(used.map((p) => p.join("."))).toEqual(
      expect.arrayContaining([
        "signingKeyUrn",
        "aws.database.subnetGroup",
        "aws.database.identifier",
        "aws.gcSchedule.name",
        "aws.ecs.gcService",
        "aws.gcRunTask.subnets",
      ]),
    );
    expect(used.filter((p) => !inSomeStack(p)).map((p) => p.join("."))).toEqual([]);
    // Documented itself, or an object whose members are (`aws`, `aws.gcRunTask`).
    const documented = (p: Path) => documentedPaths().some((d) => matches(d, p) || matches(p, d));
    expect(used.filter((p) => !documented(p)).map((p) => p.join("."))).toEqual([]);
  });

  it("the runbooks' commands name no resource by hand: no placeholders for names the outputs hold", () => {
    const commands = docs("runbooks.md")
      .split("\n")
      .filter((l) => l.startsWith("    "));
    expect(commands.filter((l) => /<the stack's|<cluster>|<api service>|--show-urns/.test(l))).toEqual([]);
  });

  it("ci-secrets reads the documented names: aws.endpoint and aws.caches.<cache>", () => {
    const settings = settingsFrom(dev.outputs, {});
    const aws = dev.outputs.aws as { endpoint: string; caches: Record<string, { substituter: string }> };
    expect(settings.find((s) => s.name === "ATTIC_ENDPOINT")?.value).toBe(aws.endpoint);
    expect(settings.find((s) => s.name === "ATTIC_SUBSTITUTER")?.value).toBe(aws.caches.n3x!.substituter);
  });
});
