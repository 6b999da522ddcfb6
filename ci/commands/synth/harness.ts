/**
 * Offline synth: runs the real program (index.ts) against a recording engine — no Pulumi CLI, no
 * cloud credentials — and captures what it would deploy: every resource with its inputs and
 * options, the stack outputs, and every generated file.
 *
 * Two transports, one recording monitor (monitor.ts), identical results:
 * - `via: "engine"` (what `npm run synth` uses): a fresh `node @pulumi/pulumi/cmd/run` process
 *   started exactly as pulumi-language-nodejs starts it, talking gRPC to an in-process engine
 *   (engine.ts). Same module loading (ts-node with the Pulumi.yaml runtime options), config
 *   decoding (PULUMI_CONFIG), URNs, resource options and dynamic-provider serialization as
 *   `pulumi preview`. Costs a process start (≈ 3 s).
 * - `via: "in-process"` (the default, for the test suite's many variants): the program runs in
 *   this process with the monitor in the SDK's monitor slot; after the first run a synth takes a
 *   fraction of a second. test/synth.test.ts proves both give the same resources, outputs and files.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import { SYNTH_ARTIFACTS_ENV } from "../../../components/artifactsSink";
import { loadConfig } from "../../../config/load";
import { type Launch, ROOT, runThroughEngine } from "./engine";
import { type MonitorOptions, RecordingMonitor, SECRET_PLACEHOLDER, type SynthResource } from "./monitor";
import { ProviderInputError } from "./providerInputs";

export { type ResourceOptions, SECRET_PLACEHOLDER, type SynthResource, UNKNOWN_PLACEHOLDER } from "./monitor";
export { ProviderInputError } from "./providerInputs";

export interface SynthResult {
  resources: SynthResource[];
  outputs: Record<string, unknown>;
  /** Relative path → content. */
  files: Record<string, string>;
  /** Files a deployment writes whose content is known only after deploy (previews). */
  unknownFiles: string[];
  /** Each warning the program logged, once. */
  warnings: string[];
  /** How the program was started (via: "engine"). */
  launch?: Launch;
  /** The program process's lifetime, start to exit (via: "engine"). */
  durationMs?: number;
}

export interface SynthOptions {
  stack: string;
  project?: string;
  /** Pulumi's config map: `namespace:key` → value text (JSON for structured values). */
  config: Record<string, string>;
  /** Config keys whose values are secret (from `secure:` values). */
  secretKeys?: string[];
  showSecrets?: boolean;
  /** Answer as a create-preview: computed outputs stay unknown. */
  preview?: boolean;
  via?: "engine" | "in-process";
  /** Extra environment for the program's process (via: "engine"). */
  env?: Record<string, string>;
  /**
   * Another program than the project's (package.json main: index.ts), for tests of the synth
   * itself: a module exporting the program as index.ts does (`export =`), by its path from the
   * repository root, as Pulumi.yaml's `main` names it; or, in-process only, the program function.
   */
  program?: string | Program;
}

export { securePlaceholder } from "./stackFile";

/**
 * Runs the program once. Config problems throw ConfigError before anything runs: the harness
 * validates first, exactly as the program itself does on its first line. Inputs a provider would
 * reject throw ProviderInputError, listing every one, once the program is done (providerInputs.ts).
 */
export async function synth(options: SynthOptions): Promise<SynthResult> {
  const { warnings } = loadConfig(options.config);
  const monitorOptions: MonitorOptions = {
    project: options.project ?? "attic-infra",
    stack: options.stack,
    preview: options.preview ?? false,
    showSecrets: options.showSecrets ?? false,
    region: options.config["aws:region"] ?? "us-east-1",
  };
  return options.via === "engine"
    ? synthThroughEngine(monitorOptions, options)
    : synthInProcess(monitorOptions, options, warnings);
}

