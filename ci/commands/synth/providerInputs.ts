/**
 * The provider-input check of every synth: each custom resource the program registers is checked,
 * recursively, against the inputs its provider declares — the installed SDKs' `.d.ts` (each
 * resource's `…Args` and the `types/input` interfaces it references), and for a dynamic provider
 * the `Inputs` of its `ResourceProvider<Inputs, Outputs>` — as `npm run provider-inputs`
 * (providerInputsGenerate.ts) wrote them into provider-inputs.json. A real `pulumi preview` would
 * stop at the provider's Check; offline, nothing else would notice.
 *
 * Rules (each has a test in test/providerInputs.test.ts):
 * - An undeclared property, at any depth (objects, array elements, map values), is an error naming
 *   the property path and the declared names. Verified for pulumi-command, which is built on
 *   pulumi-go-provider `infer`: "property … has a problem: Unrecognized field '…'"
 *   (pulumi/pulumi-command#440; pulumi/pulumi sdk/go/common/util/mapper, NewUnrecognizedError).
 *   Stricter than the Terraform bridge's own type checker, which lets extra properties through
 *   unless asked (pulumi-terraform-bridge pkg/tfbridge/typechecker, validatePropertyMap): a key
 *   no provider declares is never what the program meant.
 * - A required property that is absent or null is an error (mapper's MissingError; Terraform's
 *   "required argument"; assumed for the bridge, whose type checker defers it to Terraform). The
 *   SDK classes refuse a missing top-level one themselves ("Missing required property 'bucket'",
 *   e.g. @pulumi/aws s3/bucketVersioning.js) before registering: here it matters nested, and for
 *   dynamic resources, whose SDK checks nothing.
 * - Kinds: an object where a scalar or array is declared (and so on) is an error. Scalars follow
 *   the provider: the bridged packages (aws, tls, random) coerce strings to numbers and booleans and
 *   numbers or booleans to strings (typechecker.go, validatePropertyValue: verified), so only
 *   pulumi-command and dynamic providers get strict scalar kinds (assumed for `infer`: mapper's
 *   WrongTypeError).
 * - A value unknown until deploy (a preview's computed value, an unknown output value) passes, in
 *   any position, as in the bridge's type checker. A secret is checked by the value it wraps; a
 *   known output value by its value; a resource reference where a string or a resource is declared
 *   (a provider without reference support gets the resource's id: pulumi/pulumi
 *   sdk/go/common/resource/plugin/rpc.go, MarshalPropertyValue without KeepResources; verified).
 * - A provider resource (`pulumi:providers:aws`) is checked against its ProviderArgs; the SDK sends
 *   every non-string provider input as JSON text (@pulumi/aws provider.js:
 *   `pulumi.output(args.defaultTags).apply(JSON.stringify)`), which is parsed and then checked.
 * - A dynamic provider's resource is checked against the provider's declared Inputs, without the
 *   `__provider` the SDK adds (@pulumi/pulumi dynamic/index.js). Component resources are not checked:
 *   no provider sees their inputs.
 * - A custom resource of a type the file does not cover, or a file written for other package
 *   versions than those installed, stops the synth with the command that regenerates it.
 *
 * What `.d.ts` cannot express, so this check does not know it: a provider's cross-field rules
 * (Terraform's ExactlyOneOf, ConflictsWith, AtLeastOneOf, RequiredWith), value ranges, patterns and
 * lengths, enum membership (the SDKs type enums as open strings), defaults and values a provider
 * computes, and anything only the cloud API refuses. An undeclared top-level property of an SDK
 * class never reaches the wire — the class copies declared names only (e.g. @pulumi/aws
 * s3/bucketVersioning.js) — so it is invisible here and to `pulumi preview` alike: a misspelt
 * required one is the class's own error, a misspelt optional one is caught by TypeScript in an
 * object literal and by nothing behind a spread.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { OUTPUT_SIG, RESOURCE_SIG, SECRET_SIG, SIG, UNKNOWN } from "./wire";

/** A declared input type, as provider-inputs.json stores it. */
export type InputType =
  | "string"
  | "number"
  | "boolean"
  | "null"
  | "any"
  /** A Pulumi resource (a class deriving from Resource, e.g. `string | Role`). */
  | "resource"
  /** A named object type in `types`. */
  | `#${string}`
  | { array: InputType }
  | { map: InputType }
  | { oneOf: InputType[] }
  | ObjectType;

export interface ObjectType {
  properties: Record<string, InputType>;
  required: string[];
}

export interface ResourceInputs {
  /** The class the token comes from (`@pulumi/aws/s3/bucketVersioning.BucketVersioning`). */
  class: string;
  inputs: InputType;
  /** Scalars are coerced as the Terraform bridge coerces them. */
  bridged?: true;
}

export interface ProviderInputsFile {
  /** Package name → the version the file was generated from. */
  packages: Record<string, string>;
  /** Every source the generator read (path, or `path#Declaration` in this repository) → sha256. */
  sources: Record<string, string>;
  resources: Record<string, ResourceInputs>;
  types: Record<string, ObjectType>;
}

