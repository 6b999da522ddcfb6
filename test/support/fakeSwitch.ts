/**
 * The RouterOS stand-in (fakeRouteros.ts) as a switch for the tests, two ways:
 * - FakeSwitch: behind a real OpenSSH server, exec requests and the SFTP subsystem going to it as
 *   on a MikroTik switch; tests run the real transport (ssh.ts) against it;
 * - LocalSwitch: the same stand-in in process, each step imported as the transport imports it, for
 *   tests about what the scripts do (no network, milliseconds per apply).
 * Both start from the same switch and read the stand-in's state the same way.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import ts from "typescript";
import {
  applyScript,
  BACKUP_PLACEHOLDER,
  bundle,
  confirmScript,
  doneLine,
  findRouterosError,
  prepareScript,
  type Step,
  type SwitchModel,
  teardownScript,
} from "../../components/mikrotik/routeros";
import { sshWrapperScript } from "../../components/mikrotik/ssh";
import {
  configOf,
  type Config,
  defaultState,
  fireScheduler,
  loadState,
  Router,
  type RouterState,
  saveState,
  SFTP_GATE,
} from "./fakeRouteros";
import { endProcessesWhose } from "./processes";
import { type RunResult, TestSshd } from "./sshd";
import { scaled } from "./timeScale";

export const SFTP_SERVER = "/usr/lib/openssh/sftp-server";

/** The steps `pulumi up`'s apply resource runs. */
export const deploySteps = (model: SwitchModel): Step[] => [
  { name: "prepare", script: prepareScript(model) },
  { name: "apply", script: applyScript(model) },
  { name: "confirm", script: confirmScript(model), newConnection: true },
];

abstract class SwitchState {
  constructor(
    readonly dir: string,
    /** The switch's state (state.json) and file store (files/). */
    public stateDir: string,
    readonly user: string,
  ) {}

  /**
   * A switch as the docs ask for it before the first apply: the default configuration, with the
   * access ports taken out of the default bridge.
   */
  reset(options: { version?: string; group?: string; freePorts?: string[] } = {}): void {
    rmSync(this.stateDir, { recursive: true, force: true });
    const s = defaultState(options.version ?? "7.16.1 (stable)", this.user, options.group ?? "full");
    const free = new Set(options.freePorts ?? ["ether1", "ether2", "ether3", "ether4"]);
    s.menus["interface bridge port"] = s.menus["interface bridge port"]!.filter(
      (p) => !free.has(String(p.props.interface)),
    );
    saveState(this.stateDir, s);
  }

  get state(): RouterState {
    return loadState(this.stateDir);
  }
  get config(): Config {
    return configOf(this.state);
  }
  change(f: (s: RouterState) => void): void {
    const s = this.state;
    f(s);
    saveState(this.stateDir, s);
  }
  /** A router on the current state, to ask it what RouterOS derives (dynamic entries, hw-offload). */
  router(): Router {
    return new Router(this.state, this.stateDir);
  }
  /** The switch's file store (`/file`). */
  files(): string[] {
    return readdirSync(path.join(this.stateDir, "files")).sort();
  }
  fire(name = "attic-infra-rollback"): string[] {
    return fireScheduler(this.stateDir, name);
  }
}

export class FakeSwitch extends SwitchState {
  /** The current scenario's directory: the switch's state, and the test's scratch directories. */
  private scenarioDir = "";

  private constructor(
    dir: string,
    readonly sshd: TestSshd,
  ) {
    super(dir, "", sshd.user);
  }

  static async start(): Promise<FakeSwitch> {
    const dir = mkdtempSync(path.join(tmpdir(), "fake-routeros-"));
    // Compiled once to plain JavaScript: every exec request starts it anew, and stripping types on
    // each start costs more than the request itself.
    const program = path.join(dir, "fakeRouteros.mjs");
    const source = readFileSync(path.join(__dirname, "fakeRouteros.ts"), "utf8");
    writeFileSync(
      program,
      ts.transpileModule(source, {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      }).outputText,
    );
    const gate = path.join(dir, "routeros-shell");
    writeFileSync(
      gate,
      SFTP_GATE(SFTP_SERVER, `env NODE_COMPILE_CACHE=${dir}/cache ${process.execPath} ${program}`),
      { mode: 0o755 },
    );
    // Each deploy opens two connections; the default post-quantum key exchange costs ~150 ms each.
    const sshd = await TestSshd.start({
      forceCommand: gate,
      sftpServer: SFTP_SERVER,
      kexAlgorithms: "curve25519-sha256",
    });
    const sw = new FakeSwitch(dir, sshd);
    sw.reset();
    return sw;
  }

