/**
 * Reads the stack configuration (the `attic-infra:*` keys of Pulumi config), validates all of it at
 * once and returns a typed object, or throws a ConfigError listing every problem, one line each,
 * with the full key path and the fix. Nothing here touches Pulumi: the program calls it with
 * `pulumi.runtime.allConfig()` before it registers any resource.
 */
import type { z } from "zod";
import {
  EITHER_BLOCKS,
  type AtticConfig,
  type AwsConfig,
  atticSchema,
  expiry,
  awsSchema,
  type MikrotikConfig,
  mikrotikSchema,
  type OfficeConfig,
  officeSchema,
  OPEN_TO_ALL,
  SITES,
  type SiteName,
  sitesSchema,
  type VpsConfig,
  vpsSchema,
} from "./schema";

export const NAMESPACE = "attic-infra";

export interface StackConfig {
  sites: SiteName[];
  /** Present whenever the aws, office or vps site is selected. */
  attic?: AtticConfig;
  aws?: AwsConfig;
  office?: OfficeConfig;
  vps?: VpsConfig;
  mikrotik?: MikrotikConfig;
  /** `aws:region`, when set. */
  awsRegion?: string;
}

export interface LoadedConfig {
  config: StackConfig;
  /** Problems that do not stop a deployment but deserve a look (printed as warnings). */
  warnings: string[];
}

export class ConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(
      `The stack configuration has ${problems.length} problem${problems.length === 1 ? "" : "s"}; nothing was deployed:\n${problems
        .map((p) => `  ${p}`)
        .join("\n")}`,
    );
    this.name = "ConfigError";
  }
}

const BLOCKS = {
  sites: sitesSchema,
  attic: atticSchema,
  aws: awsSchema,
  office: officeSchema,
  vps: vpsSchema,
  mikrotik: mikrotikSchema,
} as const;
type BlockName = keyof typeof BLOCKS;

/** `attic-infra:aws.service.minTasks`, `attic-infra:attic.caches[0].name` */
export function keyPath(block: string, path: readonly PropertyKey[]): string {
  let out = `${NAMESPACE}:${block}`;
  for (const p of path) {
    out +=
      typeof p === "number"
        ? `[${p}]`
        : /^[A-Za-z_][A-Za-z0-9_]*$/.test(String(p))
          ? `.${String(p)}`
          : `[${JSON.stringify(String(p))}]`;
  }
  return out;
}

function describeIssue(block: string, issue: z.core.$ZodIssue, value: unknown): string[] {
  if (issue.code === "unrecognized_keys") {
    const known = knownKeysAt(block, issue.path);
    return issue.keys.map(
      (k) =>
        `${keyPath(block, [...issue.path, k])}: unknown key${known ? `; known keys here: ${known.join(", ")}` : ""}`,
    );
  }
  let message = issue.message;
  // A field may say more than "is required" (what to write, how to set a secret).
  if (
    issue.code === "invalid_type" &&
    valueAt(value, issue.path) === undefined &&
    !message.startsWith("is required")
  )
    message = "is required";
  else if (message.startsWith("Invalid input: expected"))
    message = `${message.replace("Invalid input: ", "")}`;
  return [`${keyPath(block, issue.path)}: ${message}`];
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const p of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

/** The keys a strict object accepts, for "did you mean" help on a typo. */
function knownKeysAt(block: string, path: readonly PropertyKey[]): string[] | undefined {
  const either = EITHER_BLOCKS[[block, ...path].join(".")];
  if (either) return [...(objectKeys(either[0]) ?? []), "existing"];
  if (path.at(-1) === "existing") {
    const parent = EITHER_BLOCKS[[block, ...path.slice(0, -1)].join(".")];
    if (parent) return objectKeys(parent[1]);
  }
  return objectKeys(BLOCKS[block as BlockName], path);
}

/** The keys of the object schema at `path` inside `root` (through defaults, optionals, pipes). */
export function objectKeys(root: unknown, path: readonly PropertyKey[] = []): string[] | undefined {
  let schema: unknown = root;
  for (const p of [...path, null]) {
    // Unwrap defaults, optionals, pipes and refinements down to an object or array.
    for (let i = 0; i < 10; i++) {
      const def = (schema as { _zod?: { def?: Record<string, unknown> } })?._zod?.def;
      if (!def) return undefined;
      if (def.type === "object" || def.type === "array" || def.type === "record") break;
      schema = def.innerType ?? def.in ?? def.schema;
    }
    const def = (schema as { _zod: { def: Record<string, unknown> } })._zod.def;
    if (p === null) {
      return def.type === "object" && Object.keys(def.shape as object).length > 0
        ? Object.keys(def.shape as object)
        : undefined;
    }
    if (def.type === "object") schema = (def.shape as Record<string, unknown>)[String(p)];
    else if (def.type === "array") schema = def.element;
    else if (def.type === "record") schema = def.valueType;
    else return undefined;
  }
  return undefined;
}

/** Pulumi hands structured values to the program as JSON text and plain strings as themselves. */
function decode(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).hostname;
  } catch {
    return undefined;
  }
}

/** Namespaces of the providers this program uses: their keys are theirs to check. */
const PROVIDER_NAMESPACES = new Set(["aws", "command", "random", "tls", "pulumi"]);

