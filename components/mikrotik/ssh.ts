/**
 * How a RouterOS script reaches the switch: a local.Command on the machine running `pulumi up` runs
 * this shell script, which sends the script (its stdin) as one SSH exec request with OpenSSH,
 * checking the switch's host key against the pinned one, and then scans the output.
 *
 * Why not remote.Command: RouterOS reports errors in its output, never in the SSH exit status, and
 * remote.Command fails only on the exit status — a failed apply would be recorded as done.
 *
 * Inputs come from the environment (local to the deploying machine, never sent to the switch):
 * ROUTEROS_HOST, ROUTEROS_PORT, ROUTEROS_USER, ROUTEROS_HOST_KEY (empty: not checked),
 * ROUTEROS_PRIVATE_KEY or ROUTEROS_PASSWORD (both empty: the SSH agent).
 */
import { ROUTEROS_ERROR_PATTERNS } from "./routeros";

export function sshWrapperScript(): string {
  const pattern = ROUTEROS_ERROR_PATTERNS.map((p) => p.replace(/[.[\]()*+?{}|^$\\]/g, "\\$&")).join("|");
  return `set -eu
# attic-infra: run the RouterOS script on stdin on the switch over SSH, and fail on RouterOS errors.
command -v ssh >/dev/null 2>&1 || { echo "attic-infra: the OpenSSH client (ssh) is needed on this machine to configure the switch" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
script=$(cat)
if [ "$ROUTEROS_PORT" = 22 ]; then known="$ROUTEROS_HOST"; else known="[$ROUTEROS_HOST]:$ROUTEROS_PORT"; fi
if [ -n "\${ROUTEROS_HOST_KEY:-}" ]; then
  printf '%s %s\\n' "$known" "$ROUTEROS_HOST_KEY" > "$work/known_hosts"
  set -- -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$work/known_hosts"
else
  set -- -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
fi
if [ -n "\${ROUTEROS_PRIVATE_KEY:-}" ]; then
  (umask 077 && printf '%s\\n' "$ROUTEROS_PRIVATE_KEY" > "$work/key")
  set -- "$@" -i "$work/key" -o IdentitiesOnly=yes -o BatchMode=yes
elif [ -n "\${ROUTEROS_PASSWORD:-}" ]; then
  # OpenSSH reads the password from an askpass program; it never appears on a command line.
  # shellcheck disable=SC2016 # $ROUTEROS_PASSWORD is expanded by the askpass program, not here
  printf '#!/bin/sh\\nprintf "%%s\\\\n" "$ROUTEROS_PASSWORD"\\n' > "$work/askpass"
  chmod 0700 "$work/askpass"
  export SSH_ASKPASS="$work/askpass" SSH_ASKPASS_REQUIRE=force DISPLAY="\${DISPLAY:-none}"
  set -- "$@" -o PreferredAuthentications=password,keyboard-interactive -o NumberOfPasswordPrompts=1
else
  set -- "$@" -o BatchMode=yes
fi
status=0
ssh -T -p "$ROUTEROS_PORT" -o ConnectTimeout=15 -o ServerAliveInterval=15 "$@" \\
  "$ROUTEROS_USER@$ROUTEROS_HOST" "$script" > "$work/out" 2>&1 < /dev/null || status=$?
cat "$work/out"
if [ "$status" != 0 ]; then
  echo "attic-infra: ssh $ROUTEROS_USER@$ROUTEROS_HOST:$ROUTEROS_PORT failed (exit $status); see the lines above" >&2
  exit 1
fi
bad=$(grep -E -m 1 '${pattern}' "$work/out" || true)
if [ -n "$bad" ]; then
  echo "attic-infra: RouterOS reported an error: $bad" >&2
  exit 1
fi
`;
}
