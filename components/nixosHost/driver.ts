/**
 * The deploy as the deploying machine runs it (a local.Command's create): OpenSSH, host key pinned,
 * two connections — the deploy session, then a NEW connection for the confirm — as deploy-rs does.
 * One process, one exit status: Pulumi records the deploy only when the host confirmed it, and
 * re-runs the whole of it after any failure.
 *
 * Inputs come from the environment of the local command (never sent to the host):
 * NIXOS_HOST, NIXOS_PORT, NIXOS_USER, NIXOS_HOST_KEY (empty: not checked), NIXOS_PRIVATE_KEY
 * (loaded into a private ssh-agent with `ssh-add -`, never written to disk; empty: the caller's SSH
 * agent). stdin: the environment file, passed on to the deploy session.
 */
import { CONFIRM_DIAL_ATTEMPTS, CONFIRM_DIAL_TIMEOUT_SECONDS } from "../../config/deployBudget";
import { sshClientSetup } from "../sshClient";
import { shellQuote } from "../text";

export interface DriverOptions {
  deployId: string;
  /** The remote commands (already wrapped with asRoot). */
  deploy: string;
  confirm: string;
  windowSeconds: number;
  /** Where the user set the private key (attic-infra:office.privateKey), for the ssh-add error. */
  privateKeySetting?: string;
}

/** The ssh setup (components/sshClient.ts): `remote <command>` runs one session. */
function sshFunctions(privateKeySetting: string): string {
  return `${sshClientSetup({ env: "NIXOS", purpose: "deploy to the host", privateKeySetting })}# Then the user's and the system's ssh_config, as plain ssh reads them (first value wins: ours).
echo 'Include ~/.ssh/config /etc/ssh/ssh_config' >> "$work/config"
# remote <command>: one session; no prompts, bounded dialling, and a dead connection noticed
# within ~45 s.
remote() {
  ssh -F "$work/config" -T -p "$NIXOS_PORT" -o BatchMode=yes -o ConnectTimeout=${CONFIRM_DIAL_TIMEOUT_SECONDS} \\
    -o ServerAliveInterval=15 -o ServerAliveCountMax=3 "$NIXOS_USER@$NIXOS_HOST" "$1"
}
`;
}

export function driverScript(o: DriverOptions): string {
  return `set -eu
# attic-infra: deploy ${o.deployId} to a NixOS host, then confirm it over a new connection.
# Generated; see components/nixosHost/driver.ts.
${sshFunctions(o.privateKeySetting ?? "the privateKey of this host's site")}target="$NIXOS_USER@$NIXOS_HOST:$NIXOS_PORT"
status=0
# shellcheck disable=SC1003,SC2016 # a script for the host, quoted: expanded there
remote ${shellQuote(o.deploy)} || status=$?
if [ "$status" = 255 ]; then
  echo "attic-infra: the SSH connection to $target failed or was lost during deploy ${o.deployId}. If the new system was activated, the host rolls back by itself within ${o.windowSeconds} s; run pulumi up again: it resumes the deploy while its rollback is armed, else deploys again." >&2
  exit 1
elif [ "$status" != 0 ]; then
  echo "attic-infra: deploy ${o.deployId} failed on $target (exit $status; the lines above say why). Run pulumi up again once the cause is fixed." >&2
  exit 1
fi
attempt=1
while :; do
  status=0
  # shellcheck disable=SC1003,SC2016 # a script for the host, quoted: expanded there
  remote ${shellQuote(o.confirm)} < /dev/null || status=$?
  [ "$status" = 0 ] && exit 0
  if [ "$status" = 255 ] && [ "$attempt" -lt ${CONFIRM_DIAL_ATTEMPTS} ]; then
    attempt=$((attempt + 1))
    continue
  fi
  if [ "$status" = 255 ]; then
    echo "attic-infra: could not reach $target over a new SSH connection to confirm deploy ${o.deployId}: the new system may have cut the host off. It rolls back by itself within ${o.windowSeconds} s; run pulumi up again once the host answers." >&2
  else
    echo "attic-infra: the confirm of deploy ${o.deployId} failed on $target (the lines above say why). Run pulumi up again." >&2
  fi
  exit 1
done
`;
}
