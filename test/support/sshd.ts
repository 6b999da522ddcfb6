/**
 * A real OpenSSH server on 127.0.0.1 for the tests, with its own host and client keys, whose PATH
 * starts with a directory of stand-ins (recording `nixos-rebuild`, `systemctl`, ...) or whose every
 * command goes through a stand-in shell (ForceCommand). Commands reach it with the real `ssh`
 * client, as the deploy's remote.Command does: one exec request per step, stdin piped, host key
 * checked against a pinned known_hosts entry.
 *
 * Sessions get an empty HOME of the server's own: none of this machine's dotfiles run in them.
 *
 * Scenarios: one server serves a test file's scenarios one after the other, each with its own
 * host or switch (`scenario()`). What a session sees of its scenario (PATH, ATTIC_TEST_* variables)
 * is bound when it authenticates — the client key's `environment=` options in authorized_keys
 * (sshd(8), AUTHORIZED_KEYS FILE FORMAT; allowed by PermitUserEnvironment) — so a session that
 * outlives its scenario (its client was killed mid-deploy) keeps acting on its own host, never on
 * the next one's. Every process of a scenario's sessions carries ATTIC_TEST_SCENARIO=<id>; the
 * next scenario and stop() kill them all, so nothing of one scenario runs into another.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createServer, Socket } from "node:net";
import { tmpdir, userInfo } from "node:os";
import * as path from "node:path";
import { endProcessesWhose } from "./processes";
import { scaled, waitFor } from "./timeScale";

/** What the sessions of one scenario see. */
export interface Scenario {
  /** Prepended to PATH. */
  binDir?: string;
  /** More variables; names start with ATTIC_TEST_ (the only ones PermitUserEnvironment lets through). */
  env?: Record<string, string>;
}

const SCENARIO_VARIABLE = "ATTIC_TEST_SCENARIO";

export interface SshdOptions {
  /** Prepended to PATH for the sessions of the first scenario (until `scenario()` binds another). */
  binDir?: string;
  /** Extra environment for every session of every scenario (SetEnv; not PATH). */
  env?: Record<string, string>;
  /** Run every session's command through this program (it sees SSH_ORIGINAL_COMMAND). */
  forceCommand?: string;
  /** Serve the SFTP subsystem with this sftp-server (under a forceCommand, it sees it as SSH_ORIGINAL_COMMAND). */
  sftpServer?: string;
  /** The key exchanges the server offers (tests that make many connections pick a cheap one). */
  kexAlgorithms?: string;
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export class TestSshd {
  private scenarios = 1;

  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly user: string,
    readonly hostPublicKey: string,
    private readonly proc: ChildProcess,
    /** The current scenario's ATTIC_TEST_SCENARIO value: `<dir>#<n>`. */
    private current: string,
  ) {}

  get logFile(): string {
    return path.join(this.dir, "sshd.log");
  }

