/**
 * npm run bench -- [--figures <list>] [--runs <n>] [--json] [--compare <earlier.json>] [--root <checkout>]
 *
 * How long the program and the tests take, as medians over fresh processes, each beside a baseline
 * measured in the same run: a Node process that only loads the SDKs the program loads. The ratios,
 * not the milliseconds, are what compare across machines, loads and commits. The suite itself asserts
 * no time (test/support/timeScale.ts); this is where times are looked at.
 *
 * Exit status: 0 measured; 1 a measured command failed (its last output on stderr); 2 bad usage.
 */
import { type SpawnOptions, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { type BenchReport, formatComparison, formatReport, type Samples, summarize } from "./report";

const ROOT = path.resolve(__dirname, "..", "..", "..");
const SDKS = ["@pulumi/pulumi", "@pulumi/aws", "@pulumi/command", "@pulumi/random", "@pulumi/tls"];

interface FigureSpec {
  name: string;
  /** The package.json script run (as npm runs it, without npm). */
  script: "synth" | "test";
  /** Its arguments, given a fresh directory for its output. */
  args: (out: string) => string[];
}

const synthOf = (stack: string): FigureSpec => ({
  name: `synth ${stack}`,
  script: "synth",
  args: (out) => ["--stack", stack, "--out", out],
});

const FIGURES: Record<string, FigureSpec[]> = {
  preview: [
    {
      name: "preview dev (cold)",
      script: "synth",
      args: (out) => ["--stack", "dev", "--preview", "--out", out],
    },
  ],
  synth: ["dev", "office", "vps"].map(synthOf),
  "synth:dev": [synthOf("dev")],
  "synth:office": [synthOf("office")],
  "synth:vps": [synthOf("vps")],
  suite: [{ name: "npm test", script: "test", args: () => [] }],
};

const USAGE = `usage: npm run bench -- [--figures <list>] [--runs <n>] [--json] [--compare <earlier.json>] [--root <checkout>]

Runs each figure --runs times (default 3) in a fresh process with empty caches, and a baseline (node
loading ${SDKS.join(", ")}) in every round; prints medians of wall and CPU time
(CPU: all the figure's processes, user + system; Linux only) and each as a ratio to the baseline's.
  --figures   comma-separated, default preview,synth:
                preview  npm run synth -- --stack dev --preview (a cold first preview)
                synth    npm run synth -- --stack <s> for dev, office and vps (or synth:dev, synth:office, synth:vps)
                suite    npm test (minutes per run)
  --json      print the report as JSON (to keep, and to --compare later)
  --compare   print this run's ratios beside those of an earlier --json report
  --root      measure another checkout (with its node_modules) instead of this one, e.g. a worktree
              of the commit to compare with`;

class UsageError extends Error {}

interface Options {
  figures: FigureSpec[];
  runs: number;
  json: boolean;
  compare?: BenchReport;
  root: string;
}

function parse(argv: string[]): Options | "help" {
  // A parseArgs error (unknown flag) is a usage error too: main() reports every error of parse() so.
  const { values } = parseArgs({
    args: argv,
    options: {
      figures: { type: "string", default: "preview,synth" },
      runs: { type: "string", default: "3" },
      json: { type: "boolean", default: false },
      compare: { type: "string" },
      root: { type: "string" },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) return "help";
  const figures = values.figures
    .split(",")
    .filter(Boolean)
    .flatMap((f) => {
      const spec = FIGURES[f];
      if (!spec) throw new UsageError(`--figures: ${f} is not one of ${Object.keys(FIGURES).join(", ")}`);
      return spec;
    });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1)
    throw new UsageError(`--runs ${values.runs}: not a whole number ≥ 1`);
  const root = path.resolve(values.root ?? ROOT);
  if (!existsSync(path.join(root, "package.json")) || !existsSync(path.join(root, "node_modules")))
    throw new UsageError(`--root ${root}: no package.json with node_modules there (run npm ci in it first)`);
  let compare: BenchReport | undefined;
  if (values.compare !== undefined) {
    try {
      compare = JSON.parse(readFileSync(values.compare, "utf8")) as BenchReport;
    } catch (err) {
      throw new UsageError(`--compare ${values.compare}: ${(err as Error).message}`);
    }
    if (!Array.isArray(compare.figures))
      throw new UsageError(`--compare ${values.compare}: not a --json report`);
  }
  return {
    figures: [...new Map(figures.map((f) => [f.name, f])).values()],
    runs,
    json: values.json,
    root,
    compare,
  };
}

/** CPU time of this process's finished children so far (cutime + cstime), or undefined off Linux. */
const ticksPerSecond = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout) || 100;
function childrenCpuMs(): number | undefined {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 16 and 17 of proc(5), counted from `state` (field 3).
    return ((Number(fields[13]) + Number(fields[14])) * 1000) / ticksPerSecond;
  } catch {
    return undefined;
  }
}