export const ROOT = path.resolve(__dirname, "..", "..", "..");
export const PROVIDER_INPUTS_FILE = path.join(__dirname, "provider-inputs.json");
export const REGENERATE = "npm run provider-inputs";
const DYNAMIC_PROVIDER_KEY = "__provider";

/** Inputs a provider would reject, or declarations the synth cannot check against. */
export class ProviderInputError extends Error {
  constructor(
    readonly problems: string[],
    heading = `inputs a provider would reject (as declared in ${path.relative(ROOT, PROVIDER_INPUTS_FILE)})`,
  ) {
    super(`synth: ${heading}:\n${problems.map((p) => `- ${p}`).join("\n")}`);
    this.name = "ProviderInputError";
  }
}

/** The installed version of each package the file covers. */
export function installedVersions(packages: string[]): Record<string, string> {
  return Object.fromEntries(
    packages.map((p) => [
      p,
      (JSON.parse(readFileSync(require.resolve(`${p}/package.json`), "utf8")) as { version: string }).version,
    ]),
  );
}

export const sha256 = (text: string | Buffer) => createHash("sha256").update(text).digest("hex");

let loaded: ProviderInputsFile | undefined;

/** The declared inputs, once per process; throws when they were generated for other versions. */
export function loadProviderInputs(file = PROVIDER_INPUTS_FILE): ProviderInputsFile {
  if (loaded && file === PROVIDER_INPUTS_FILE) return loaded;
  let data: ProviderInputsFile;
  try {
    data = JSON.parse(readFileSync(file, "utf8")) as ProviderInputsFile;
  } catch (err) {
    throw new ProviderInputError(
      [`cannot read ${file} (${(err as Error).message}): run ${REGENERATE}`],
      "no declared provider inputs to check against",
    );
  }
  const installed = installedVersions(Object.keys(data.packages));
  const stale = Object.keys(data.packages).filter((p) => installed[p] !== data.packages[p]);
  if (stale.length > 0)
    throw new ProviderInputError(
      [
        `${path.relative(ROOT, file)} was generated for ${stale.map((p) => `${p} ${data.packages[p]}`).join(", ")}; installed: ${stale.map((p) => `${p} ${installed[p]}`).join(", ")}. Run ${REGENERATE}.`,
      ],
      "the declared provider inputs are for other package versions",
    );
  if (file === PROVIDER_INPUTS_FILE) loaded = data;
  return data;
}

const isProviderType = (type: string) => type.startsWith("pulumi:providers:");
const isDynamicType = (type: string) => type.startsWith("pulumi-nodejs:dynamic");

/**
 * The problems of one registration's inputs (the SDK's wire format), each a sentence naming the
 * resource, the property path and what is declared there. Component resources have none.
 */
export function checkRegistration(
  data: ProviderInputsFile,
  reg: { urn: string; type: string; custom: boolean; inputs: Record<string, unknown> },
): string[] {
  if (!reg.custom) return [];
  const declared = data.resources[reg.type];
  if (!declared)
    return [
      `${reg.urn}: the type ${reg.type} has no declared inputs in ${path.relative(ROOT, PROVIDER_INPUTS_FILE)}; run ${REGENERATE} (it covers every resource class the program constructs)`,
    ];
  const checker = new Checker(data, reg.type, declared.bridged === true);
  let inputs = reg.inputs;
  if (isDynamicType(reg.type)) inputs = withoutKey(inputs, DYNAMIC_PROVIDER_KEY);
  if (isProviderType(reg.type)) inputs = checker.parseProviderJson(inputs, declared.inputs);
  checker.check(inputs, declared.inputs, "");
  return checker.problems.map((p) => `${reg.urn}: ${p}`);
}

function withoutKey(obj: Record<string, unknown>, key: string): Record<string, unknown> {
  const { [key]: _omitted, ...rest } = obj;
  return rest;
}

type Kind = "string" | "number" | "boolean" | "null" | "array" | "object" | "resource";

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** A wire value with secrets and known output values unwrapped; `undefined` when unknown. */
function unwrap(value: unknown): { known: false } | { known: true; value: unknown } {
  let v = value;
  for (;;) {
    if (v === UNKNOWN) return { known: false };
    if (!isPlainObject(v)) return { known: true, value: v };
    if (v[SIG] === SECRET_SIG) v = v.value;
    else if (v[SIG] === OUTPUT_SIG) {
      if (!("value" in v)) return { known: false };
      v = v.value;
    } else return { known: true, value: v };
  }
}

function kindOf(v: unknown): Kind {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (isPlainObject(v)) return v[SIG] === RESOURCE_SIG ? "resource" : "object";
  return typeof v as "string" | "number" | "boolean";
}

const propertyPath = (base: string, key: string) =>
  /^[A-Za-z_$][\w$]*$/.test(key) ? (base ? `${base}.${key}` : key) : `${base}[${JSON.stringify(key)}]`;