/** `atic-infra:sites`, `attic_infra:aws`: a key meant for this project under a misspelled namespace. */
function looksLikeOurNamespace(ns: string, key: string): boolean {
  if (PROVIDER_NAMESPACES.has(ns)) return false;
  return key in BLOCKS || editDistance(ns.toLowerCase(), NAMESPACE) <= 2;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/**
 * Validates the whole stack configuration. `raw` is Pulumi's config map: keys like
 * `attic-infra:aws` → value text (JSON for structured values).
 */
export function loadConfig(raw: Record<string, string>): LoadedConfig {
  const problems: string[] = [];
  const warnings: string[] = [];
  const values: Partial<Record<BlockName, unknown>> = {};

  for (const [fullKey, text] of Object.entries(raw)) {
    const [ns, ...rest] = fullKey.split(":");
    const key = rest.join(":");
    if (ns !== NAMESPACE) {
      if (ns !== undefined && looksLikeOurNamespace(ns, key))
        problems.push(`${fullKey}: unknown namespace ${ns}; did you mean ${NAMESPACE}:${key}?`);
      continue;
    }
    if (!(key in BLOCKS)) {
      problems.push(`${NAMESPACE}:${key}: unknown key; known keys: ${Object.keys(BLOCKS).join(", ")}`);
      continue;
    }
    values[key as BlockName] = decode(text);
  }

  const parsed: Partial<StackConfig> = {};
  for (const block of Object.keys(BLOCKS) as BlockName[]) {
    const value = values[block];
    if (value === undefined) continue;
    const result = BLOCKS[block].safeParse(value);
    if (result.success) (parsed as Record<string, unknown>)[block] = result.data;
    else for (const issue of result.error.issues) problems.push(...describeIssue(block, issue, value));
  }

  if (values.sites === undefined) {
    problems.push(
      `${NAMESPACE}:sites: is required; list the sites this stack deploys, e.g. [aws] or [office, mikrotik]`,
    );
  }

  // With one entry misspelled the list is invalid, yet its valid entries still need their blocks.
  const sites =
    parsed.sites ??
    (Array.isArray(values.sites)
      ? values.sites.filter((s): s is SiteName => (SITES as readonly unknown[]).includes(s))
      : []);
  const needs: Record<SiteName, BlockName[]> = {
    aws: ["attic", "aws"],
    office: ["attic", "office"],
    vps: ["attic", "vps"],
    mikrotik: ["mikrotik"],
  };
  if (sites.includes("aws") && parsed.attic && parsed.attic.image === undefined)
    problems.push(
      `${NAMESPACE}:attic.image: is required because sites lists aws; e.g. ghcr.io/zhaofengli/attic:<commit sha>`,
    );
  for (const site of sites) {
    for (const block of needs[site]) {
      if (values[block] === undefined)
        problems.push(
          `${NAMESPACE}:${block}: is required because sites lists ${site}; add the ${block} block (see README, config reference)`,
        );
    }
  }
  if (parsed.sites) {
    for (const block of ["aws", "office", "vps", "mikrotik"] as const) {
      if (values[block] !== undefined && !sites.includes(block))
        warnings.push(`${NAMESPACE}:${block}: is set but sites does not list ${block}; it is ignored`);
    }
    if (values.attic !== undefined && !sites.some((s) => s === "aws" || s === "office" || s === "vps"))
      warnings.push(`${NAMESPACE}:attic: is set but none of aws, office, vps is in sites; it is ignored`);
  }

  const mdns = (path: string, name: string) =>
    warnings.push(
      `${path}: ${JSON.stringify(name)} is in .local, the mDNS domain; clients with nss-mdns or systemd-resolved may never ask the switch's DNS for it. Prefer .lan`,
    );
  if (parsed.office) {
    const host = hostOf(parsed.office.apiEndpoint);
    if (host?.endsWith(".local")) mdns(`${NAMESPACE}:office.apiEndpoint`, host);
  }
  if (parsed.aws?.hostname.endsWith(".local")) mdns(`${NAMESPACE}:aws.hostname`, parsed.aws.hostname);
  parsed.mikrotik?.dns.records.forEach((r, i) => {
    if (r.name.toLowerCase().endsWith(".local"))
      mdns(keyPath("mikrotik", ["dns", "records", i, "name"]), r.name);
  });

  parsed.vps?.sshFrom.forEach((c, i) => {
    if (OPEN_TO_ALL.includes(c))
      warnings.push(
        `${keyPath("vps", ["sshFrom", i])}: ${JSON.stringify(c)} lets the whole internet reach SSH on this public host; list your admin network and the CI runners that deploy instead`,
      );
  });
  if (parsed.vps?.storage.type === "local")
    warnings.push(
      `${NAMESPACE}:vps.storage: local storage keeps every NAR and the database dumps on the host alone; use storage.s3 (e.g. Backblaze B2) so a lost VPS loses nothing`,
    );

  const now = Date.now();
  parsed.attic?.tokens.forEach((t, i) => {
    const exp = expiry(t.validUntil) * 1000;
    const where = keyPath("attic", ["tokens", i, "validUntil"]);
    if (exp <= now)
      warnings.push(
        `${where}: token ${t.name} expired on ${t.validUntil}; atticd treats it as anonymous. Set a later date`,
      );
    else if (exp - now < 30 * 86_400_000)
      warnings.push(`${where}: token ${t.name} expires on ${t.validUntil}, within 30 days`);
  });

  if (problems.length > 0) throw new ConfigError(problems);

  const config: StackConfig = { sites };
  if (sites.some((s) => s === "aws" || s === "office" || s === "vps")) config.attic = parsed.attic;
  if (sites.includes("aws")) config.aws = parsed.aws;
  if (sites.includes("office")) config.office = parsed.office;
  if (sites.includes("vps")) config.vps = parsed.vps;
  if (sites.includes("mikrotik")) config.mikrotik = parsed.mikrotik;
  const region = raw["aws:region"];
  if (region !== undefined) config.awsRegion = region;
  return { config, warnings };
}
