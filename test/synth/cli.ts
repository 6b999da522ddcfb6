/**
 * npm run synth -- --stack <name>            reads Pulumi.<name>.yaml, writes out/<name>/
 * npm run synth -- --config <file> --out <dir>
 *   [--show-secrets]  write secret values instead of "[secret]"
 *
 * Exit status: 0 written; 2 invalid configuration (problems on stderr, nothing written);
 * 1 anything else.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { ConfigError } from "../../config/load";
import { synth } from "./harness";
import { readProjectName, readStackFile } from "./stackFile";

const USAGE = `usage: npm run synth -- (--stack <name> | --config <stack yaml>) [--out <dir>] [--show-secrets]

Runs the Pulumi program offline under Pulumi's mock runtime and writes
  <out>/resources.json  every resource, in registration order, with inputs and options
  <out>/outputs.json    the stack outputs
  <out>/files/          every generated file a deployment uploads or runs
Secrets are written as "[secret]" unless --show-secrets. Default <out>: out/<stack>.`;

const ROOT = path.resolve(__dirname, "..", "..");

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
  const file = configFile ? path.resolve(configFile) : path.join(ROOT, `Pulumi.${stackName}.yaml`);
  const stack =
    stackName ??
    path
      .basename(file)
      .replace(/^Pulumi\./, "")
      .replace(/\.ya?ml$/, "");
  const out = path.resolve(args.values.out ?? path.join(ROOT, "out", stack));
  const project = readProjectName(path.join(ROOT, "Pulumi.yaml"));

  let stackFile: ReturnType<typeof readStackFile>;
  try {
    stackFile = readStackFile(file, project);
  } catch (err) {
    process.stderr.write(`cannot read ${file}: ${(err as Error).message}\n`);
    return 1;
  }

  let result: Awaited<ReturnType<typeof synth>>;
  try {
    result = await synth({
      stack,
      project,
      config: stackFile.config,
      secretKeys: stackFile.secretKeys,
      showSecrets: args.values["show-secrets"] ?? false,
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);

  rmSync(out, { recursive: true, force: true });
  mkdirSync(path.join(out, "files"), { recursive: true });
  writeFileSync(path.join(out, "resources.json"), `${JSON.stringify(result.resources, null, 2)}\n`);
  writeFileSync(path.join(out, "outputs.json"), `${JSON.stringify(result.outputs, null, 2)}\n`);
  for (const [rel, content] of Object.entries(result.files)) {
    const target = path.join(out, "files", rel);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, content);
  }
  process.stdout.write(
    `synth ${stack}: ${result.resources.length} resources, ${Object.keys(result.files).length} files → ${path.relative(process.cwd(), out) || "."}\n`,
  );
  return 0;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      stack: { type: "string" },
      config: { type: "string" },
      out: { type: "string" },
      "show-secrets": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`synth failed: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