class Checker {
  readonly problems: string[] = [];
  constructor(
    private readonly data: ProviderInputsFile,
    private readonly type: string,
    private readonly bridged: boolean,
  ) {}

  private resolve(t: InputType): Exclude<InputType, `#${string}`> {
    if (typeof t === "string" && t.startsWith("#")) {
      const named = this.data.types[t.slice(1)];
      if (!named)
        throw new Error(`provider-inputs.json: ${t} is referenced but not defined; run ${REGENERATE}`);
      return named;
    }
    return t as Exclude<InputType, `#${string}`>;
  }

  /** The kinds a declared type accepts (for unions: each alternative's). */
  private accepts(t: InputType, kind: Kind): boolean {
    const r = this.resolve(t);
    if (r === "any") return true;
    if (typeof r === "string") {
      if (kind === "resource") return r === "resource" || r === "string";
      if (r === kind) return true;
      if (!this.bridged) return false;
      // The bridge's coercions (typechecker.go, validatePropertyValue).
      if (r === "string") return kind === "number" || kind === "boolean";
      return (r === "number" || r === "boolean") && kind === "string";
    }
    if ("oneOf" in r) return r.oneOf.some((a) => this.accepts(a, kind));
    if ("array" in r) return kind === "array";
    return kind === "object";
  }

  private describe(t: InputType): string {
    const r = this.resolve(t);
    if (typeof r === "string") return r;
    if ("oneOf" in r) return r.oneOf.map((a) => this.describe(a)).join(" or ");
    if ("array" in r) return "an array";
    if ("map" in r) return "a map";
    return "an object";
  }

  check(value: unknown, t: InputType, at: string): void {
    const u = unwrap(value);
    if (!u.known) return;
    const v = u.value;
    const kind = kindOf(v);
    const r = this.resolve(t);
    if (!this.accepts(r, kind)) {
      const shown =
        kind === "string" || kind === "number" || kind === "boolean" ? `${kind} ${JSON.stringify(v)}` : kind;
      this.problems.push(`${at || "the inputs"}: expected ${this.describe(r)}, got ${shown}`);
      return;
    }
    if (typeof r === "string") return;
    if ("oneOf" in r) {
      const fitting = r.oneOf.filter((a) => this.accepts(a, kind));
      // One alternative of this kind: its problems are the value's. Several: the value passes when
      // any of them takes it whole.
      if (fitting.length === 1) return this.check(v, fitting[0]!, at);
      for (const alternative of fitting) {
        const trial = new Checker(this.data, this.type, this.bridged);
        trial.check(v, alternative, at);
        if (trial.problems.length === 0) return;
      }
      return this.check(v, fitting[0]!, at);
    }
    if ("array" in r) {
      (v as unknown[]).forEach((element, i) => this.check(element, r.array, `${at}[${i}]`));
      return;
    }
    const obj = v as Record<string, unknown>;
    if ("map" in r) {
      for (const [key, element] of Object.entries(obj)) this.check(element, r.map, propertyPath(at, key));
      return;
    }
    const declared = Object.keys(r.properties);
    for (const [key, element] of Object.entries(obj)) {
      const propType = r.properties[key];
      if (propType === undefined) {
        this.problems.push(
          `${propertyPath(at, key)} is not an input of ${this.type}; ${at ? `${at} takes` : "its inputs are"} ${declared.sort().join(", ") || "none"}`,
        );
        continue;
      }
      // Null is "not set" for every provider here, unless the declaration says null.
      if (element === null && !this.accepts(propType, "null")) continue;
      this.check(element, propType, propertyPath(at, key));
    }
    for (const key of r.required) {
      const element = obj[key];
      if (element === undefined || (element === null && !this.accepts(r.properties[key]!, "null")))
        this.problems.push(`${propertyPath(at, key)} is required by ${this.type} and missing`);
    }
  }

  /** Provider inputs arrive as JSON text unless declared as strings (@pulumi/aws provider.js). */
  parseProviderJson(inputs: Record<string, unknown>, t: InputType): Record<string, unknown> {
    const r = this.resolve(t);
    if (typeof r === "string" || !("properties" in r)) return inputs;
    const out: Record<string, unknown> = {};
    for (const [key, raw] of Object.entries(inputs)) {
      const u = unwrap(raw);
      const propType = r.properties[key];
      if (
        u.known &&
        typeof u.value === "string" &&
        propType !== undefined &&
        !this.acceptsStrictly(propType, "string")
      ) {
        try {
          out[key] = JSON.parse(u.value);
        } catch {
          out[key] = raw;
        }
      } else out[key] = raw;
    }
    return out;
  }

  private acceptsStrictly(t: InputType, kind: Kind): boolean {
    const r = this.resolve(t);
    if (typeof r === "string") return r === kind || r === "any";
    if ("oneOf" in r) return r.oneOf.some((a) => this.acceptsStrictly(a, kind));
    return false;
  }
}
