/**
 * npm run restore -- rds --stack <name> --restored <identifier> [--out <dir>] [--dry-run]
 *
 * After the RDS instance was restored (from a snapshot or to a point in time) into a NEW identifier,
 * points the stack's state at the restored instance, so that Pulumi keeps managing the database
 * and its dependents follow it (docs/runbooks.md, "RDS: restore from a snapshot or a point in
 * time"). Every name comes from the stack's outputs and from AWS:
 * 1. `pulumi stack output` → the instance the state holds (`aws.database.identifier`);
 * 2. `aws rds describe-db-instances` → the restored instance's resource id, which must be available;
 * 3. `pulumi stack export` → <out>/before.json (kept: `pulumi stack import --file` it to undo);
 * 4. the edit (state.ts), checked against what `pulumi stack import` refuses → <out>/after.json;
 * 5. `pulumi stack import` of it, unless --dry-run;
 * and prints the refresh, preview and up that finish the job. Run again after a failure, it finds
 * the state already pointing at the restored instance and imports nothing.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { OutputsError, parseStackOutputs } from "../../../components/outputs";
import { DB_IDENTIFIER, importProblems, pointInstanceAt, RestoreError, type StackExport } from "./state";

const USAGE = `usage: npm run restore -- rds --stack <name> --restored <identifier> [--out <dir>] [--dry-run]

Points the stack's RDS instance, in Pulumi's state, at the instance restored under <identifier>
(aws rds restore-db-instance-from-db-snapshot / -to-point-in-time, docs/runbooks.md): exports the
state to <out>/before.json, writes the edited state to <out>/after.json and imports it.
--dry-run writes both files and imports nothing. Needs the pulumi and aws CLIs.
<out> defaults to ./restore-<stack>-<UTC time>.`;

class UsageError extends Error {}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT")
    throw new UsageError(
      `${cmd} is not installed (${cmd === "aws" ? "https://aws.amazon.com/cli/" : "https://www.pulumi.com/docs/install/"})`,
    );
  if (r.status !== 0)
    throw new RestoreError(
      `${cmd} ${args.join(" ")} failed: ${(r.stderr || r.stdout || "").trim() || "(no message)"}`,
    );
  return r.stdout;
}

/** The identifier the stack's state holds, from the outputs contract. */
function stateIdentifier(stack: string): string {
  let outputs;
  try {
    outputs = parseStackOutputs(
      JSON.parse(run("pulumi", ["stack", "output", "--json", "--show-secrets", "--stack", stack])),
    );
  } catch (err) {
    if (err instanceof OutputsError || err instanceof SyntaxError)
      throw new RestoreError(`the outputs of stack ${stack} are not attic-infra's: ${err.message}`);
    throw err;
  }
  const id = outputs.aws?.database?.identifier;
  if (!id)
    throw new RestoreError(
      outputs.aws
        ? `stack ${stack} uses database.existing: its database is not the program's to point at; restore it where it lives`
        : `stack ${stack} has no aws site`,
    );
  return id;
}

/** The restored instance's DBI resource id; it must be available. */
function restoredResourceId(identifier: string): string {
  const text = run("aws", [
    "rds",
    "describe-db-instances",
    "--db-instance-identifier",
    identifier,
    "--query",
    "DBInstances[0].[DbiResourceId,DBInstanceStatus]",
    "--output",
    "text",
  ]).trim();
  const [resourceId, status] = text.split(/\s+/);
  if (!resourceId || !status)
    throw new RestoreError(`aws rds describe-db-instances ${identifier}: no instance`);
  if (status !== "available")
    throw new RestoreError(
      `the restored instance ${identifier} is ${status}, not available: wait (aws rds wait db-instance-available --db-instance-identifier ${identifier}), then run this again`,
    );
  return resourceId;
}

export function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      stack: { type: "string" },
      restored: { type: "string" },
      out: { type: "string" },
      "dry-run": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    out(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1 || positionals[0] !== "rds")
    throw new UsageError("say what to restore: rds (the S3 restore is in place: docs/runbooks.md)");
  if (!values.stack) throw new UsageError("--stack is required");
  if (!values.restored) throw new UsageError("--restored <identifier of the restored instance> is required");
  if (!DB_IDENTIFIER.test(values.restored))
    throw new UsageError(`--restored ${values.restored} is not an RDS instance identifier`);
  const stack = values.stack;

  const from = stateIdentifier(stack);
  if (from === values.restored)
    throw new RestoreError(
      `${from} is the identifier the stack already has: restore into a new identifier (docs/runbooks.md), then run this with that one`,
    );
  const resourceId = restoredResourceId(values.restored);
  const dir =
    values.out ??
    `restore-${stack}-${new Date()
      .toISOString()
      .replace(/[-:]/g, "")
      .replace(/\.\d+Z$/, "Z")}`;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const before = path.join(dir, "before.json");
  const after = path.join(dir, "after.json");
  run("pulumi", ["stack", "export", "--stack", stack, "--file", before]);
  const exported = JSON.parse(readFileSync(before, "utf8")) as StackExport;
  const result = pointInstanceAt(exported, { from, to: values.restored, resourceId });
  const problems = importProblems(result.exported, stack);
  if (problems.length > 0)
    throw new RestoreError(`pulumi stack import would refuse the edited state:\n  ${problems.join("\n  ")}`);

  const next = [
    `  pulumi refresh --stack ${stack} --target '${result.urn}'`,
    `  pulumi preview --stack ${stack} --diff   # the instance keeps ${values.restored}; new task definitions (its host), alarms and dashboard follow`,
    `  pulumi up --stack ${stack} --refresh      # also re-enables a paused GC schedule`,
    `  npm run verify -- --stack ${stack}`,
  ].join("\n");
  if (!result.changed) {
    out(
      `the state of ${stack} already has ${values.restored} (${resourceId}) as ${result.urn}: nothing to import. Next:\n${next}\n`,
    );
    return 0;
  }
  writeFileSync(after, `${JSON.stringify(result.exported, null, 4)}\n`, { mode: 0o600 });
  out(
    `${result.urn}\n  id ${result.previousId} (${from}) → ${resourceId} (${values.restored})\n  state before: ${before} (to undo: pulumi stack import --stack ${stack} --file ${before})\n  state after:  ${after}\n`,
  );
  if (values["dry-run"]) {
    out(`--dry-run: nothing imported. To import: pulumi stack import --stack ${stack} --file ${after}\n`);
    return 0;
  }
  run("pulumi", ["stack", "import", "--stack", stack, "--file", after]);
  out(`imported. Next:\n${next}\n`);
  return 0;
}

// Run as a program (npm run restore), not when imported by the tests.
if (require.main === module) {
  try {
    process.exit(main(process.argv.slice(2)));
  } catch (err) {
    if (
      err instanceof UsageError ||
      err instanceof RestoreError ||
      (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")
    ) {
      process.stderr.write(
        `restore: ${(err as Error).message}\n${err instanceof UsageError ? `\n${USAGE}\n` : ""}`,
      );
      process.exit(2);
    }
    throw err;
  }
}
