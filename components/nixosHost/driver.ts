/**
 * The deploy as the deploying machine runs it (a local.Command's create): OpenSSH, host key pinned,
 * two connections — the deploy session, then a NEW connection for the confirm — as deploy-rs does.
 * One process, one exit status: Pulumi records the deploy only when the host confirmed it, and
 * re-runs the whole of it after any failure.
 *
 * Inputs come from the environment of the local command (never sent to the host):
 * NIXOS_HOST, NIXOS_PORT, NIXOS_USER, NIXOS_HOST_KEY (empty: not checked), NIXOS_PRIVATE_KEY
 * (empty: the SSH agent). stdin: the environment file, passed on to the deploy session.
 */
import { CONFIRM_DIAL_ATTEMPTS, CONFIRM_DIAL_TIMEOUT_SECONDS } from "../../config/deployBudget";
import { shellQuote } from "../text";

export interface DriverOptions {
  deployId: string;
  /** The remote commands (already wrapped with asRoot). */
  deploy: string;
  confirm: string;
  windowSeconds: number;
}

/** The ssh setup: `remote <command> <ssh options>` runs one session. */
function sshFunctions(): string {
  return `command -v ssh >/dev/null 2>&1 || { echo "attic-infra: the OpenSSH client (ssh) is needed on this machine to deploy to the host" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ "$NIXOS_PORT" = 22 ]; then known="$NIXOS_HOST"; else known="[$NIXOS_HOST]:$NIXOS_PORT"; fi
if [ -n "\${NIXOS_HOST_KEY:-}" ]; then
  printf '%s %s\\n' "$known" "$NIXOS_HOST_KEY" > "$work/known_hosts"
  set -- -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$work/known_hosts"
else
  set -- -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
fi
if [ -n "\${NIXOS_PRIVATE_KEY:-}" ]; then
  (umask 077 && printf '%s\\n' "$NIXOS_PRIVATE_KEY" > "$work/key")
  set -- "$@" -i "$work/key" -o IdentitiesOnly=yes
fi
# remote <command> <ssh options...>: one session; no prompts, bounded dialling, and a dead
# connection noticed within ~45 s.
remote() {
  command=$1
  shift
  ssh -T -p "$NIXOS_PORT" -o BatchMode=yes -o ConnectTimeout=${CONFIRM_DIAL_TIMEOUT_SECONDS} \\
    -o ServerAliveInterval=15 -o ServerAliveCountMax=3 "$@" "$NIXOS_USER@$NIXOS_HOST" "$command"
}
`;
}

export function driverScript(o: DriverOptions): string {
  return `set -eu
# attic-infra: deploy ${o.deployId} to a NixOS host, then confirm it over a new connection.
# Generated; see components/nixosHost/driver.ts.
${sshFunctions()}target="$NIXOS_USER@$NIXOS_HOST:$NIXOS_PORT"
status=0
# shellcheck disable=SC1003,SC2016 # a script for the host, quoted: expanded there
remote ${shellQuote(o.deploy)} "$@" || status=$?
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
  remote ${shellQuote(o.confirm)} "$@" < /dev/null || status=$?
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
