/**
 * Runs the program the way `pulumi preview` / `pulumi up` do: `node [nodeargs]
 * node_modules/@pulumi/pulumi/cmd/run <flags> .` in a fresh process, with the argv and environment
 * pulumi-language-nodejs builds (pulumi/pulumi sdk/nodejs/cmd/pulumi-language-nodejs/main.go:
 * `constructArguments`, `constructConfig`, `constructConfigSecretKeys`, `parseOptions`, `execRuntime`)
 * and the runtime options of this project's Pulumi.yaml, against an in-process engine and resource
 * monitor speaking the real gRPC protocol (the SDK's generated stubs, @grpc/grpc-js).
 *
 * Not modelled: `--sync` (the language host's pipes for the deprecated synchronous invokes, which
 * this program does not use), `--tracing`, and the debugger attach.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
import { type MonitorOptions, RecordingMonitor } from "./monitor";

const pulumiRequire = createRequire(require.resolve("@pulumi/pulumi/package.json"));
// The same @grpc/grpc-js instance the SDK's generated stubs use.
const grpc = pulumiRequire("@grpc/grpc-js");
const resrpc = pulumiRequire("./proto/resource_grpc_pb");
const engrpc = pulumiRequire("./proto/engine_grpc_pb");
const engproto = pulumiRequire("./proto/engine_pb");
const emptyproto = pulumiRequire("google-protobuf/google/protobuf/empty_pb");

export const ROOT = path.resolve(__dirname, "..", "..", "..");
/** The DIY backends (s3://, file://) always name the organization this (pkg/backend/diy). */
const DIY_ORGANIZATION = "organization";
const PROGRAM_TIMEOUT_MS = 120_000;

/** `runtime.options` of Pulumi.yaml, as pulumi-language-nodejs `parseOptions` reads them. */
export interface NodeRuntimeOptions {
  typescript: boolean;
  tsconfig?: string;
  nodeargs: string[];
}

export function readRuntimeOptions(projectFile = path.join(ROOT, "Pulumi.yaml")): NodeRuntimeOptions {
  const doc = parse(readFileSync(projectFile, "utf8")) as {
    runtime?: string | { options?: Record<string, unknown> };
  };
  const options = (typeof doc.runtime === "object" ? doc.runtime.options : undefined) ?? {};
  const nodeargs = options.nodeargs;
  if (nodeargs !== undefined && typeof nodeargs !== "string")
    throw new Error("nodeargs option must be a string");
  return {
    typescript: options.typescript === undefined ? true : options.typescript === true,
    ...(typeof options.tsconfig === "string" ? { tsconfig: options.tsconfig } : {}),
    // shlex.Split; the project uses no quoting.
    nodeargs: nodeargs ? nodeargs.trim().split(/\s+/) : [],
  };
}

export interface Launch {
  /** Arguments after the node binary. */
  argv: string[];
  /** What the language host adds to its own environment. */
  env: Record<string, string>;
}

/** The command line and environment pulumi-language-nodejs gives `node` for this program. */
export function launchCommand(opts: {
  project: string;
  stack: string;
  preview: boolean;
  config: Record<string, string>;
  secretKeys: string[];
  monitor: string;
  engine: string;
  runtime?: NodeRuntimeOptions;
  /** The program's module, from the repository root (Pulumi.yaml `main`). Default: package.json main. */
  main?: string;
}): Launch {
  const runtime = opts.runtime ?? readRuntimeOptions();
  const runPath = pulumiRequire.resolve("./cmd/run");
  const argv = [
    ...runtime.nodeargs,
    runPath,
    "--monitor",
    opts.monitor,
    "--engine",
    opts.engine,
    "--organization",
    DIY_ORGANIZATION,
    "--project",
    opts.project,
    "--root-directory",
    ROOT,
    "--stack",
    opts.stack,
    "--pwd",
    ROOT,
    ...(opts.preview ? ["--dry-run"] : []),
    // The CLI's default --parallel: GOMAXPROCS * 4 (pkg/cmd/pulumi/operations/up.go).
    "--parallel",
    String(os.availableParallelism() * 4),
    // Pulumi.yaml has no `main`: the engine passes "." and run.ts follows package.json's main.
    opts.main ?? ".",
  ];
  // constructConfig: `<namespace>:<name>` becomes `<namespace>:config:<name>`; values stay the
  // engine's strings (structured values as JSON text).
  const config: Record<string, string> = {};
  for (const [key, value] of Object.entries(opts.config)) {
    const at = key.indexOf(":");
    config[`${key.slice(0, at)}:config:${key.slice(at + 1)}`] = value;
  }
  const env: Record<string, string> = {
    PULUMI_CONFIG: JSON.stringify(config),
    PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(opts.secretKeys),
  };
  if (runtime.typescript) env.PULUMI_NODEJS_TYPESCRIPT = "true";
  if (runtime.tsconfig) env.PULUMI_NODEJS_TSCONFIG_PATH = runtime.tsconfig;
  return { argv, env };
}

