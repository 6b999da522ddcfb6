/**
 * npm run provider-inputs   rewrites ci/commands/synth/provider-inputs.json
 *
 * Reads, with the TypeScript compiler API, the inputs each provider declares for every custom
 * resource class the program constructs (index.ts and everything it imports, outside node_modules):
 * - a class of @pulumi/aws, @pulumi/command, @pulumi/tls or @pulumi/random: its type token is the
 *   class's `__pulumiType` in the package's own .js (`pulumi:providers:<token>` for a provider),
 *   its inputs the constructor's `args` type in the .d.ts, followed through every interface it
 *   references (`types/input`), recursively;
 * - a class deriving from `pulumi.dynamic.Resource`: its token is what dynamic/index.js builds from
 *   the `module` and `type` literals of its `super(…)` call, its inputs the `Inputs` of the
 *   provider passed there (`pulumi.dynamic.ResourceProvider<Inputs, Outputs>`).
 * The synth checks registrations against the file (providerInputs.ts): reading the `.d.ts` at every
 * synth would cost ~10 s and ~430 MB. The file is committed, keyed by the installed package versions,
 * and records a hash of every source it was read from (each `.d.ts` and `.js` whole; from this
 * repository, the text of each declaration read, and this generator), so `staleSources` — a test —
 * tells when it no longer matches without reading any of it with the compiler.
 */
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import * as prettier from "prettier";
import ts from "typescript";
import {
  type InputType,
  installedVersions,
  type ObjectType,
  PROVIDER_INPUTS_FILE,
  type ProviderInputsFile,
  ROOT,
  type ResourceInputs,
  sha256,
} from "./providerInputs";

export const PACKAGES = ["@pulumi/aws", "@pulumi/command", "@pulumi/tls", "@pulumi/random"];
/** The packages built on the Terraform bridge (their scalars are coerced: providerInputs.ts). */
const BRIDGED = new Set(["@pulumi/aws", "@pulumi/tls", "@pulumi/random"]);
const NODE_MODULES = path.join(ROOT, "node_modules") + path.sep;
const GENERATOR = path.relative(ROOT, __filename);

class GeneratorError extends Error {}

/** Where a file lives: one of the covered packages, @pulumi/pulumi, this repository, or elsewhere. */
function origin(file: string): { pkg: string } | { repo: true } | { other: true } {
  const f = path.resolve(file);
  if (f.startsWith(NODE_MODULES)) {
    const rest = f.slice(NODE_MODULES.length).split(path.sep);
    const pkg = rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
    return { pkg };
  }
  if (f.startsWith(ROOT + path.sep)) return { repo: true };
  return { other: true };
}

const isPulumiSdk = (node: ts.Node) => {
  const o = origin(node.getSourceFile().fileName);
  return "pkg" in o && o.pkg === "@pulumi/pulumi";
};

class Generator {
  readonly checker: ts.TypeChecker;
  readonly resources: Record<string, ResourceInputs> = {};
  readonly types: Record<string, ObjectType> = {};
  readonly sources = new Map<string, string>();
  private readonly building = new Set<string>();

  constructor(readonly program: ts.Program) {
    this.checker = program.getTypeChecker();
  }

  run(): void {
    for (const sf of this.program.getSourceFiles()) {
      if (sf.isDeclarationFile || !("repo" in origin(sf.fileName))) continue;
      const visit = (node: ts.Node): void => {
        if (ts.isNewExpression(node)) this.constructed(node);
        ts.forEachChild(node, visit);
      };
      visit(sf);
    }
    this.record(GENERATOR, sha256(readFileSync(__filename)));
  }

  private record(key: string, hash: string) {
    this.sources.set(key, hash);
  }

  /** A source the schema depends on: a package file whole, a declaration of this repository by its text. */
  private recordDeclaration(decl: ts.Declaration) {
    const file = decl.getSourceFile().fileName;
    const o = origin(file);
    const rel = path.relative(ROOT, file);
    if ("pkg" in o && PACKAGES.includes(o.pkg)) this.record(rel, sha256(readFileSync(file)));
    else if ("repo" in o) {
      const top = topLevelDeclaration(decl);
      if (top) this.record(`${rel}#${top.name.text}`, sha256(top.getText()));
    }
  }