/** Runs one command to its end; its wall time and the CPU time of all its processes. */
async function measure(
  label: string,
  command: string,
  args: string[],
  options: SpawnOptions,
): Promise<{ wallMs: number; cpuMs?: number }> {
  const cpuBefore = childrenCpuMs();
  const started = performance.now();
  const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  child.stderr!.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  });
  const wallMs = performance.now() - started;
  const cpuAfter = childrenCpuMs();
  if (code !== 0) throw new Error(`${label} failed (exit ${code}); its last output:\n${output.slice(-4000)}`);
  return {
    wallMs,
    ...(cpuBefore !== undefined && cpuAfter !== undefined ? { cpuMs: cpuAfter - cpuBefore } : {}),
  };
}

function commitOf(root: string): string | undefined {
  const head = spawnSync("git", ["-C", root, "rev-parse", "--short", "HEAD"], { encoding: "utf8" });
  if (head.status !== 0) return undefined;
  const dirty = spawnSync("git", ["-C", root, "status", "--porcelain"], { encoding: "utf8" }).stdout.trim();
  return `${head.stdout.trim()}${dirty ? "+changes" : ""}`;
}

export async function bench(o: Options, progress: (line: string) => void): Promise<BenchReport> {
  const scripts =
    (
      JSON.parse(readFileSync(path.join(o.root, "package.json"), "utf8")) as {
        scripts?: Record<string, string>;
      }
    ).scripts ?? {};
  const load = loadavg()[0]!;
  const work = mkdtempSync(path.join(tmpdir(), "attic-infra-bench-"));
  const baseline: Samples = { name: "baseline (node loads the SDKs)", wallMs: [], cpuMs: [] };
  const samples: Samples[] = o.figures.map((f) => ({ name: f.name, wallMs: [], cpuMs: [] }));
  const record = (s: Samples, m: { wallMs: number; cpuMs?: number }) => {
    s.wallMs.push(Math.round(m.wallMs));
    if (m.cpuMs !== undefined) s.cpuMs.push(Math.round(m.cpuMs));
    progress(`${s.name}: ${(m.wallMs / 1000).toFixed(1)} s`);
  };
  try {
    for (let round = 1; round <= o.runs; round++) {
      progress(`round ${round} of ${o.runs}`);
      // Every process starts cold: its own TMPDIR (tsx's and ts-node's caches live there).
      const env = (dir: string): NodeJS.ProcessEnv => ({
        ...process.env,
        TMPDIR: dir,
        PATH: `${path.join(o.root, "node_modules", ".bin")}:${process.env.PATH}`,
      });
      const fresh = () => mkdtempSync(path.join(work, "run-"));
      const base = fresh();
      record(
        baseline,
        await measure(
          baseline.name,
          process.execPath,
          ["-e", `for (const m of ${JSON.stringify(SDKS)}) require(m);`],
          { cwd: o.root, env: env(base) },
        ),
      );
      for (const [i, f] of o.figures.entries()) {
        const script = scripts[f.script];
        if (!script) throw new UsageError(`${o.root}/package.json has no "${f.script}" script`);
        const dir = fresh();
        // As npm runs a script: sh -c, node_modules/.bin on PATH, the arguments appended.
        record(
          samples[i]!,
          await measure(f.name, "/bin/sh", ["-c", `${script} "$@"`, "sh", ...f.args(path.join(dir, "out"))], {
            cwd: o.root,
            env: env(dir),
          }),
        );
        rmSync(dir, { recursive: true, force: true });
      }
      rmSync(base, { recursive: true, force: true });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const commit = commitOf(o.root);
  return {
    ...(commit ? { commit } : {}),
    node: process.version,
    cpus: availableParallelism(),
    load,
    runs: o.runs,
    figures: summarize(baseline, samples),
  };
}

export async function main(
  argv: string[],
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<number> {
  let o: Options | "help";
  try {
    o = parse(argv);
  } catch (e) {
    err(`${(e as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (o === "help") {
    out(`${USAGE}\n`);
    return 0;
  }
  let report: BenchReport;
  try {
    report = await bench(o, (line) => err(`bench: ${line}\n`));
  } catch (e) {
    err(`${(e as Error).message}\n`);
    return e instanceof UsageError ? 2 : 1;
  }
  out(o.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  // With --json, stdout stays one JSON document.
  if (o.compare) (o.json ? err : out)(`\n${formatComparison(o.compare, report)}`);
  return 0;
}

// Run as a program (npm run bench), not when imported by the tests.
if (require.main === module) {
  void main(
    process.argv.slice(2),
    (s) => process.stdout.write(s),
    (s) => process.stderr.write(s),
  ).then((code) => process.exit(code));
}