export interface EngineRun {
  monitor: RecordingMonitor;
  warnings: string[];
  errors: string[];
  launch: Launch;
  exitCode: number | null;
  /** From the program's process start to its exit. */
  durationMs: number;
  stdout: string;
  stderr: string;
}

/**
 * Starts the engine and monitor on loopback ports, runs the program to its end and returns what it
 * registered. `env` is added to the child's environment (the caller's own, like the CLI's); `main`
 * replaces the project's program (launchCommand).
 */
export async function runThroughEngine(
  monitorOptions: MonitorOptions,
  config: Record<string, string>,
  secretKeys: string[],
  env: Record<string, string> = {},
  main?: string,
): Promise<EngineRun> {
  const monitor = new RecordingMonitor(monitorOptions);
  const warnings: string[] = [];
  const errors: string[] = [];
  let rootResource = "";
  const server = new grpc.Server();
  const unary =
    (fn: (req: unknown, cb: (err: Error | null, res?: unknown) => void) => void) =>
    (call: { request: unknown }, cb: (err: Error | null, res?: unknown) => void) =>
      fn(call.request, cb);
  server.addService(resrpc.ResourceMonitorService, {
    getDeploymentInfo: unary((r, cb) => monitor.getDeploymentInfo(r, cb)),
    supportsFeature: unary((r, cb) => monitor.supportsFeature(r as never, cb)),
    registerResource: unary((r, cb) => monitor.registerResource(r as never, cb)),
    registerResourceOutputs: unary((r, cb) => monitor.registerResourceOutputs(r as never, cb)),
    invoke: unary((r, cb) => monitor.invoke(r as never, cb)),
    readResource: unary((r, cb) => monitor.readResource(r, cb)),
    signalAndWaitForShutdown: unary((r, cb) => monitor.signalAndWaitForShutdown(r, cb)),
  });
  server.addService(engrpc.EngineService, {
    log: unary((r, cb) => {
      const req = r as { getSeverity(): number; getMessage(): string };
      const list =
        req.getSeverity() === engproto.LogSeverity.WARNING
          ? warnings
          : req.getSeverity() === engproto.LogSeverity.ERROR
            ? errors
            : undefined;
      // The engine prints each diagnostic once, however often it is sent.
      if (list && !list.includes(req.getMessage())) list.push(req.getMessage());
      cb(null, new emptyproto.Empty());
    }),
    getRootResource: unary((_r, cb) => {
      const res = new engproto.GetRootResourceResponse();
      res.setUrn(rootResource);
      cb(null, res);
    }),
    setRootResource: unary((r, cb) => {
      rootResource = (r as { getUrn(): string }).getUrn();
      cb(null, new engproto.SetRootResourceResponse());
    }),
  });
  const port: number = await new Promise((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (err: Error | null, p: number) => (err ? reject(err) : resolve(p)),
    ),
  );
  const address = `127.0.0.1:${port}`;
  const launch = launchCommand({
    project: monitorOptions.project,
    stack: monitorOptions.stack,
    preview: monitorOptions.preview,
    config,
    secretKeys,
    monitor: address,
    engine: address,
    ...(main !== undefined ? { main } : {}),
  });
  try {
    const started = performance.now();
    const child = spawn(process.execPath, launch.argv, {
      cwd: ROOT,
      env: { ...process.env, ...env, ...launch.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    // A program that never finishes (an Output that never resolves) must not hang synth.
    const timer = setTimeout(() => child.kill("SIGKILL"), PROGRAM_TIMEOUT_MS);
    const exitCode = await new Promise<number | null>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (code) => resolve(code));
    }).finally(() => clearTimeout(timer));
    if (exitCode === null)
      throw new Error(`the program did not finish within ${PROGRAM_TIMEOUT_MS / 1000} s and was stopped`);
    const durationMs = Math.round(performance.now() - started);
    return { monitor, warnings, errors, launch, exitCode, durationMs, stdout, stderr };
  } finally {
    server.forceShutdown();
  }
}
