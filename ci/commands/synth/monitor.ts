/**
 * A recording resource monitor: the engine's side of the ResourceMonitor protocol
 * (pulumi/pulumi proto/pulumi/resource.proto), as `pulumi preview` / `pulumi up` answer a program
 * that creates every resource for the first time. One implementation serves both transports: the
 * gRPC server in engine.ts (the program runs through `@pulumi/pulumi/cmd/run`) and the SDK's
 * in-process monitor slot (runtime/settings `setMockOptions`).
 *
 * What it models (pulumi/pulumi pkg/resource/deploy):
 * - URNs as deployment.go `generateURN` builds them: the parent's whole qualified type chain
 *   (`parent$child`), except that the root `pulumi:pulumi:Stack` adds nothing.
 * - Registration answers: an update returns the inputs plus what the providers compute (mocks.ts:
 *   ids, ARNs, names, DNS names, arnSuffix); a preview (dry run) returns the inputs only and no id,
 *   so the SDK resolves every computed output as unknown — a create-preview.
 * - `additionalSecretOutputs` wraps those outputs as secrets (the engine does this, not the SDK).
 * - Stack outputs arrive through RegisterResourceOutputs on the root stack resource.
 * - Of the features a current engine advertises (GetDeploymentInfo), those that change what the SDK
 *   sends for this program: secrets, resource references, output values, deletedWith, alias specs.
 *   Transforms, hooks and parameterization are not advertised (the program uses none of them).
 *
 * - Provider Check, as far as declarations go: every custom resource's inputs against the inputs its
 *   provider declares (providerInputs.ts); the problems are collected in `problems`, all of them,
 *   and the harness fails the synth with them once the program is done.
 *
 * What it does not prove: the rest of provider Check/Diff (rules no declaration expresses, defaults
 * a provider fills in), default providers, update or replace plans against existing state, and real
 * values.
 */
import { createRequire } from "node:module";
import { isDeepStrictEqual } from "node:util";
import { makeMocks } from "./mocks";
import { checkRegistration, loadProviderInputs, type ProviderInputsFile } from "./providerInputs";
import { OUTPUT_SIG, RESOURCE_SIG, SECRET_SIG, SIG, UNKNOWN } from "./wire";

const pulumiRequire = createRequire(require.resolve("@pulumi/pulumi/package.json"));
// The generated protobuf stubs that ship with the SDK: the exact wire types the program speaks.
const resproto = pulumiRequire("./proto/resource_pb");
const structproto = pulumiRequire("google-protobuf/google/protobuf/struct_pb");

export const SECRET_PLACEHOLDER = "[secret]";
export const UNKNOWN_PLACEHOLDER = "[unknown until deploy]";
export const DYNAMIC_PROVIDER_PLACEHOLDER = "[serialized dynamic provider]";
const STACK_TYPE = "pulumi:pulumi:Stack";

export interface ResourceOptions {
  protect: boolean;
  retainOnDelete: boolean;
  deleteBeforeReplace: boolean;
  additionalSecretOutputs: string[];
  ignoreChanges: string[];
  replaceOnChanges: string[];
  /** Explicit `dependsOn` only (dependencies through inputs are not listed). */
  dependsOn: string[];
  /** Alias URNs, resolved as the engine resolves alias specs. */
  aliases: string[];
  customTimeouts: { create?: string; update?: string; delete?: string };
}

export interface SynthResource {
  urn: string;
  type: string;
  name: string;
  parent: string | null;
  custom: boolean;
  /** `urn::id` of an explicit provider, as the engine receives it. */
  provider: string | null;
  inputs: Record<string, unknown>;
  options: ResourceOptions;
}

type Callback<T> = (err: Error | null, res?: T) => void;

/** Wire value → plain data: secrets hidden or unwrapped, references as URNs, unknowns named. */
export function clean(value: unknown, showSecrets: boolean, key?: string): unknown {
  if (value === UNKNOWN) return UNKNOWN_PLACEHOLDER;
  if (Array.isArray(value)) return value.map((v) => clean(v, showSecrets));
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (obj[SIG] === SECRET_SIG) return showSecrets ? clean(obj.value, showSecrets) : SECRET_PLACEHOLDER;
    if (obj[SIG] === RESOURCE_SIG) return { resource: obj.urn };
    if (obj[SIG] === OUTPUT_SIG) {
      if (obj.secret && !showSecrets) return SECRET_PLACEHOLDER;
      return "value" in obj ? clean(obj.value, showSecrets) : UNKNOWN_PLACEHOLDER;
    }
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(obj)) out[k] = clean(obj[k], showSecrets, k);
    return out;
  }
  // A dynamic provider travels as the text of its serialized module (runtime/closure): code, not
  // configuration. Anything else under this key would mean it was not serialized.
  if (key === "__provider" && typeof value === "string" && value.includes("exports.handler"))
    return DYNAMIC_PROVIDER_PLACEHOLDER;
  return value;
}

