/**
 * npm run synth -- --stack <name>            reads Pulumi.<name>.yaml, writes out/<name>/
 * npm run synth -- --config <file> --out <dir>
 *   [--preview]       answer as `pulumi preview` of a new stack: computed values stay unknown
 *   [--show-secrets]  write secret values instead of "[secret]"
 *
 * The program runs through Pulumi's own entry point (@pulumi/pulumi/cmd/run) against a recording
 * engine: see engine.ts.
 *
 * Exit status: 0 written; 2 invalid configuration (problems on stderr, nothing written);
 * 1 anything else (one sentence on stderr), among it inputs a provider would reject (each one on
 * stderr, nothing written: providerInputs.ts).
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { checkOutDir, OUT_MARKER } from "./outDir";
import { readProjectName, readStackFile, stackFileFor } from "./stackFile";

type SynthResult = Awaited<ReturnType<typeof import("./harness").synth>>;

const USAGE = `usage: npm run synth -- (--stack <name> | --config <stack yaml>) [--out <dir>] [--preview] [--show-secrets]

Runs the Pulumi program offline through Pulumi's entry point against a recording engine and writes
  <out>/resources.json  every resource, in registration order, with inputs and options
  <out>/outputs.json    the stack outputs
  <out>/files/          every generated file a deployment uploads or runs
  <out>/unknown-files.txt  (--preview) files whose content is known only after deploy
Each custom resource's inputs are checked against what its provider declares: an input it would
reject fails the synth (npm run provider-inputs regenerates the declarations after an SDK upgrade).
Secrets are written as "[secret]" unless --show-secrets. Default <out>: out/<stack>.
<out> must not exist, be empty, lie under out/, or hold an earlier synth (${OUT_MARKER}).`;

const ROOT = path.resolve(__dirname, "..", "..", "..");

/** The stacks checked in next to Pulumi.yaml. */

async function main(argv: string[]): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse(argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`);
    return 1;
  }
  if (args.values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { stack: stackName, config: configFile } = args.values;
  if ((stackName === undefined) === (configFile === undefined)) {
    process.stderr.write(`give exactly one of --stack or --config\n\n${USAGE}\n`);
    return 1;
  }
  const target = stackFileFor(ROOT, stackName, configFile);
  if ("error" in target) {
    process.stderr.write(`${target.error}\n`);
    return 1;
  }
  const { file, stack } = target;
  const out = path.resolve(args.values.out ?? path.join(ROOT, "out", stack));
  const refusal = checkOutDir(out, ROOT);
  if (refusal) {
    process.stderr.write(`${refusal}\n`);
    return 1;
  }
  const project = readProjectName(path.join(ROOT, "Pulumi.yaml"));

  let stackFile: ReturnType<typeof readStackFile>;
  try {
    stackFile = readStackFile(file, project);
  } catch (err) {
    process.stderr.write(`cannot read ${file}: ${systemMessage(err)}\n`);
    return 1;
  }

  // Loaded only now: the checks above answer at once, without loading the Pulumi SDK.
  const { ProviderInputError, synth } = await import("./harness");
  const { ConfigError } = await import("../../../config/load");
  let result: SynthResult;
  try {
    result = await synth({
      stack,
      project,
      config: stackFile.config,
      secretKeys: stackFile.secretKeys,
      showSecrets: args.values["show-secrets"] ?? false,
      preview: args.values.preview ?? false,
      via: "engine",
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    if (err instanceof ProviderInputError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
  for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);

  try {
    write(out, result);
  } catch (err) {
    process.stderr.write(`cannot write ${out}: ${systemMessage(err)}\n`);
    return 1;
  }
  const unknown =
    result.unknownFiles.length > 0 ? ` (${result.unknownFiles.length} unknown until deploy)` : "";
  process.stdout.write(
    `synth ${stack}: ${result.resources.length} resources, ${Object.keys(result.files).length} files${unknown} → ${path.relative(process.cwd(), out) || "."}\n`,
  );
  return 0;
}

/** Replaces `out` (already checked by checkOutDir) with the result. */
function write(out: string, result: SynthResult): void {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(path.join(out, "files"), { recursive: true });
  writeFileSync(
    path.join(out, OUT_MARKER),
    "Written by npm run synth; the next synth replaces this directory.\n",
  );
  writeFileSync(path.join(out, "resources.json"), `${JSON.stringify(result.resources, null, 2)}\n`);
  writeFileSync(path.join(out, "outputs.json"), `${JSON.stringify(result.outputs, null, 2)}\n`);
  if (result.unknownFiles.length > 0)
    writeFileSync(
      path.join(out, "unknown-files.txt"),
      result.unknownFiles.map((f) => `files/${f}: unknown until deploy\n`).join(""),
    );
  for (const [rel, content] of Object.entries(result.files)) {
    const target = path.join(out, "files", rel);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, content);
  }
}

/** `EACCES: permission denied, mkdir '/x'` → `permission denied`: one sentence, no stack. */
function systemMessage(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code && e.message) return e.message.replace(/^[A-Z]+: /, "").replace(/, \w+ '.*'$/, "");
  return String((err as Error).message ?? err);
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      stack: { type: "string" },
      config: { type: "string" },
      out: { type: "string" },
      preview: { type: "boolean" },
      "show-secrets": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    const e = err as NodeJS.ErrnoException;
    // I/O problems are the user's to fix and need no stack trace; anything else is a bug here.
    process.stderr.write(`synth failed: ${e.code ? systemMessage(e) : (e.stack ?? String(err))}\n`);
    process.exit(1);
  },
);
