/**
 * The OpenSSH client setup that every script run on the deploying machine shares (the RouterOS
 * transport, the NixOS host deployer's driver): tools checked, a private work directory removed on
 * exit, INT, TERM and HUP, the host key pinned, and the private key loaded into an ssh-agent of the
 * script's own through a pipe (`ssh-add -`): it is never written to disk nor put on a command line.
 * SIGKILL runs no trap: a watchdog runs the same cleanup once the script's shell is gone, so a killed
 * `pulumi up` leaves no agent holding the key.
 *
 * It starts an ssh_config file, `$work/config`, with what applies to every host (the pinned host key,
 * the agent); callers append their own lines and run `ssh -F "$work/config" …`. Inputs come from the
 * environment: <P>_HOST, <P>_PORT, <P>_HOST_KEY (empty: not checked) and <P>_PRIVATE_KEY (empty: no
 * agent of our own; the caller decides how to authenticate), with <P> the caller's prefix (ROUTEROS,
 * NIXOS).
 */

export interface SshClientOptions {
  /** The environment variables' prefix: `NIXOS` reads NIXOS_HOST, NIXOS_PORT, … */
  env: string;
  /** What the client is for, in the missing-tool sentence: "deploy to the host". */
  purpose: string;
  /** Where the user set the private key, in the sentence when ssh-add refuses it. */
  privateKeySetting: string;
  /** Tools needed besides ssh, ssh-agent and ssh-add (e.g. scp). Default none. */
  tools?: string[];
  /** Shell run first on cleanup (e.g. closing connection masters); must not fail. Default none. */
  onCleanup?: string;
}

/** Shell text, run under `set -eu`: sets `work` (the work directory, with `$work/config`) and `agent` (its pid, or empty). */
export function sshClientSetup(o: SshClientOptions): string {
  const v = (name: string) => `${o.env}_${name}`;
  return `for tool in ssh ${[...(o.tools ?? []), "ssh-agent", "ssh-add"].join(" ")}; do
  command -v "$tool" >/dev/null 2>&1 || { echo "attic-infra: the OpenSSH client ($tool) is needed on this machine to ${o.purpose}" >&2; exit 1; }
done
work=$(mktemp -d)
agent=""
watchdog=""
cleanup() {
${o.onCleanup ? `  ${o.onCleanup}\n` : ""}  if [ -n "$watchdog" ]; then kill "$watchdog" 2>/dev/null || true; fi
  if [ -n "$agent" ]; then kill "$agent" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$${v("PORT")}" = 22 ]; then known="$${v("HOST")}"; else known="[$${v("HOST")}]:$${v("PORT")}"; fi
if [ -n "\${${v("HOST_KEY")}:-}" ]; then
  printf '%s %s\\n' "$known" "$${v("HOST_KEY")}" > "$work/known_hosts"
  printf 'StrictHostKeyChecking yes\\nUserKnownHostsFile "%s"\\n' "$work/known_hosts" > "$work/config"
else
  printf 'StrictHostKeyChecking no\\nUserKnownHostsFile /dev/null\\n' > "$work/config"
fi
# The key goes into an agent of our own through a pipe: it never touches the disk. The agent runs
# in the foreground of a background job, so its pid is known before anything can kill us.
if [ -n "\${${v("PRIVATE_KEY")}:-}" ]; then
  ssh-agent -D -a "$work/agent" > /dev/null 2>&1 &
  agent=$!
fi
# SIGKILL runs no trap: a watchdog runs the cleanup once this shell is gone (a subshell has no traps).
(while kill -0 $$ 2>/dev/null; do sleep 1; done; cleanup) < /dev/null > /dev/null 2>&1 &
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
  printf '%s\\n' "$${v("PRIVATE_KEY")}" | ssh-add -q - >/dev/null 2>&1 || {
    echo "attic-infra: the key in ${o.privateKeySetting} could not be loaded (ssh-add); give an unencrypted OpenSSH or PEM private key" >&2
    exit 1
  }
  # IdentitiesOnly no: a user's "IdentitiesOnly yes" (if their ssh_config is included) would hide it.
  printf 'IdentityAgent "%s"\\nIdentitiesOnly no\\n' "$work/agent" >> "$work/config"
fi
`;
}
