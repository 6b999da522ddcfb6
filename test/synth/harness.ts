/**
 * Offline synth: runs the real program (index.ts) under Pulumi's mock runtime — no Pulumi CLI, no
 * cloud credentials — and captures what it would deploy: every resource with its inputs and
 * options, the stack outputs, and every generated file. Used by `npm run synth` and by the tests.
 */
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { clearArtifacts, recordedArtifacts } from "../../components/artifacts";
import { loadConfig } from "../../config/load";
import { makeMocks } from "./mocks";

export const SECRET_PLACEHOLDER = "[secret]";
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270";
const RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e";

export interface ResourceOptions {
  protect: boolean;
  retainOnDelete: boolean;
  deleteBeforeReplace: boolean;
  additionalSecretOutputs: string[];
  ignoreChanges: string[];
  replaceOnChanges: string[];
  dependsOn: string[];
  /** The URNs the resource's aliases resolve to: a state entry under one of them is this resource. */
  aliases: string[];
}

export interface SynthResource {
  urn: string;
  type: string;
  name: string;
  parent: string | null;
  custom: boolean;
  inputs: Record<string, unknown>;
  options: ResourceOptions;
}

export interface SynthResult {
  resources: SynthResource[];
  outputs: Record<string, unknown>;
  /** Relative path → content. */
  files: Record<string, string>;
  warnings: string[];
}

export interface SynthOptions {
  stack: string;
  project?: string;
  /** Pulumi's config map: `namespace:key` → value text (JSON for structured values). */
  config: Record<string, string>;
  /** Config keys whose values are secret (from `secure:` values). */
  secretKeys?: string[];
  showSecrets?: boolean;
}

/** Plain data from a deserialized input: secrets hidden or unwrapped, resource references as URNs. */
function clean(value: unknown, showSecrets: boolean): unknown {
  if (Array.isArray(value)) return value.map((v) => clean(v, showSecrets));
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (obj[SECRET_SIG] === SECRET_VALUE)
      return showSecrets ? clean(obj.value, showSecrets) : SECRET_PLACEHOLDER;
    if (obj[SECRET_SIG] === RESOURCE_SIG) return { resource: obj.urn };
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(obj)) {
      // The dynamic provider's serialized closure is code, not configuration: long and noisy.
      if (k === "__provider") out[k] = "[serialized dynamic provider]";
      else out[k] = clean(obj[k], showSecrets);
    }
    return out;
  }
  return value;
}

/** Resolves Outputs in a value tree, replacing secret parts with the placeholder. */
async function resolve(value: unknown, showSecrets: boolean): Promise<unknown> {
  if (pulumi.Output.isInstance(value)) {
    const o = value as pulumi.Output<unknown> & { promise(): Promise<unknown>; isSecret: Promise<boolean> };
    const [inner, secret] = await Promise.all([o.promise(), o.isSecret]);
    if (secret && !showSecrets) return SECRET_PLACEHOLDER;
    return resolve(inner, showSecrets);
  }
  if (value instanceof Promise) return resolve(await value, showSecrets);
  if (Array.isArray(value)) return Promise.all(value.map((v) => resolve(v, showSecrets)));
  if (value !== null && typeof value === "object" && !(value instanceof pulumi.Resource)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value))
      out[k] = await resolve((value as Record<string, unknown>)[k], showSecrets);
    return out;
  }
  return value;
}

type Program = () => Promise<Record<string, unknown>>;
let program: Program | undefined;

async function loadProgram(): Promise<Program> {
  if (!program) {
    // index.ts is CommonJS (`export = main`): depending on the loader it arrives as the function
    // itself or as the default export of a namespace.
    const mod = (await import("../../index")) as unknown as Program | { default: Program };
    program = typeof mod === "function" ? mod : mod.default;
  }
  return program;
}

/** A deterministic placeholder for a `secure:` config value that cannot be decrypted offline. */
export function securePlaceholder(key: string): string {
  return `SYNTHSECRET-config-${createHash("sha256").update(key).digest("hex").slice(0, 16)}`;
}

/**
 * Runs the program once. Config problems throw ConfigError before anything is registered: the
 * harness validates first, exactly as the program itself does on its first line.
 */