  static async start(options: SshdOptions = {}): Promise<TestSshd> {
    const dir = mkdtempSync(path.join(tmpdir(), "sshd-"));
    const keygen = (file: string) =>
      execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", path.join(dir, file)]);
    keygen("host_key");
    keygen("client_key");
    const hostPublicKey = readFileSync(path.join(dir, "host_key.pub"), "utf8").trim();
    const port = await freePort();
    writeFileSync(path.join(dir, "known_hosts"), `[127.0.0.1]:${port} ${hostPublicKey}\n`);
    const setEnv = Object.entries(options.env ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(" ");
    writeFileSync(
      path.join(dir, "sshd_config"),
      [
        `Port ${port}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${path.join(dir, "host_key")}`,
        `PidFile ${path.join(dir, "sshd.pid")}`,
        `AuthorizedKeysFile ${path.join(dir, "authorized_keys")}`,
        "StrictModes no",
        "UsePAM no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "AcceptEnv none",
        // SetEnv would override these: PATH is never set there.
        "PermitUserEnvironment PATH,HOME,ATTIC_TEST_*",
        ...(setEnv ? [`SetEnv ${setEnv}`] : []),
        "LogLevel VERBOSE",
        ...(options.sftpServer ? [`Subsystem sftp ${options.sftpServer}`] : []),
        ...(options.kexAlgorithms ? [`KexAlgorithms ${options.kexAlgorithms}`] : []),
        ...(options.forceCommand ? [`ForceCommand ${options.forceCommand}`] : []),
        "",
      ].join("\n"),
    );
    mkdirSync(path.join(dir, "home"));
    const first = bindScenario(dir, 1, options.binDir ? { binDir: options.binDir } : {});
    if (process.getuid?.() === 0) mkdirSync("/run/sshd", { recursive: true });
    const proc = spawn(
      "/usr/sbin/sshd",
      ["-D", "-f", path.join(dir, "sshd_config"), "-E", path.join(dir, "sshd.log")],
      {
        stdio: "ignore",
      },
    );
    await waitForPort(port, proc, path.join(dir, "sshd.log"));
    return new TestSshd(dir, port, userInfo().username, hostPublicKey, proc, first);
  }

  /**
   * Ends the current scenario — every process of its sessions is killed — and binds the next:
   * sessions that authenticate from now on see `s`.
   */
  scenario(s: Scenario): void {
    this.endScenario();
    this.current = bindScenario(this.dir, ++this.scenarios, s);
  }

  /** Runs `command` over a new SSH connection, with `stdin` piped, as remote.Command does. */
  run(command: string, stdin = ""): RunResult {
    const r = spawnSync(
      "ssh",
      [
        "-p",
        String(this.port),
        "-i",
        path.join(this.dir, "client_key"),
        "-o",
        `UserKnownHostsFile=${path.join(this.dir, "known_hosts")}`,
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "GSSAPIAuthentication=no",
        // The tests make hundreds of connections; the default post-quantum exchange costs ~150 ms each.
        "-o",
        "KexAlgorithms=curve25519-sha256",
        `${this.user}@127.0.0.1`,
        command,
      ],
      { input: stdin, encoding: "utf8", timeout: scaled(60).ms },
    );
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** Stops the server and every process of the current scenario's sessions. */
  stop(): void {
    this.proc.kill("SIGTERM");
    this.endScenario();
  }

  private endScenario(): void {
    const entry = `${SCENARIO_VARIABLE}=${this.current}`;
    endProcessesWhose((environment) => environment.includes(entry));
  }
}

/**
 * Writes authorized_keys so that sessions authenticating from now on see scenario `n`'s
 * environment; returns its ATTIC_TEST_SCENARIO value.
 */
function bindScenario(dir: string, n: number, s: Scenario): string {
  const id = `${dir}#${n}`;
  const env = {
    PATH: [s.binDir, "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
      .filter(Boolean)
      .join(":"),
    // An empty home: the session's shell reads none of this machine's dotfiles (a user's .bashrc
    // may run tools that take locks in their home, and a killed session would leave them held).
    HOME: path.join(dir, "home"),
    ...s.env,
    [SCENARIO_VARIABLE]: id,
  };
  const options = Object.entries(env).map(([k, v]) => {
    if (k !== "PATH" && k !== "HOME" && !k.startsWith("ATTIC_TEST_"))
      throw new Error(`${k}: a scenario's variables start with ATTIC_TEST_`);
    if (/["\n]/.test(v)) throw new Error(`${k}: a scenario's values hold no quote or newline`);
    return `environment="${k}=${v}"`;
  });
  const key = readFileSync(path.join(dir, "client_key.pub"), "utf8").trim();
  // Whole or not at all: a connection authenticating meanwhile reads the old file or the new one.
  const file = path.join(dir, "authorized_keys");
  writeFileSync(`${file}.new`, `${options.join(",")} ${key}\n`);
  renameSync(`${file}.new`, file);
  return id;
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function waitForPort(port: number, proc: ChildProcess, log: string): Promise<void> {
  await waitFor(
    `sshd to listen on port ${port}`,
    async () => {
      if (proc.exitCode !== null) throw new Error(`sshd exited: ${readFileSync(log, "utf8")}`);
      return new Promise<boolean>((resolve) => {
        const sock = new Socket();
        sock.once("connect", () => {
          sock.destroy();
          resolve(true);
        });
        sock.once("error", () => resolve(false));
        sock.connect(port, "127.0.0.1");
      });
    },
    10,
  );
}