  /**
   * The class an expression names. The SDKs export their classes lazily (`export declare const
   * Bucket: typeof import("./bucket").Bucket`): the class is the symbol of the expression's type.
   */
  private classOf(expr: ts.Expression): ts.ClassLikeDeclaration | undefined {
    const decl = this.checker.getTypeAtLocation(expr).getSymbol()?.valueDeclaration;
    return decl && ts.isClassLike(decl) ? decl : undefined;
  }

  /** The classes this class derives from, nearest first. */
  private ancestry(decl: ts.ClassLikeDeclaration): ts.ClassLikeDeclaration[] {
    const out: ts.ClassLikeDeclaration[] = [];
    let current: ts.ClassLikeDeclaration | undefined = decl;
    while (current) {
      const ext: ts.Expression | undefined = current.heritageClauses?.find(
        (h) => h.token === ts.SyntaxKind.ExtendsKeyword,
      )?.types[0]?.expression;
      current = ext ? this.classOf(ext) : undefined;
      if (current) out.push(current);
    }
    return out;
  }

  private constructed(node: ts.NewExpression): void {
    const decl = this.classOf(node.expression);
    if (!decl?.name) return;
    const bases = this.ancestry(decl);
    const sdkBase = (name: string) => bases.some((b) => b.name?.text === name && isPulumiSdk(b));
    if (!sdkBase("CustomResource")) return;
    const o = origin(decl.getSourceFile().fileName);
    if ("pkg" in o && PACKAGES.includes(o.pkg)) this.sdkResource(decl, o.pkg, sdkBase("ProviderResource"));
    else if ("repo" in o && bases.some(isDynamicResource)) this.dynamicResource(decl);
    else
      throw new GeneratorError(
        `${where(node)}: ${decl.name.text} is a custom resource outside ${PACKAGES.join(", ")} and not a dynamic resource; add its package to PACKAGES in ${GENERATOR}`,
      );
  }

  private sdkResource(decl: ts.ClassLikeDeclaration, pkg: string, provider: boolean): void {
    const className = decl.name!.text;
    const dts = decl.getSourceFile().fileName;
    const js = dts.replace(/\.d\.ts$/, ".js");
    const token = (require(js) as Record<string, { __pulumiType?: string }>)[className]?.__pulumiType;
    if (typeof token !== "string")
      throw new GeneratorError(`${js}: ${className}.__pulumiType is not a string`);
    const type = provider ? `pulumi:providers:${token}` : token;
    if (this.resources[type]) return;
    const ctor = decl.members.find(ts.isConstructorDeclaration);
    const args = ctor?.parameters[1];
    if (!args || !ts.isIdentifier(args.name) || args.name.text !== "args")
      throw new GeneratorError(`${dts}: the constructor of ${className} takes no args parameter`);
    this.recordDeclaration(decl);
    this.record(path.relative(ROOT, js), sha256(readFileSync(js)));
    this.resources[type] = {
      class: `${path.relative(NODE_MODULES, dts).replace(/\.d\.ts$/, "")}.${className}`,
      inputs: this.convert(this.checker.getTypeAtLocation(args), where(args)),
      ...(BRIDGED.has(pkg) ? { bridged: true as const } : {}),
    };
  }