export async function synth(options: SynthOptions): Promise<SynthResult> {
  const { warnings } = loadConfig(options.config);
  const showSecrets = options.showSecrets ?? false;
  const region = options.config["aws:region"] ?? "us-east-1";

  await pulumi.runtime.setMocks(makeMocks(region), options.project ?? "attic-infra", options.stack, false);
  pulumi.runtime.setAllConfig(options.config, options.secretKeys ?? []);
  // A dynamic provider's closure is serialized asynchronously, and only once per process when
  // cached: the cache would make a second run in the same process register that resource earlier.
  (
    require("@pulumi/pulumi/runtime/state") as {
      getStore(): { settings: { options: Record<string, unknown> } };
    }
  ).getStore().settings.options.cacheDynamicProviders = false;
  clearArtifacts();

  const entries: SynthResource[] = [];
  const monitor = pulumi.runtime.getMonitor() as unknown as {
    registerResource(req: RegisterRequest, cb: (err: unknown, res?: { getUrn(): string }) => void): void;
  };
  const original = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) => {
    const implicit = new Set<string>();
    req.getPropertydependenciesMap().forEach((deps) => {
      for (const urn of deps.getUrnsList()) implicit.add(urn);
    });
    const entry: SynthResource = {
      urn: "",
      type: req.getType(),
      name: req.getName(),
      parent: req.getParent() || null,
      custom: req.getCustom(),
      inputs: clean(pulumi.runtime.deserializeProperties(req.getObject() as never), showSecrets) as Record<
        string,
        unknown
      >,
      options: {
        protect: req.getProtect(),
        retainOnDelete: req.getRetainondelete(),
        deleteBeforeReplace: req.getDeletebeforereplace(),
        additionalSecretOutputs: [...req.getAdditionalsecretoutputsList()].sort(),
        ignoreChanges: [...req.getIgnorechangesList()].sort(),
        replaceOnChanges: [...req.getReplaceonchangesList()].sort(),
        dependsOn: req
          .getDependenciesList()
          .filter((u) => !implicit.has(u))
          .sort(),
        aliases: req
          .getAliasesList()
          .map((a) => aliasUrn(a, req, options.stack, options.project ?? "attic-infra")),
      },
    };
    entries.push(entry);
    original(req, (err, res) => {
      if (res) entry.urn = res.getUrn();
      cb(err, res);
    });
  };

  const main = await loadProgram();
  const exported = await main();
  const outputs = (await resolve(exported, showSecrets)) as Record<string, unknown>;
  // Not in the runtime's public typings, but exported: wait for registrations still in flight.
  await (pulumi.runtime as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs();

  const files: Record<string, string> = {};
  for (const [file, content] of recordedArtifacts())
    files[file] = (await resolve(content, showSecrets)) as string;

  return { resources: entries, outputs, files, warnings };
}

/** The URN an alias spec names (defaults: the resource's own name, type, stack and project). */
function aliasUrn(alias: AliasProto, req: RegisterRequest, stack: string, project: string): string {
  const spec = alias.getSpec();
  if (!spec) return alias.getUrn();
  const type = spec.getType() || req.getType();
  const parent = spec.getNoparent() ? "" : spec.getParenturn() || req.getParent();
  const qualified = parent ? `${parent.split("::")[2]}$${type}` : type;
  return `urn:pulumi:${spec.getStack() || stack}::${spec.getProject() || project}::${qualified}::${spec.getName() || req.getName()}`;
}

interface AliasProto {
  getUrn(): string;
  getSpec():
    | {
        getName(): string;
        getType(): string;
        getStack(): string;
        getProject(): string;
        getParenturn(): string;
        getNoparent(): boolean;
      }
    | undefined;
}

interface RegisterRequest {
  getAliasesList(): AliasProto[];
  getType(): string;
  getName(): string;
  getParent(): string;
  getCustom(): boolean;
  getObject(): unknown;
  getProtect(): boolean;
  getRetainondelete(): boolean;
  getDeletebeforereplace(): boolean;
  getAdditionalsecretoutputsList(): string[];
  getIgnorechangesList(): string[];
  getReplaceonchangesList(): string[];
  getDependenciesList(): string[];
  getPropertydependenciesMap(): { forEach(cb: (deps: { getUrnsList(): string[] }) => void): void };
}
