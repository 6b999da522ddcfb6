/**
 * The checks behind what components/sshClient.ts promises to every script that uses it (the
 * RouterOS transport, the NixOS host driver): the private key reaches a private ssh-agent and
 * nowhere else — no command line, no file — and a script killed by any signal leaves no agent and no
 * temporary files. Each script's test runs it with TMPDIR pointing at a directory of its own, so
 * "its agent" is the ssh-agent whose socket is in there.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { waitFor } from "./timeScale";

/** One line of an OpenSSH private key file: text that only the key contains. */
export function keyLine(keyFile: string): string {
  return readFileSync(keyFile, "utf8").split("\n")[2]!;
}

/** The command lines of the running processes that name a path under `tmp`. */
export function processesUnder(tmp: string): string[] {
  return spawnSync("ps", ["-eo", "args"], { encoding: "utf8" })
    .stdout.split("\n")
    .filter((l) => l.includes(tmp));
}

/** The command lines of the running ssh-agents with their socket under `tmp`. */
export function agentsUnder(tmp: string): string[] {
  return processesUnder(tmp).filter((l) => l.startsWith("ssh-agent"));
}

/**
 * Runs `run` while a watcher records every process's command line and, as `FILE <path>` lines, every
 * file under `tmp` that contains one of `secrets`. `scratch` (not under `tmp`) holds the record.
 */
export function watchSecrets<T>(
  secrets: string[],
  tmp: string,
  scratch: string,
  run: () => T,
): { result: T; log: string } {
  const seen = path.join(scratch, "seen.log");
  const patterns = path.join(scratch, "secret-patterns");
  writeFileSync(patterns, secrets.map((s) => `${s}\n`).join(""));
  const watcher = spawn(
    "sh",
    [
      "-c",
      `while :; do ps -eo args; grep -rl -F -f ${patterns} ${tmp} | sed 's/^/FILE /'; sleep 0.01; done > ${seen} 2>&1`,
    ],
    { stdio: "ignore" },
  );
  try {
    return { result: run(), log: readFileSync(seen, "utf8") };
  } finally {
    watcher.kill();
  }
}

/**
 * Once `child`'s agent (socket under `tmp`) runs, sends `signal` to the child's process alone, as
 * Pulumi or a shell would. Resolves with how it ended and the agents still running once they had
 * time to go (the cleanup, or after SIGKILL the watchdog, which looks once a second).
 */
export async function killOnceAgentRuns(
  child: ChildProcess,
  tmp: string,
  signal: NodeJS.Signals,
): Promise<{ exit: number | NodeJS.Signals | null; agents: string[] }> {
  const exited = new Promise<number | NodeJS.Signals | null>((r) =>
    child.on("exit", (code, sig) => r(code ?? sig)),
  );
  await waitFor(`an ssh-agent with its socket in ${tmp} to start`, () => agentsUnder(tmp).length > 0, 10);
  if (agentsUnder(tmp).length !== 1) throw new Error(`more than one ssh-agent with its socket in ${tmp}`);
  child.kill(signal);
  const exit = await exited;
  await waitFor(`the ssh-agent in ${tmp} to be gone`, () => agentsUnder(tmp).length === 0, 5);
  return { exit, agents: agentsUnder(tmp) };
}