  private dynamicResource(decl: ts.ClassLikeDeclaration): void {
    const className = decl.name!.text;
    const ctor = decl.members.find(ts.isConstructorDeclaration);
    let call: ts.CallExpression | undefined;
    const find = (n: ts.Node): void => {
      if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.SuperKeyword) call = n;
      else ts.forEachChild(n, find);
    };
    if (ctor?.body) find(ctor.body);
    if (!call)
      throw new GeneratorError(`${where(decl)}: ${className} has no super(…) call to read its type from`);
    const literal = (i: number, fallback: string | undefined): string | undefined => {
      const a = call!.arguments[i];
      if (!a) return fallback;
      if (ts.isStringLiteralLike(a)) return a.text;
      throw new GeneratorError(
        `${where(a)}: the ${i === 4 ? "module" : "type"} of ${className} must be a string literal`,
      );
    };
    // dynamic/index.js: `pulumi-nodejs:dynamic${module ? `/${module}` : ""}:${type}`, type "Resource".
    const module = literal(4, undefined);
    const type = `pulumi-nodejs:dynamic${module ? `/${module}` : ""}:${literal(5, "Resource")}`;
    if (this.resources[type]) return;
    const providerArg = call.arguments[0]!;
    const inputsType = this.providerInputs(providerArg);
    if (!inputsType)
      throw new GeneratorError(
        `${where(providerArg)}: the provider of ${className} declares no inputs: type it as pulumi.dynamic.ResourceProvider<Inputs, Outputs>, or its create(inputs: Inputs)`,
      );
    this.resources[type] = {
      class: `${path.relative(ROOT, decl.getSourceFile().fileName).replace(/\.ts$/, "")}.${className}`,
      inputs: this.convert(inputsType, where(providerArg)),
    };
  }

  /**
   * A dynamic provider's declared inputs: `Inputs` of its `ResourceProvider<Inputs, Outputs>` type,
   * else the type its `create(inputs)` declares (an object literal typed as a bare ResourceProvider).
   */
  private providerInputs(expr: ts.Expression): ts.Type | undefined {
    const c = this.checker;
    const declared = c.getTypeAtLocation(expr);
    const fromGeneric =
      declared.flags & ts.TypeFlags.Object &&
      (declared as ts.ObjectType).objectFlags & ts.ObjectFlags.Reference
        ? c.getTypeArguments(declared as ts.TypeReference)[0]
        : declared.aliasTypeArguments?.[0];
    if (fromGeneric && !(fromGeneric.flags & ts.TypeFlags.Any)) return fromGeneric;
    let sym = c.getSymbolAtLocation(expr);
    if (sym && sym.flags & ts.SymbolFlags.Alias) sym = c.getAliasedSymbol(sym);
    const init =
      sym?.valueDeclaration && ts.isVariableDeclaration(sym.valueDeclaration)
        ? sym.valueDeclaration.initializer
        : undefined;
    if (!init || !ts.isObjectLiteralExpression(init)) return undefined;
    for (const member of init.properties) {
      if (!member.name || !ts.isIdentifier(member.name) || member.name.text !== "create") continue;
      const fn = ts.isMethodDeclaration(member)
        ? member
        : ts.isPropertyAssignment(member)
          ? member.initializer
          : undefined;
      const param =
        fn && (ts.isMethodDeclaration(fn) || ts.isFunctionLike(fn)) ? fn.parameters[0] : undefined;
      if (!param?.type) return undefined;
      const t = c.getTypeFromTypeNode(param.type);
      return t.flags & ts.TypeFlags.Any ? undefined : t;
    }
    return undefined;
  }

  /** A TypeScript type → the declared input type. `Input<T>` is T; `undefined` means optional. */
  convert(type: ts.Type, at: string): InputType {
    const c = this.checker;
    const f = type.flags;
    if (f & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return "any";
    if (f & ts.TypeFlags.Union) {
      const alternatives: InputType[] = [];
      for (const member of (type as ts.UnionType).types) {
        if (member.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Void) || this.isEventual(member)) continue;
        const converted = this.convert(member, at);
        if (!alternatives.some((a) => JSON.stringify(a) === JSON.stringify(converted)))
          alternatives.push(converted);
      }
      if (alternatives.includes("any")) return "any";
      return alternatives.length === 1 ? alternatives[0]! : { oneOf: alternatives };
    }
    if (f & ts.TypeFlags.StringLike) return "string";
    if (f & ts.TypeFlags.NumberLike || f & ts.TypeFlags.BigIntLike) return "number";
    if (f & ts.TypeFlags.BooleanLike) return "boolean";
    if (f & ts.TypeFlags.Null) return "null";
    if (this.isEventual(type)) {
      // `Promise<T>` or `Output<T>` alone: T.
      const inner =
        (type as ts.TypeReference).typeArguments?.[0] ?? c.getTypeArguments(type as ts.TypeReference)[0];
      return inner ? this.convert(inner, at) : "any";
    }
    if (c.isArrayType(type))
      return { array: this.convert(c.getTypeArguments(type as ts.TypeReference)[0]!, at) };
    if (c.isTupleType(type)) {
      const elements = c.getTypeArguments(type as ts.TypeReference);
      return { array: elements.length === 1 ? this.convert(elements[0]!, at) : "any" };
    }
    if (f & (ts.TypeFlags.Object | ts.TypeFlags.Intersection)) {
      const decl = type.getSymbol()?.valueDeclaration ?? type.getSymbol()?.declarations?.[0];
      if (
        decl &&
        ts.isClassLike(decl) &&
        this.ancestry(decl).some((b) => b.name?.text === "Resource" && isPulumiSdk(b))
      )
        return "resource";
      const props = c.getPropertiesOfType(type).filter((p) => !(p.flags & ts.SymbolFlags.Method));
      const index = c.getIndexInfosOfType(type).find((i) => i.keyType.flags & ts.TypeFlags.String);
      if (props.length === 0) return index ? { map: this.convert(index.type, at) } : "any";
      if (index)
        throw new GeneratorError(`${at}: ${c.typeToString(type)} has both properties and an index signature`);
      const name = this.typeName(type);
      if (name && (this.types[name] || this.building.has(name))) return `#${name}`;
      if (name) this.building.add(name);
      const obj: ObjectType = { properties: {}, required: [] };
      for (const p of [...props].sort((a, b) => a.name.localeCompare(b.name))) {
        const decl = p.valueDeclaration ?? p.declarations?.[0];
        if (decl) this.recordDeclaration(decl);
        obj.properties[p.name] = this.convert(c.getTypeOfSymbol(p), `${at} → ${p.name}`);
        if (!(p.flags & ts.SymbolFlags.Optional)) obj.required.push(p.name);
      }
      if (!name) return obj;
      this.types[name] = obj;
      this.building.delete(name);
      return `#${name}`;
    }
    throw new GeneratorError(`${at}: cannot express the type ${c.typeToString(type)} as provider inputs`);
  }

  /** `Promise<T>`, and the SDK's `Output<T>` / `OutputInstance<T>` that `Input<T>` admits. */
  private isEventual(type: ts.Type): boolean {
    const sym = type.getSymbol();
    if (!sym) return false;
    if (sym.name === "Promise" || sym.name === "PromiseLike") return true;
    const decl = sym.declarations?.[0];
    return (
      (sym.name === "OutputInstance" || sym.name === "Output") && decl !== undefined && isPulumiSdk(decl)
    );
  }

  /** `aws/types/input:s3.BucketVersioningVersioningConfiguration`; undefined for anonymous types. */
  private typeName(type: ts.Type): string | undefined {
    const sym = type.aliasSymbol ?? type.getSymbol();
    if (!sym || sym.name.startsWith("__")) return undefined;
    const decl = sym.declarations?.[0];
    if (!decl) return undefined;
    const file = decl.getSourceFile().fileName;
    const qualified = this.checker.getFullyQualifiedName(sym).replace(/^"[^"]*"\./, "");
    const o = origin(file);
    const stem = "pkg" in o ? path.relative(NODE_MODULES, file) : path.relative(ROOT, file);
    return `${stem.replace(/\.d\.ts$|\.ts$/, "").replace(/^@pulumi\//, "")}:${qualified}`;
  }
}

