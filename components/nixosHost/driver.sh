# shellcheck shell=sh disable=SC2154
# The deploy as the deploying machine runs it (driver.ts): the deploy session, then the confirm over
# a new connection. After the header (set -eu, DEPLOY_ID, WINDOW_SECONDS, DIAL_TIMEOUT_SECONDS,
# DIAL_ATTEMPTS, PRIVATE_KEY_SETTING, DEPLOY and CONFIRM: the remote commands) and the SSH client
# (components/sshClient.sh). The connection comes from the environment: NIXOS_HOST, NIXOS_PORT,
# NIXOS_USER, NIXOS_HOST_KEY, NIXOS_PRIVATE_KEY. SC2154: ssh_client_setup sets work.

ssh_client_setup "deploy to the host" "$PRIVATE_KEY_SETTING" \
  "$NIXOS_HOST" "$NIXOS_PORT" "${NIXOS_HOST_KEY:-}" "${NIXOS_PRIVATE_KEY:-}"
# Then the user's and the system's ssh_config, as plain ssh reads them (first value wins: ours).
echo 'Include ~/.ssh/config /etc/ssh/ssh_config' >> "$work/config"
# remote <command>: one session; no prompts, bounded dialling, and a dead connection noticed
# within ~45 s.
remote() {
  ssh -F "$work/config" -T -p "$NIXOS_PORT" -o BatchMode=yes -o ConnectTimeout="$DIAL_TIMEOUT_SECONDS" \
    -o ServerAliveInterval=15 -o ServerAliveCountMax=3 "$NIXOS_USER@$NIXOS_HOST" "$1"
}
target="$NIXOS_USER@$NIXOS_HOST:$NIXOS_PORT"
status=0
remote "$DEPLOY" || status=$?
if [ "$status" = 255 ]; then
  echo "attic-infra: the SSH connection to $target failed or was lost during deploy $DEPLOY_ID. If the new system was activated, the host rolls back by itself within $WINDOW_SECONDS s; run pulumi up again: it resumes the deploy while its rollback is armed, else deploys again." >&2
  exit 1
elif [ "$status" != 0 ]; then
  echo "attic-infra: deploy $DEPLOY_ID failed on $target (exit $status; the lines above say why). Run pulumi up again once the cause is fixed." >&2
  exit 1
fi
attempt=1
while :; do
  status=0
  remote "$CONFIRM" < /dev/null || status=$?
  [ "$status" = 0 ] && exit 0
  if [ "$status" = 255 ] && [ "$attempt" -lt "$DIAL_ATTEMPTS" ]; then
    attempt=$((attempt + 1))
    continue
  fi
  if [ "$status" = 255 ]; then
    echo "attic-infra: could not reach $target over a new SSH connection to confirm deploy $DEPLOY_ID: the new system may have cut the host off. It rolls back by itself within $WINDOW_SECONDS s; run pulumi up again once the host answers." >&2
  else
    echo "attic-infra: the confirm of deploy $DEPLOY_ID failed on $target (the lines above say why). Run pulumi up again." >&2
  fi
  exit 1
done