  /**
   * A new scenario on a switch of its own: the previous one ends — its SSH sessions and every local
   * process working in its directory (a killed transport's connection master, agent, upload) are
   * killed, the directory removed — and sessions from now on reach the new switch only.
   */
  override reset(options: Parameters<SwitchState["reset"]>[0] = {}): void {
    const previous = this.scenarioDir;
    // Short: the transport puts Unix sockets (at most 108 bytes of path) in a scratch directory here.
    this.scenarioDir = mkdtempSync(path.join(this.dir, "s-"));
    this.stateDir = path.join(this.scenarioDir, "switch");
    this.sshd.scenario({ env: { ATTIC_TEST_SWITCH: this.stateDir } });
    if (previous) {
      endProcessesWhose((environment) => environment.some((entry) => entry.includes(`${previous}/`)));
      rmSync(previous, { recursive: true, force: true });
    }
    super.reset(options);
  }

  /** A new directory for the current scenario (removed with it). */
  scratch(prefix: string): string {
    return mkdtempSync(path.join(this.scenarioDir, prefix));
  }

  /** The transport with `steps` on stdin, as the Pulumi resources run it. */
  run(steps: string, env: Record<string, string> = {}): RunResult {
    const r = spawnSync("/bin/sh", ["-c", sshWrapperScript()], {
      input: steps,
      encoding: "utf8",
      env: this.env(env),
      timeout: scaled(60).ms,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** The transport's environment, as the Pulumi resources give it. */
  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
      ROUTEROS_HOST: "127.0.0.1",
      ROUTEROS_PORT: String(this.sshd.port),
      ROUTEROS_USER: this.sshd.user,
      ROUTEROS_HOST_KEY: this.sshd.hostPublicKey,
      ROUTEROS_PRIVATE_KEY: readFileSync(path.join(this.sshd.dir, "client_key"), "utf8"),
      ROUTEROS_PASSWORD: "",
      ...extra,
    };
  }

  /** `pulumi up`'s apply resource: prepare → apply → confirm (new connection). */
  deploy(model: SwitchModel, env: Record<string, string> = {}): RunResult {
    return this.run(bundle(deploySteps(model)), env);
  }

  teardown(model: SwitchModel): RunResult {
    return this.run(bundle([{ name: "teardown", script: teardownScript(model) }]));
  }

  /** The end of the file's scenarios: the last one ends as reset() ends one, and the sshd stops. */
  stop(): void {
    this.sshd.stop();
    const last = this.scenarioDir;
    endProcessesWhose((environment) => environment.some((entry) => entry.includes(`${last}/`)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** What a step sequence printed, and the first step that failed with the line that says why. */
export interface LocalRun {
  ok: boolean;
  output: string[];
  failed?: { step: string; line: string };
}

export class LocalSwitch extends SwitchState {
  static create(): LocalSwitch {
    const dir = mkdtempSync(path.join(tmpdir(), "local-routeros-"));
    const sw = new LocalSwitch(dir, path.join(dir, "switch"), "admin");
    sw.reset();
    return sw;
  }

  /** Each step as the transport runs it: uploaded (removing itself first), imported, done line required. */
  run(steps: Step[]): LocalRun {
    const output: string[] = [];
    for (const step of steps) {
      const file = `attic-infra-${step.name}.rsc`;
      const script = step.script.replaceAll(BACKUP_PLACEHOLDER, "attic-infra-20260101-000000");
      writeFileSync(
        path.join(this.stateDir, "files", file),
        `/file remove [find where name="${file}"]\n${script}`,
      );
      const s = this.state;
      const r = new Router(s, this.stateDir, this.user);
      r.runScript(`/import file-name=${file}`);
      saveState(this.stateDir, s);
      output.push(...r.out);
      const bad = findRouterosError(r.out.join("\n"));
      if (bad !== undefined || !r.out.includes(doneLine(step.name)))
        return { ok: false, output, failed: { step: step.name, line: bad ?? "no done line" } };
    }
    return { ok: true, output };
  }

  deploy(model: SwitchModel): LocalRun {
    return this.run(deploySteps(model));
  }

  teardown(model: SwitchModel): LocalRun {
    return this.run([{ name: "teardown", script: teardownScript(model) }]);
  }
}