function isDynamicResource(decl: ts.ClassLikeDeclaration): boolean {
  const file = decl.getSourceFile().fileName;
  return (
    decl.name?.text === "Resource" && file.endsWith(path.join("@pulumi", "pulumi", "dynamic", "index.d.ts"))
  );
}

type NamedDeclaration = (
  ts.InterfaceDeclaration | ts.TypeAliasDeclaration | ts.ClassDeclaration | ts.EnumDeclaration
) & { name: ts.Identifier };

const isNamedDeclaration = (n: ts.Node): n is NamedDeclaration =>
  (ts.isInterfaceDeclaration(n) ||
    ts.isTypeAliasDeclaration(n) ||
    ts.isClassDeclaration(n) ||
    ts.isEnumDeclaration(n)) &&
  n.name !== undefined;

/** The top-level interface, type, class or enum a declaration belongs to. */
function topLevelDeclaration(decl: ts.Node): NamedDeclaration | undefined {
  for (let n: ts.Node | undefined = decl; n; n = n.parent)
    if (isNamedDeclaration(n) && ts.isSourceFile(n.parent)) return n;
  return undefined;
}

/** The top-level declaration of that name in a source text, as the generator hashed it. */
function declarationText(text: string, file: string, name: string): string | undefined {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  return sf.statements.find((s) => isNamedDeclaration(s) && s.name.text === name)?.getText(sf);
}

