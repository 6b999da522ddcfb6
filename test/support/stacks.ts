import { readFileSync } from "node:fs";
import * as path from "node:path";
import { parse, stringify } from "yaml";
import { type SynthResult, synth } from "../../ci/commands/synth/harness";
import { readStackFile } from "../../ci/commands/synth/stackFile";

export const ROOT = path.resolve(__dirname, "..", "..");

/** The config map of a checked-in example stack, as Pulumi hands it to the program. */
export function exampleConfig(stack: string): Record<string, string> {
  return readStackFile(path.join(ROOT, `Pulumi.${stack}.yaml`), "attic-infra").config;
}

/** A checked-in example stack's config blocks as plain objects, for tests to mutate. */
export function exampleBlocks(stack: string): Record<string, unknown> {
  const doc = parse(readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8")) as {
    config: Record<string, unknown>;
  };
  return structuredClone(doc.config);
}

/** Turns config blocks back into Pulumi's config map. */
export function toConfigMap(blocks: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(blocks).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
  );
}

export function toYaml(blocks: Record<string, unknown>): string {
  return stringify({ config: blocks });
}

export async function synthExample(stack: string, showSecrets = false): Promise<SynthResult> {
  return synth({ stack, config: exampleConfig(stack), showSecrets });
}
