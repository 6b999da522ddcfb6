/**
 * Runs the NixOS host deployer's resources against a FakeNixosHost over real SSH, the way Pulumi
 * runs them: the deploy resource is a local.Command whose create (driver.ts) runs under
 * `/bin/sh -c` with the connection in its environment and the environment file on stdin; a retry
 * is the same create run again (Pulumi re-runs a failed create, or a replaced one with new
 * triggers). The teardown is the holder's delete, one SSH session.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { driverScript } from "../../components/nixosHost/driver";
import { deployId } from "../../components/nixosHost/host";
import {
  asRoot,
  confirmScript,
  type DeployOptions,
  type DeployTimes,
  deployScript,
} from "../../components/nixosHost/scripts";
import { afterAll, afterEach, beforeAll, beforeEach } from "vitest";
import { FakeNixosHost, type HostState } from "./fakeNixosHost";
import type { NixosSite } from "./nixosSites";
import { type RunResult, TestSshd } from "./sshd";
import { scaled } from "./timeScale";

export const SECRET = "SYNTHSECRET-nixos-signing-key-0f1e2d3c";
export const ENV = `ATTIC_SERVER_TOKEN_RS256_SECRET_BASE64=${Buffer.from(SECRET).toString("base64")}\n`;
/**
 * The deploy's budget on the fake host, on the time scale. The window is long: the fake's timers
 * never elapse by themselves (the tests fire them), and it must outlast any scenario.
 */
export const TIMES: DeployTimes = {
  buildSeconds: scaled(60).seconds,
  activationSeconds: scaled(20).seconds,
  healthSeconds: scaled(1).seconds,
  windowSeconds: scaled(600).seconds,
};

/** A module for atticd `version` (the fake applies migrations m1..m<version>), with fake markers. */
export function atticdModule(version: number, marker = ""): string {
  return `{ ... }: { services.atticd.enable = true; } # atticd-version: ${version} ${marker}\n`;
}

/** A host that runs a confirmed atticd 1 (AT_V1) or 2 (AT_V2), nothing pending. */
export const AT_V1: Partial<HostState> = {
  running: "v1",
  bootDefault: "v1",
  liveModule: "v1",
  db: "m1",
  atticd: "ok",
  pending: undefined,
  timerArmed: false,
};
export const AT_V2: Partial<HostState> = {
  ...AT_V1,
  running: "v2",
  bootDefault: "v2",
  liveModule: "v2",
  db: "m1,m2",
};

export interface RigOptions {
  /** `<dir>#<host>`: the host is a flake host. */
  flake?: string;
  /** The environment file every deploy sends (default ENV). */
  env?: string;
  /**
   * A test file's shared sshd (default: the rig starts and stops its own). The rig makes its host
   * the sshd's scenario (TestSshd.scenario): sessions of earlier rigs never reach it.
   */
  sshd?: TestSshd;
}

export class DeployRig {
  readonly env: string;
  /** The driver's TMPDIR: its work directory (agent socket, known_hosts) goes in here. */
  readonly tmp = mkdtempSync(path.join(tmpdir(), "driver-tmp-"));
  /** Drivers started in the background, each the leader of its process group. */
  private readonly background: ChildProcess[] = [];

  private constructor(
    readonly host: FakeNixosHost,
    readonly sshd: TestSshd,
    private readonly ownSshd: boolean,
    private readonly flake?: string,
    env?: string,
  ) {
    this.env = env ?? ENV;
  }

  static async start(host: FakeNixosHost, options: RigOptions = {}): Promise<DeployRig> {
    const shared = options.sshd;
    if (shared) shared.scenario({ binDir: host.binDir });
    const sshd = shared ?? (await startRigSshd(host.binDir));
    return new DeployRig(host, sshd, !shared, options.flake, options.env);
  }

