/**
 * npm run cost -- --stack <name>              prices Pulumi.<name>.yaml's stack
 * npm run cost -- --config <stack yaml>
 *   [--markdown]                                a Markdown table (job summary, docs/aws.md)
 *   [--lcu 1] [--s3-gb 100] [--s3-put-k 150] [--s3-get-k 1000] [--log-gb 1] [--alb-log-gb 1]
 *   [--gc-minutes 5] [--gb-out 0] [--nat-gb 2] [--free-dashboards 3]   usage assumptions
 *
 * Synthesizes the stack offline (ci/commands/synth) and prints an itemized monthly estimate of what it
 * creates. Exit status: 0 printed; 2 invalid configuration; 1 anything else.
 */
import * as path from "node:path";
import { parseArgs } from "node:util";
import { ConfigError } from "../../../config/load";
import { RDS_POSTGRES_VERSIONS } from "../../../config/schema";
import { synth } from "../synth/harness";
import { readProjectName, readStackFile, stackFileFor } from "../synth/stackFile";
import {
  ASSUMPTION_FLAGS,
  ASSUMPTION_HELP,
  type Assumptions,
  DEFAULT_ASSUMPTIONS,
  estimate,
  renderMarkdown,
  renderText,
} from "./estimate";

const ROOT = path.resolve(__dirname, "..", "..", "..");
const USAGE = `usage: npm run cost -- (--stack <name> | --config <stack yaml>) [--markdown] [assumption flags]

Assumption flags (default), usage the program cannot know:
${(Object.keys(ASSUMPTION_FLAGS) as Array<keyof Assumptions>)
  .map((k) => `  --${ASSUMPTION_FLAGS[k]} ${DEFAULT_ASSUMPTIONS[k]}`.padEnd(26) + ASSUMPTION_HELP[k])
  .join("\n")}`;

interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/** The command, without process globals: exit status, and output through `io`. */
export async function costCommand(argv: string[], io: Io): Promise<number> {
  const numeric = Object.fromEntries(
    Object.values(ASSUMPTION_FLAGS).map((f) => [f, { type: "string" as const }]),
  );
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        stack: { type: "string" },
        config: { type: "string" },
        markdown: { type: "boolean" },
        help: { type: "boolean", short: "h" },
        ...numeric,
      },
      strict: true,
    });
  } catch (err) {
    io.stderr(`${(err as Error).message}\n\n${USAGE}\n`);
    return 1;
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) {
    io.stdout(`${USAGE}\n`);
    return 0;
  }
  const stackName = values.stack as string | undefined;
  const configFile = values.config as string | undefined;
  if ((stackName === undefined) === (configFile === undefined)) {
    io.stderr(`give exactly one of --stack or --config\n\n${USAGE}\n`);
    return 1;
  }
  const assumptions: Partial<Assumptions> = {};
  for (const [key, flag] of Object.entries(ASSUMPTION_FLAGS) as Array<[keyof Assumptions, string]>) {
    const raw = values[flag];
    if (raw === undefined) continue;
    const n = Number(raw);
    if (typeof raw !== "string" || raw.trim() === "" || !Number.isFinite(n) || n < 0) {
      io.stderr(`--${flag}: ${JSON.stringify(raw)} is not a non-negative number\n`);
      return 1;
    }
    assumptions[key] = n;
  }

  const target = stackFileFor(ROOT, stackName, configFile);
  if ("error" in target) {
    io.stderr(`${target.error}\n`);
    return 1;
  }
  const { file, stack } = target;
  const project = readProjectName(path.join(ROOT, "Pulumi.yaml"));
  const { config, secretKeys } = readStackFile(file, project);
  let result;
  try {
    result = await synth({ stack, project, config, secretKeys });
  } catch (err) {
    if (err instanceof ConfigError) {
      io.stderr(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const e = estimate(result.resources, {
    stack,
    region: config["aws:region"] ?? "us-east-1",
    assumptions,
    calendar: RDS_POSTGRES_VERSIONS,
    today: new Date(),
  });
  if (e.lines.length === 0) {
    io.stdout(`stack ${stack} creates nothing AWS bills for.\n`);
    return 0;
  }
  io.stdout(`${values.markdown ? renderMarkdown(e) : renderText(e)}\n`);
  if (!values.markdown) for (const w of e.warnings) io.stderr(`warning: ${w}\n`);
  return 0;
}

if (require.main === module) {
  costCommand(process.argv.slice(2), {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
  }).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`cost failed: ${(err as Error).stack ?? err}\n`);
      process.exit(1);
    },
  );
}
