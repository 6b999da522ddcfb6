/**
 * The deploy as the deploying machine runs it (a local.Command's create): OpenSSH, host key pinned,
 * two connections — the deploy session, then a NEW connection for the confirm — as deploy-rs does.
 * One process, one exit status: Pulumi records the deploy only when the host confirmed it, and
 * re-runs the whole of it after any failure. The script is driver.sh after the SSH client
 * (components/sshClient.sh) and a header with this deploy's values.
 *
 * Inputs come from the environment of the local command (never sent to the host):
 * NIXOS_HOST, NIXOS_PORT, NIXOS_USER, NIXOS_HOST_KEY (empty: not checked), NIXOS_PRIVATE_KEY
 * (loaded into a private ssh-agent with `ssh-add -`, never written to disk; empty: the caller's SSH
 * agent). stdin: the environment file, passed on to the deploy session.
 */
import { CONFIRM_DIAL_ATTEMPTS, CONFIRM_DIAL_TIMEOUT_SECONDS } from "../../config/deployBudget";
import { readScript, shellHeader } from "../shellScript";
import { sshClientScript } from "../sshClient";

export interface DriverOptions {
  deployId: string;
  /** The remote commands (already wrapped with asRoot). */
  deploy: string;
  confirm: string;
  windowSeconds: number;
  /** Where the user set the private key (attic-infra:office.privateKey), for the ssh-add error. */
  privateKeySetting?: string;
}

export function driverScript(o: DriverOptions): string {
  const header = shellHeader(
    [
      `attic-infra: deploy ${o.deployId} to a NixOS host, then confirm it over a new connection.`,
      "Generated; see components/nixosHost/driver.ts.",
    ],
    {
      DEPLOY_ID: o.deployId,
      WINDOW_SECONDS: String(o.windowSeconds),
      DIAL_TIMEOUT_SECONDS: String(CONFIRM_DIAL_TIMEOUT_SECONDS),
      DIAL_ATTEMPTS: String(CONFIRM_DIAL_ATTEMPTS),
      PRIVATE_KEY_SETTING: o.privateKeySetting ?? "the privateKey of this host's site",
      DEPLOY: o.deploy,
      CONFIRM: o.confirm,
    },
  );
  return `${header}${sshClientScript()}${readScript(__dirname, "driver.sh")}`;
}
