/**
 * The RouterOS stand-in (fakeRouteros.ts) behind a real OpenSSH server: exec requests and the SFTP
 * subsystem go to it, as on a MikroTik switch. Tests run the real transport (ssh.ts) against it
 * with a bundle of generated scripts and then read the stand-in's state.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import ts from "typescript";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { sshWrapperScript } from "../../components/mikrotik/ssh";
import {
  applyScript,
  bundle,
  confirmScript,
  prepareScript,
  type SwitchModel,
  teardownScript,
} from "../../components/mikrotik/routeros";
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
import { type RunResult, TestSshd } from "./sshd";

export const SFTP_SERVER = "/usr/lib/openssh/sftp-server";

export class FakeSwitch {
  private constructor(
    readonly dir: string,
    readonly stateDir: string,
    readonly sshd: TestSshd,
  ) {}

  static async start(): Promise<FakeSwitch> {
    const dir = mkdtempSync(path.join(tmpdir(), "fake-routeros-"));
    const stateDir = path.join(dir, "switch");
    mkdirSync(stateDir);
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
      SFTP_GATE(stateDir, SFTP_SERVER, `env NODE_COMPILE_CACHE=${dir}/cache ${process.execPath} ${program}`),
      { mode: 0o755 },
    );
    // Each deploy opens two connections; the default post-quantum key exchange costs ~150 ms each.
    const sshd = await TestSshd.start({
      forceCommand: gate,
      sftpServer: SFTP_SERVER,
      kexAlgorithms: "curve25519-sha256",
    });
    const sw = new FakeSwitch(dir, stateDir, sshd);
    sw.reset();
    return sw;
  }

  /**
   * A switch as the docs ask for it before the first apply: the default configuration, with the
   * access ports taken out of the default bridge.
   */
  reset(options: { version?: string; group?: string; freePorts?: string[] } = {}): void {
    rmSync(this.stateDir, { recursive: true, force: true });
    const s = defaultState(options.version ?? "7.16.1 (stable)", this.sshd.user, options.group ?? "full");
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

  /** The transport with `steps` on stdin, as the Pulumi resources run it. */
  run(steps: string, env: Record<string, string> = {}): RunResult {
    const r = spawnSync("/bin/sh", ["-c", sshWrapperScript()], {
      input: steps,
      encoding: "utf8",
      env: this.env(env),
      timeout: 60_000,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** The transport's environment, as the Pulumi resources give it. */
  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
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
    return this.run(
      bundle([
        { name: "prepare", script: prepareScript(model) },
        { name: "apply", script: applyScript(model) },
        { name: "confirm", script: confirmScript(model), newConnection: true },
      ]),
      env,
    );
  }

  teardown(model: SwitchModel): RunResult {
    return this.run(bundle([{ name: "teardown", script: teardownScript(model) }]));
  }

  stop(): void {
    this.sshd.stop();
  }
}