async function synthThroughEngine(
  monitorOptions: MonitorOptions,
  options: SynthOptions,
): Promise<SynthResult> {
  const dir = mkdtempSync(path.join(tmpdir(), "attic-infra-synth-"));
  const sink = path.join(dir, "artifacts.jsonl");
  try {
    if (typeof options.program === "function")
      throw new Error("synth: through the engine, the program must be a module path");
    const run = await runThroughEngine(
      monitorOptions,
      options.config,
      options.secretKeys ?? [],
      {
        ...options.env,
        [SYNTH_ARTIFACTS_ENV]: sink,
        // ts-node's compile cache would otherwise live in the shared temp directory for good.
        TS_NODE_CACHE_DIRECTORY: path.join(dir, "ts-node"),
      },
      options.program,
    );
    if (run.exitCode !== 0) {
      const detail = run.errors.length > 0 ? run.errors.join("\n") : run.stderr.trim();
      throw new Error(`the program failed (exit ${run.exitCode}):\n${detail}`);
    }
    if (run.monitor.problems.length > 0) throw new ProviderInputError(run.monitor.problems.sort());
    const files: Record<string, string> = {};
    const declared: string[] = [];
    let text = "";
    try {
      text = readFileSync(sink, "utf8");
    } catch {
      // The program recorded no artifact.
    }
    for (const line of text.split("\n").filter(Boolean)) {
      const a = JSON.parse(line) as { path: string; content?: string; secret?: boolean };
      if (a.content === undefined) declared.push(a.path);
      else files[a.path] = a.secret && !monitorOptions.showSecrets ? SECRET_PLACEHOLDER : a.content;
    }
    return {
      resources: run.monitor.resources,
      outputs: run.monitor.outputs,
      // In recording order, as the in-process transport gives them.
      files: Object.fromEntries(declared.filter((p) => p in files).map((p) => [p, files[p]!])),
      unknownFiles: declared.filter((p) => !(p in files)),
      warnings: run.warnings,
      launch: run.launch,
      durationMs: run.durationMs,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

type Program = () => Promise<Record<string, unknown> | void>;
let program: Program | undefined;

async function loadProgram(other?: string | Program): Promise<Program> {
  if (typeof other === "function") return other;
  // index.ts is CommonJS (`export = main`): depending on the loader it arrives as the function
  // itself or as the default export of a namespace.
  const load = async (mod: Program | { default: Program }) => (typeof mod === "function" ? mod : mod.default);
  if (other !== undefined) return load(await import(path.resolve(ROOT, other)));
  program ??= await load((await import("../../../index")) as unknown as Program | { default: Program });
  return program;
}

interface SdkInternals {
  settings: {
    setMockOptions(monitor: unknown, project: string, stack: string, preview: boolean, org: string): void;
    awaitFeatureSupport(): Promise<void>;
    waitForRPCs(): Promise<void>;
  };
  state: { getStore(): { settings: { options: Record<string, unknown> } } };
  stack: { runInPulumiStack(init: () => Promise<unknown>): Promise<unknown> };
}
/** Loaded on first use: the engine transport (the command line) needs none of the SDK here. */
const sdk = (): SdkInternals => ({
  settings: require("@pulumi/pulumi/runtime/settings"),
  state: require("@pulumi/pulumi/runtime/state"),
  stack: require("@pulumi/pulumi/runtime/stack"),
});

async function synthInProcess(
  monitorOptions: MonitorOptions,
  options: SynthOptions,
  warnings: string[],
): Promise<SynthResult> {
  const pulumi = await import("@pulumi/pulumi");
  const { clearArtifacts, recordedArtifacts } = await import("../../../components/artifacts");
  const { settings, state, stack } = sdk();
  const monitor = new RecordingMonitor(monitorOptions);
  settings.setMockOptions(
    monitor,
    monitorOptions.project,
    monitorOptions.stack,
    monitorOptions.preview,
    "organization",
  );
  await settings.awaitFeatureSupport();
  pulumi.runtime.setAllConfig(options.config, options.secretKeys ?? []);
  // A dynamic provider's closure is serialized asynchronously, and only once per process when
  // cached: the cache would make a second run in the same process register that resource earlier.
  state.getStore().settings.options.cacheDynamicProviders = false;
  clearArtifacts();

  const main = await loadProgram(options.program);
  // As cmd/run does: the program runs inside the root stack component, which registers its outputs.
  await runReportingOnce(async () => {
    await stack.runInPulumiStack(main);
    await settings.waitForRPCs();
  });

  if (monitor.problems.length > 0) throw new ProviderInputError(monitor.problems.sort());

  const files: Record<string, string> = {};
  const unknownFiles: string[] = [];
  for (const [file, content] of recordedArtifacts()) {
    const o = content as pulumi.Output<string> & { promise(): Promise<string>; isKnown: Promise<boolean> };
    const [text, known, secret] = await Promise.all([o.promise(), o.isKnown, pulumi.isSecret(o)]);
    if (!known) unknownFiles.push(file);
    else files[file] = secret && !monitorOptions.showSecrets ? SECRET_PLACEHOLDER : text;
  }
  return { resources: monitor.resources, outputs: monitor.outputs, files, unknownFiles, warnings };
}

/**
 * Runs the program so that its failure is reported once, as cmd/run reports it. When the program
 * throws (a RunError from a check that needs AWS, say), the SDK rejects the root stack's outputs and
 * also leaves internal copies of that rejection unhandled; cmd/run's process handler prints the
 * error once and exits. Here the error is thrown to the caller, and only rejections carrying that
 * same error are swallowed: any other unhandled rejection still reaches the listeners that were
 * installed before (the test runner's).
 */
async function runReportingOnce(run: () => Promise<void>): Promise<void> {
  const before = process.listeners("unhandledRejection");
  let failure: unknown;
  let seen = false;
  const onRejection = (reason: unknown, promise: Promise<unknown>) => {
    if (seen && reason === failure) return;
    for (const listener of before) listener(reason, promise);
  };
  process.removeAllListeners("unhandledRejection");
  process.on("unhandledRejection", onRejection);
  try {
    await run();
  } catch (err) {
    failure = err;
    seen = true;
  } finally {
    // Unhandled rejections are reported after the microtask queue drains.
    await new Promise((resolve) => setTimeout(resolve, 10));
    process.off("unhandledRejection", onRejection);
    for (const listener of before) process.on("unhandledRejection", listener);
  }
  if (seen) throw failure;
}
