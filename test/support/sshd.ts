/**
 * A real OpenSSH server on 127.0.0.1 for the tests, with its own host and client keys, whose PATH
 * starts with a directory of stand-ins (recording `nixos-rebuild`, `systemctl`, ...) or whose every
 * command goes through a stand-in shell (ForceCommand). Commands reach it with the real `ssh`
 * client, as the deploy's remote.Command does: one exec request per step, stdin piped, host key
 * checked against a pinned known_hosts entry.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, Socket } from "node:net";
import { tmpdir, userInfo } from "node:os";
import * as path from "node:path";

export interface SshdOptions {
  /** Prepended to PATH for every session. */
  binDir?: string;
  /** Extra environment for every session (SetEnv). */
  env?: Record<string, string>;
  /** Run every session's command through this program (it sees SSH_ORIGINAL_COMMAND). */
  forceCommand?: string;
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export class TestSshd {
  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly user: string,
    readonly hostPublicKey: string,
    private readonly proc: ChildProcess,
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
    writeFileSync(path.join(dir, "authorized_keys"), readFileSync(path.join(dir, "client_key.pub")));
    const hostPublicKey = readFileSync(path.join(dir, "host_key.pub"), "utf8").trim();
    const port = await freePort();
    writeFileSync(path.join(dir, "known_hosts"), `[127.0.0.1]:${port} ${hostPublicKey}\n`);
    const pathEnv = [
      options.binDir,
      "/usr/local/sbin",
      "/usr/local/bin",
      "/usr/sbin",
      "/usr/bin",
      "/sbin",
      "/bin",
    ]
      .filter(Boolean)
      .join(":");
    const setEnv = Object.entries({ PATH: pathEnv, ...options.env })
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
        // Clients that do not choose (the deploy's own ssh) would pick the slower post-quantum exchange.
        "KexAlgorithms curve25519-sha256",
        `SetEnv ${setEnv}`,
        "LogLevel VERBOSE",
        ...(options.forceCommand ? [`ForceCommand ${options.forceCommand}`] : []),
        "",
      ].join("\n"),
    );
    if (process.getuid?.() === 0) mkdirSync("/run/sshd", { recursive: true });
    const proc = spawn(
      "/usr/sbin/sshd",
      ["-D", "-f", path.join(dir, "sshd_config"), "-E", path.join(dir, "sshd.log")],
      {
        stdio: "ignore",
      },
    );
    await waitForPort(port, proc, path.join(dir, "sshd.log"));
    return new TestSshd(dir, port, userInfo().username, hostPublicKey, proc);
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
      { input: stdin, encoding: "utf8", timeout: 60_000 },
    );
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  stop(): void {
    this.proc.kill("SIGTERM");
  }
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
  for (let i = 0; i < 100; i++) {
    if (proc.exitCode !== null) throw new Error(`sshd exited: ${readFileSync(log, "utf8")}`);
    const ok = await new Promise<boolean>((resolve) => {
      const sock = new Socket();
      sock.once("connect", () => {
        sock.destroy();
        resolve(true);
      });
      sock.once("error", () => resolve(false));
      sock.connect(port, "127.0.0.1");
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("sshd did not start listening");
}
