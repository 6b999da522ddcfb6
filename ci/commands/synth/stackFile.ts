/**
 * Reads `Pulumi.<stack>.yaml` the way the Pulumi CLI hands it to a program: a flat map of
 * `namespace:key` → text (structured values as JSON), bare keys in the project's namespace, and
 * `secure:` values — which need the stack's secrets provider — replaced by deterministic
 * placeholders so the program still runs offline.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";

export interface StackFile {
  config: Record<string, string>;
  secretKeys: string[];
}

/** A deterministic placeholder for a `secure:` config value that cannot be decrypted offline. */
export function securePlaceholder(key: string): string {
  return `SYNTHSECRET-config-${createHash("sha256").update(key).digest("hex").slice(0, 16)}`;
}

function replaceSecure(value: unknown, key: string, found: { secret: boolean }): unknown {
  if (Array.isArray(value)) return value.map((v, i) => replaceSecure(v, `${key}[${i}]`, found));
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (Object.keys(obj).length === 1 && typeof obj.secure === "string") {
      found.secret = true;
      return securePlaceholder(key);
    }
    return Object.fromEntries(
      Object.entries(obj).map(([k, v]) => [k, replaceSecure(v, `${key}.${k}`, found)]),
    );
  }
  return value;
}

export function readStackFile(file: string, project: string): StackFile {
  const doc = (parse(readFileSync(file, "utf8")) ?? {}) as { config?: Record<string, unknown> };
  const config: Record<string, string> = {};
  const secretKeys: string[] = [];
  for (const [rawKey, rawValue] of Object.entries(doc.config ?? {})) {
    const key = rawKey.includes(":") ? rawKey : `${project}:${rawKey}`;
    const found = { secret: false };
    const value = replaceSecure(rawValue, key, found);
    config[key] = typeof value === "string" ? value : JSON.stringify(value);
    if (found.secret) secretKeys.push(key);
  }
  return { config, secretKeys };
}

/** The project name from Pulumi.yaml. */
export function readProjectName(file: string): string {
  const doc = parse(readFileSync(file, "utf8")) as { name?: string };
  if (!doc?.name) throw new Error(`${file} has no project name`);
  return doc.name;
}

/** The stacks whose `Pulumi.<stack>.yaml` is in `root`, sorted. */
export function knownStacks(root: string): string[] {
  return readdirSync(root)
    .map((f) => /^Pulumi\.(.+)\.ya?ml$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort();
}

/**
 * The stack file and stack name a command line names: `--stack <name>` (Pulumi.<name>.yaml in
 * `root`) or `--config <file>` (the stack named after the file). An unknown stack is a sentence that
 * lists the stacks there are.
 */
export function stackFileFor(
  root: string,
  stackName: string | undefined,
  configFile: string | undefined,
): { file: string; stack: string } | { error: string } {
  if (stackName !== undefined && !knownStacks(root).includes(stackName))
    return {
      error: `there is no Pulumi.${stackName}.yaml; stacks here: ${knownStacks(root).join(", ")} (or give --config <file>)`,
    };
  const file = configFile ? path.resolve(configFile) : path.join(root, `Pulumi.${stackName}.yaml`);
  const stack =
    stackName ??
    path
      .basename(file)
      .replace(/^Pulumi\./, "")
      .replace(/\.ya?ml$/, "");
  return { file, stack };
}