function where(node: ts.Node): string {
  const sf = node.getSourceFile();
  const { line } = sf.getLineAndCharacterOfPosition(node.getStart());
  return `${path.relative(ROOT, sf.fileName)}:${line + 1}`;
}

/** The program as tsconfig.json compiles it, rooted at index.ts. */
function createProgram(): ts.Program {
  const parsed = ts.getParsedCommandLineOfConfigFile(
    path.join(ROOT, "tsconfig.json"),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new GeneratorError(ts.flattenDiagnosticMessageText(d.messageText, "\n"));
      },
    },
  );
  if (!parsed) throw new GeneratorError("cannot read tsconfig.json");
  return ts.createProgram({
    rootNames: [path.join(ROOT, "index.ts")],
    options: { ...parsed.options, noEmit: true },
  });
}

export function generate(): ProviderInputsFile {
  const g = new Generator(createProgram());
  g.run();
  const sorted = <T>(o: Record<string, T>) =>
    Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return {
    packages: installedVersions(PACKAGES),
    sources: sorted(Object.fromEntries(g.sources)),
    resources: sorted(g.resources),
    types: sorted(g.types),
  };
}

/** The file as prettier writes it (`npm run lint` checks it like any other). */
export async function render(data: ProviderInputsFile): Promise<string> {
  const options = (await prettier.resolveConfig(PROVIDER_INPUTS_FILE)) ?? {};
  return prettier.format(JSON.stringify(data), { ...options, filepath: PROVIDER_INPUTS_FILE });
}

/**
 * The recorded sources that changed since the file was written (or are gone), and the packages whose
 * installed version differs: empty when the file still matches. Hashes only; no compiler run.
 */
export function staleSources(data: ProviderInputsFile = readFile()): string[] {
  const stale: string[] = [];
  const installed = installedVersions(Object.keys(data.packages));
  for (const [pkg, version] of Object.entries(data.packages))
    if (installed[pkg] !== version)
      stale.push(`${pkg}: generated from ${version}, installed ${installed[pkg]}`);
  const texts = new Map<string, string | undefined>();
  const read = (rel: string) => {
    if (!texts.has(rel)) {
      try {
        texts.set(rel, readFileSync(path.join(ROOT, rel), "utf8"));
      } catch {
        texts.set(rel, undefined);
      }
    }
    return texts.get(rel);
  };
  for (const [key, hash] of Object.entries(data.sources)) {
    const [rel, name] = key.split("#") as [string, string | undefined];
    const text = read(rel);
    const current = text === undefined ? undefined : name ? declarationText(text, rel, name) : text;
    if (current === undefined) stale.push(`${key}: gone`);
    else if (sha256(current) !== hash) stale.push(`${key}: changed`);
  }
  return stale;
}

function readFile(): ProviderInputsFile {
  return JSON.parse(readFileSync(PROVIDER_INPUTS_FILE, "utf8")) as ProviderInputsFile;
}

async function main(): Promise<number> {
  let data: ProviderInputsFile;
  try {
    data = generate();
  } catch (err) {
    if (err instanceof GeneratorError) {
      process.stderr.write(`provider-inputs: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  writeFileSync(PROVIDER_INPUTS_FILE, await render(data));
  process.stdout.write(
    `provider-inputs: ${Object.keys(data.resources).length} resource types, ${Object.keys(data.types).length} input types, ${Object.entries(
      data.packages,
    )
      .map(([p, v]) => `${p} ${v}`)
      .join(", ")} → ${path.relative(process.cwd(), PROVIDER_INPUTS_FILE)}\n`,
  );
  return 0;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`provider-inputs failed: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
