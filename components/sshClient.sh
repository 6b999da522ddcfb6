# shellcheck shell=sh
# The OpenSSH client setup every script run on the deploying machine shares (the NixOS host's
# driver, components/nixosHost/driver.sh; the switch's transport, components/mikrotik/transport.sh):
# tools checked, a private work directory removed on exit, INT, TERM and HUP, the host key pinned,
# and the private key loaded into an ssh-agent of the script's own through a pipe (`ssh-add -`): it
# is never written to disk nor put on a command line. SIGKILL runs no trap: a watchdog runs the
# same cleanup once the script's shell is gone, so a killed `pulumi up` leaves no agent holding the
# key.
#
# A script includes this file first (sshClient.ts), then calls
#   ssh_client_setup <what for> <where the key is set> <host> <port> <host key> <private key> [<tool>...]
# <host key> empty: not checked; <private key> empty: no agent of our own (the caller decides how to
# authenticate); <tool>: needed besides ssh, ssh-agent and ssh-add. It sets `work` (the work
# directory) and `agent` (the agent's pid, or empty), and starts an ssh_config file, $work/config,
# with what applies to every host (the pinned host key, the agent): the caller appends its own lines
# and runs `ssh -F "$work/config" …`. A script that must do more on cleanup (close connection
# masters) defines ssh_client_on_cleanup before the call; it must not fail.

work=""
agent=""
watchdog=""
ssh_client_cleanup() {
  if command -v ssh_client_on_cleanup >/dev/null 2>&1; then ssh_client_on_cleanup; fi
  if [ -n "$watchdog" ]; then kill "$watchdog" 2>/dev/null || true; fi
  if [ -n "$agent" ]; then kill "$agent" 2>/dev/null || true; fi
  if [ -n "$work" ]; then rm -rf "$work"; fi
}
ssh_client_setup() {
  purpose=$1
  key_setting=$2
  host=$3
  port=$4
  host_key=$5
  private_key=$6
  shift 6
  for tool in ssh "$@" ssh-agent ssh-add; do
    command -v "$tool" >/dev/null 2>&1 || { echo "attic-infra: the OpenSSH client ($tool) is needed on this machine to $purpose" >&2; exit 1; }
  done
  work=$(mktemp -d)
  trap ssh_client_cleanup EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM

  if [ "$port" = 22 ]; then known="$host"; else known="[$host]:$port"; fi
  if [ -n "$host_key" ]; then
    printf '%s %s\n' "$known" "$host_key" > "$work/known_hosts"
    printf 'StrictHostKeyChecking yes\nUserKnownHostsFile "%s"\n' "$work/known_hosts" > "$work/config"
  else
    printf 'StrictHostKeyChecking no\nUserKnownHostsFile /dev/null\n' > "$work/config"
  fi
  # The key goes into an agent of our own through a pipe: it never touches the disk. The agent runs
  # in the foreground of a background job, so its pid is known before anything can kill us.
  if [ -n "$private_key" ]; then
    ssh-agent -D -a "$work/agent" > /dev/null 2>&1 &
    agent=$!
  fi
  # SIGKILL runs no trap: a watchdog runs the cleanup once this shell is gone (a subshell has no traps).
  (while kill -0 $$ 2>/dev/null; do sleep 1; done; ssh_client_cleanup) < /dev/null > /dev/null 2>&1 &
  watchdog=$!
  if [ -n "$agent" ]; then
    export SSH_AUTH_SOCK="$work/agent"
    # Until it answers: its socket file exists (bind) a moment before it accepts (listen). ssh-add
    # exits 2 when it cannot reach the agent, 1 for an agent without keys.
    tries=0
    while :; do
      reached=0
      ssh-add -l >/dev/null 2>&1 || reached=$?
      [ "$reached" = 2 ] || break
      tries=$((tries + 1))
      if [ "$tries" -gt 100 ]; then echo "attic-infra: ssh-agent did not start" >&2; exit 1; fi
      sleep 0.1
    done
    printf '%s\n' "$private_key" | ssh-add -q - >/dev/null 2>&1 || {
      echo "attic-infra: the key in $key_setting could not be loaded (ssh-add); give an unencrypted OpenSSH or PEM private key" >&2
      exit 1
    }
    # IdentitiesOnly no: a user's "IdentitiesOnly yes" (if their ssh_config is included) would hide it.
    printf 'IdentityAgent "%s"\nIdentitiesOnly no\n' "$work/agent" >> "$work/config"
  fi
}