  /**
   * The end of the scenario: nothing it started keeps running — its background drivers (with
   * their ssh and agent), its SSH sessions, its host's units — and its directories are removed.
   */
  stop(): void {
    for (const child of this.background) {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    if (this.ownSshd) this.sshd.stop();
    else this.sshd.scenario({});
    this.host.close();
    rmSync(this.tmp, { recursive: true, force: true });
  }

  options(module: string, env = this.env): DeployOptions {
    return {
      paths: this.host.paths,
      ...(this.flake ? { flake: this.flake } : {}),
      deployId: deployId(module, env),
      module,
      service: this.host.service,
      times: TIMES,
    };
  }

  driver(module: string, env = this.env): string {
    const o = this.options(module, env);
    return driverScript({
      deployId: o.deployId,
      deploy: asRoot(deployScript(o)),
      confirm: asRoot(confirmScript(o)),
      windowSeconds: o.times.windowSeconds,
    });
  }

  /** The local.Command's environment: the connection, host key pinned. */
  private commandEnv(extraPath?: string): NodeJS.ProcessEnv {
    return {
      PATH: extraPath ? `${extraPath}:${process.env.PATH}` : process.env.PATH,
      HOME: process.env.HOME,
      TMPDIR: this.tmp,
      NIXOS_HOST: "127.0.0.1",
      NIXOS_PORT: String(this.sshd.port),
      NIXOS_USER: this.sshd.user,
      NIXOS_HOST_KEY: this.sshd.hostPublicKey,
      NIXOS_PRIVATE_KEY: readFileSync(path.join(this.sshd.dir, "client_key"), "utf8"),
    };
  }

  /** `pulumi up` creating (or re-creating) the deploy resource. */
  deploy(module: string, options: { env?: string; path?: string } = {}): RunResult {
    const r = spawnSync("/bin/sh", ["-c", this.driver(module, options.env)], {
      env: this.commandEnv(options.path),
      input: options.env ?? this.env,
      encoding: "utf8",
      timeout: scaled(120).ms,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** The same, in the background (its own process group: the test can kill it and its ssh). */
  deployInBackground(module: string): ChildProcess {
    const child = spawn("/bin/sh", ["-c", this.driver(module)], {
      env: this.commandEnv(),
      stdio: ["pipe", "ignore", "ignore"],
      detached: true,
    });
    child.stdin!.end(this.env);
    this.background.push(child);
    return child;
  }

  /**
   * The starting point of a scenario, quickly: a confirmed deploy of `module`, its deploy and confirm
   * scripts run on the host directly (as the SSH sessions would run them, minus the connections).
   */
  seed(module: string): void {
    const o = this.options(module);
    const env = { PATH: `${this.host.binDir}:${process.env.PATH}` };
    for (const [script, input] of [
      [deployScript(o), this.env],
      [confirmScript(o), ""],
    ] as const) {
      const r = spawnSync("/bin/sh", ["-c", script], { env, input, encoding: "utf8" });
      if (r.status !== 0) throw new Error(`seeding ${o.deployId} failed: ${r.stderr}`);
    }
  }

  /** Only the first session of a deploy: armed and activated, never confirmed (cut off). */
  deployWithoutConfirm(module: string): RunResult {
    return this.sshd.run(asRoot(deployScript(this.options(module))), this.env);
  }

  confirm(module: string): RunResult {
    return this.sshd.run(asRoot(confirmScript(this.options(module))));
  }

  run(script: string, stdin = ""): RunResult {
    return this.sshd.run(asRoot(script), stdin);
  }
}

/**
 * An sshd for rigs (one per test file: starting one per scenario costs its keys and start-up);
 * `binDir`: the first scenario's stand-ins.
 */
export function startRigSshd(binDir?: string): Promise<TestSshd> {
  // The deploy's own ssh does not choose a key exchange: offer only the cheap one.
  return TestSshd.start({ ...(binDir ? { binDir } : {}), kexAlgorithms: "curve25519-sha256" });
}

/**
 * For a test file: one sshd (started before its tests, stopped after them), and `useRig(site)`,
 * which gives each test of the calling describe a new fake host adapted to `site` on that sshd.
 */
export function sharedSshdRigs(): (site: NixosSite) => { rig: DeployRig } {
  let sshd: TestSshd;
  beforeAll(async () => {
    sshd = await startRigSshd();
  });
  afterAll(() => sshd.stop());
  return (site) => {
    const t = { rig: undefined as unknown as DeployRig };
    beforeEach(async () => {
      const host = await FakeNixosHost.create();
      site.adapt(host);
      t.rig = await DeployRig.start(host, { sshd, env: site.env });
    });
    afterEach(() => t.rig.stop());
    return t;
  };
}