function customTimeouts(
  t: ReturnType<RegisterRequest["getCustomtimeouts"]>,
): ResourceOptions["customTimeouts"] {
  const out: ResourceOptions["customTimeouts"] = {};
  if (t?.getCreate()) out.create = t.getCreate();
  if (t?.getUpdate()) out.update = t.getUpdate();
  if (t?.getDelete()) out.delete = t.getDelete();
  return out;
}

/** Wire value → what a provider sees: secrets unwrapped, unknowns absent. */
function plain(value: unknown): unknown {
  if (value === UNKNOWN) return undefined;
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (obj[SIG] === SECRET_SIG) return plain(obj.value);
    if (obj[SIG] === OUTPUT_SIG) return "value" in obj ? plain(obj.value) : undefined;
    if (obj[SIG] === RESOURCE_SIG) return obj.id ?? obj.urn;
    return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

const secret = (value: unknown) =>
  value !== null && typeof value === "object" && (value as Record<string, unknown>)[SIG] === SECRET_SIG
    ? value
    : { [SIG]: SECRET_SIG, value };

export interface MonitorOptions {
  project: string;
  stack: string;
  preview: boolean;
  showSecrets: boolean;
  region: string;
}

export class RecordingMonitor {
  readonly resources: SynthResource[] = [];
  /** Inputs a provider would reject (providerInputs.ts), one sentence each. */
  readonly problems: string[] = [];
  private readonly declaredInputs: ProviderInputsFile;
  /** Stack outputs (RegisterResourceOutputs on the root stack), as plain data. */
  outputs: Record<string, unknown> = {};
  private readonly fakes: ReturnType<typeof makeMocks>;
  private readonly states = new Map<string, { id: string; state: Record<string, unknown> }>();
  private stackUrn = "";

  constructor(private readonly opts: MonitorOptions) {
    this.fakes = makeMocks(opts.region);
    this.declaredInputs = loadProviderInputs();
  }

  /** deployment.go generateURN */
  urn(parent: string, type: string, name: string): string {
    let qualified = type;
    if (parent) {
      const parentType = parent.split("::")[2]!;
      if (parentType !== STACK_TYPE) qualified = `${parentType}$${type}`;
    }
    return `urn:pulumi:${this.opts.stack}::${this.opts.project}::${qualified}::${name}`;
  }

  getDeploymentInfo(_req: unknown, cb: Callback<unknown>): void {
    const F = resproto.ResourceMonitorFeature;
    const info = new resproto.DeploymentInfo();
    info.setSupportedfeaturesList([
      F.RESOURCE_MONITOR_FEATURE_SECRETS,
      F.RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES,
      F.RESOURCE_MONITOR_FEATURE_OUTPUT_VALUES,
      F.RESOURCE_MONITOR_FEATURE_DELETED_WITH,
      F.RESOURCE_MONITOR_FEATURE_ALIAS_SPECS,
    ]);
    cb(null, info);
  }

  supportsFeature(req: { getId(): string }, cb: Callback<unknown>): void {
    const res = new resproto.SupportsFeatureResponse();
    res.setHassupport(
      ["secrets", "resourceReferences", "outputValues", "deletedWith", "aliasSpecs"].includes(req.getId()),
    );
    cb(null, res);
  }

  registerResource(req: RegisterRequest, cb: Callback<unknown>): void {
    try {
      const type = req.getType();
      const name = req.getName();
      const parent = req.getParent();
      const urn = this.urn(parent, type, name);
      const object = (req.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>;
      this.problems.push(
        ...checkRegistration(this.declaredInputs, { urn, type, custom: req.getCustom(), inputs: object }),
      );
      const implicit = new Set<string>();
      req.getPropertydependenciesMap().forEach((deps) => deps.getUrnsList().forEach((u) => implicit.add(u)));
      this.resources.push({
        urn,
        type,
        name,
        parent: parent || null,
        custom: req.getCustom(),
        provider: req.getProvider() || null,
        inputs: clean(object, this.opts.showSecrets) as Record<string, unknown>,
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
          aliases: this.aliasUrns(req, urn),
          customTimeouts: customTimeouts(req.getCustomtimeouts()),
        },
      });
      if (type === STACK_TYPE && !parent) this.stackUrn = urn;

      const res = new resproto.RegisterResourceResponse();
      res.setUrn(urn);
      if (!req.getCustom()) {
        // Components have no provider: the engine answers with their URN and no state.
        res.setObject(structproto.Struct.fromJavaScript({}));
      } else if (this.opts.preview) {
        // A create-preview: the inputs come back, the id and every computed output are unknown.
        res.setId("");
        res.setObject(structproto.Struct.fromJavaScript(object));
      } else {
        const { id, state } = this.fakes.newResource({
          type,
          name,
          inputs: plain(object) as Record<string, unknown>,
          provider: req.getProvider(),
          custom: true,
          id: req.getImportid(),
        }) as { id: string; state: Record<string, unknown> };
        const merged: Record<string, unknown> = { ...object };
        for (const [k, v] of Object.entries(state)) {
          if (!(k in object) || !isDeepStrictEqual(plain(object[k]), v)) merged[k] = v;
        }
        for (const k of req.getAdditionalsecretoutputsList()) if (k in merged) merged[k] = secret(merged[k]);
        this.states.set(urn, { id, state: merged });
        res.setId(id);
        res.setObject(structproto.Struct.fromJavaScript(merged));
      }
      cb(null, res);
    } catch (err) {
      cb(err as Error);
    }
  }

  /** Alias specs → URNs, defaulting name, type and parent to the resource's own (source_eval.go). */
  private aliasUrns(req: RegisterRequest, urn: string): string[] {
    const out: string[] = [...req.getAliasurnsList()];
    for (const alias of req.getAliasesList()) {
      if (alias.hasUrn()) {
        out.push(alias.getUrn());
        continue;
      }
      const spec = alias.getSpec();
      if (!spec) continue;
      const parent = spec.getNoparent() ? "" : spec.hasParenturn() ? spec.getParenturn() : req.getParent();
      const aliasUrn = this.urn(parent, spec.getType() || req.getType(), spec.getName() || req.getName());
      const [, , qualified, name] = aliasUrn.split("::");
      out.push(
        `urn:pulumi:${spec.getStack() || this.opts.stack}::${spec.getProject() || this.opts.project}::${qualified}::${name}`,
      );
    }
    return out.filter((u) => u !== urn).sort();
  }

  registerResourceOutputs(
    req: { getUrn(): string; getOutputs(): { toJavaScript(): unknown } | undefined },
    cb: Callback<unknown>,
  ): void {
    if (req.getUrn() === this.stackUrn) {
      this.outputs = clean(req.getOutputs()?.toJavaScript() ?? {}, this.opts.showSecrets) as Record<
        string,
        unknown
      >;
    }
    cb(null, new (pulumiRequire("google-protobuf/google/protobuf/empty_pb").Empty)());
  }

  invoke(
    req: { getTok(): string; getArgs(): { toJavaScript(): unknown } | undefined },
    cb: Callback<unknown>,
  ): void {
    try {
      const tok = req.getTok();
      const args = plain(req.getArgs()?.toJavaScript() ?? {}) as Record<string, unknown>;
      let result: Record<string, unknown>;
      if (tok === "pulumi:pulumi:getResource") {
        const found = this.states.get(String(args.urn));
        if (!found) throw new Error(`unknown resource ${String(args.urn)}`);
        result = { urn: args.urn, id: found.id, state: found.state };
      } else {
        result = this.fakes.call({ token: tok, inputs: args, provider: "" }) as Record<string, unknown>;
      }
      const res = new resproto.ResourceInvokeResponse();
      res.setReturn(structproto.Struct.fromJavaScript(JSON.parse(JSON.stringify(result))));
      cb(null, res);
    } catch (err) {
      cb(err as Error);
    }
  }

  readResource(_req: unknown, cb: Callback<unknown>): void {
    cb(new Error("synth: the program reads no existing resources (ReadResource is not modelled)"));
  }

  /** The program is done; an engine would now run deletes and hooks. There are none here. */
  signalAndWaitForShutdown(_req: unknown, cb: Callback<unknown>): void {
    cb(null, new (pulumiRequire("google-protobuf/google/protobuf/empty_pb").Empty)());
  }
}

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getCustom(): boolean;
  getObject(): { toJavaScript(): unknown } | undefined;
  getProvider(): string;
  getImportid(): string;
  getProtect(): boolean;
  getRetainondelete(): boolean;
  getDeletebeforereplace(): boolean;
  getAdditionalsecretoutputsList(): string[];
  getIgnorechangesList(): string[];
  getReplaceonchangesList(): string[];
  getDependenciesList(): string[];
  getAliasurnsList(): string[];
  getAliasesList(): Array<{
    hasUrn(): boolean;
    getUrn(): string;
    getSpec():
      | {
          getName(): string;
          getType(): string;
          getStack(): string;
          getProject(): string;
          getNoparent(): boolean;
          hasParenturn(): boolean;
          getParenturn(): string;
        }
      | undefined;
  }>;
  getCustomtimeouts(): { getCreate(): string; getUpdate(): string; getDelete(): string } | undefined;
  getPropertydependenciesMap(): { forEach(cb: (deps: { getUrnsList(): string[] }) => void): void };
}
