/**
 * How RouterOS scripts reach the switch: a local.Command on the machine running `pulumi up` runs
 * this shell script (ssh-wrapper.sh, after the SSH client and a header with the RouterOS facts it
 * checks for) with a bundle of steps on stdin (routeros.ts `bundle`). MikroTik's SSH server
 * runs one line per exec request ("it is not possible to send multiline commands via SSH"), so each
 * step's script is uploaded (scp, over SFTP) and run with `/import file-name=…`, then the file is
 * removed. A step succeeded only if its output has the script's last line, `attic-infra: <step>
 * done`, exactly, and no RouterOS error text: RouterOS never reports errors in the exit status.
 *
 * Before the first step: RouterOS 7.13 or newer (the version gate). After `prepare`: only the three
 * newest attic-infra backups stay on the switch. A step marked new-connection (confirm) runs over a
 * new SSH connection; the others share one (OpenSSH connection multiplexing) unless the switch
 * refuses a second session on a connection: then every command opens its own.
 *
 * Why not remote.Command: it fails only on the exit status — a failed apply would be recorded as done.
 *
 * Inputs come from the environment (local to the deploying machine, never sent to the switch):
 * ROUTEROS_HOST, ROUTEROS_PORT, ROUTEROS_USER, ROUTEROS_HOST_KEY (empty: not checked),
 * ROUTEROS_PRIVATE_KEY (loaded into a private ssh-agent with `ssh-add -`, never written to disk) or
 * ROUTEROS_PASSWORD (given by an askpass program, never on a command line); both empty: the
 * caller's SSH agent.
 */
import { readScript, shellHeader } from "../shellScript";
import { sshClientScript } from "../sshClient";
import { BACKUP_PLACEHOLDER, MIN_ROUTEROS, ROUTEROS_ERROR_PATTERNS } from "./routeros";

export function sshWrapperScript(): string {
  const header = shellHeader(
    [
      "attic-infra: run the RouterOS steps on stdin on the switch: upload each, /import it, require its done line.",
    ],
    {
      BACKUP_PLACEHOLDER,
      // An extended regular expression (grep -E) matching any of them.
      ERROR_PATTERN: ROUTEROS_ERROR_PATTERNS.map((p) => p.replace(/[.[\]()*+?{}|^$\\]/g, "\\$&")).join("|"),
      MIN_MAJOR: String(MIN_ROUTEROS.major),
      MIN_MINOR: String(MIN_ROUTEROS.minor),
    },
  );
  return `${header}${sshClientScript()}${readScript(__dirname, "ssh-wrapper.sh")}`;
}
