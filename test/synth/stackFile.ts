/**
 * Reads `Pulumi.<stack>.yaml` the way the Pulumi CLI hands it to a program: a flat map of
 * `namespace:key` → text (structured values as JSON), bare keys in the project's namespace, and
 * `secure:` values — which need the stack's secrets provider — replaced by deterministic
 * placeholders so the program still runs offline.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
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
