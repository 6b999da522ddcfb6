set -eu
# attic-infra: run the RouterOS steps on stdin on the switch: upload each, /import it, require its done line.
BACKUP_PLACEHOLDER='@BACKUP@'
# shellcheck disable=SC1003,SC2016 # literal text, expanded nowhere
ERROR_PATTERN='failure:|bad command name|syntax error|expected end of command|expected command name|no such item|invalid value|input does not match any value of|missing value\(s\) of argument\(s\)|ambiguous value|not enough permissions|Script Error'
MIN_MAJOR='7'
MIN_MINOR='13'
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
masters=""
# By their sockets, not the $masters list: after a SIGKILL the watchdog runs this with the list as it
# was when the watchdog started (empty), and a master would otherwise stay open for good.
ssh_client_on_cleanup() {
  for cm in "$work"/c[0-9]*; do if [ -S "$cm" ]; then ssh -F "$work/config" -S "$cm" -O exit switch >/dev/null 2>&1 || true; fi; done
}
ssh_client_setup "configure the switch" "attic-infra:mikrotik.privateKey" \
  "$ROUTEROS_HOST" "$ROUTEROS_PORT" "${ROUTEROS_HOST_KEY:-}" "${ROUTEROS_PRIVATE_KEY:-}" scp
{
  echo "Host switch"
  echo "  HostName \"$ROUTEROS_HOST\""
  echo "  Port $ROUTEROS_PORT"
  echo "  User \"$ROUTEROS_USER\""
  echo "  ConnectTimeout 15"
  echo "  ServerAliveInterval 15"
  echo "  LogLevel ERROR"
} >> "$work/config"
# The bundle: "#>attic-infra step <name> [new-connection]" before each script.
awk -v dir="$work" '
  /^#>attic-infra step / { n++; file = sprintf("%s/step%02d.rsc", dir, n); printf "%s %s %s\n", file, $3, ($4 == "" ? "-" : $4) >> (dir "/steps"); next }
  file != "" { print > file }
'
[ -s "$work/steps" ] || { echo "attic-infra: no RouterOS steps on stdin" >&2; exit 1; }
backup="attic-infra-$(date -u +%Y%m%d-%H%M%S)"
while read -r file _ _; do
  sed "s/$BACKUP_PLACEHOLDER/$backup/g" "$file" > "$file.tmp" && mv "$file.tmp" "$file"
done < "$work/steps"

if [ -n "$agent" ]; then
  printf '  BatchMode yes\n' >> "$work/config"
elif [ -n "${ROUTEROS_PASSWORD:-}" ]; then
  # OpenSSH reads the password from an askpass program; it never appears on a command line.
  # shellcheck disable=SC2016 # $ROUTEROS_PASSWORD is expanded by the askpass program, not here
  printf '#!/bin/sh\nprintf "%%s\\n" "$ROUTEROS_PASSWORD"\n' > "$work/askpass"
  chmod 0700 "$work/askpass"
  export SSH_ASKPASS="$work/askpass" SSH_ASKPASS_REQUIRE=force DISPLAY="${DISPLAY:-none}"
  printf '  PreferredAuthentications password,keyboard-interactive\n  NumberOfPasswordPrompts 1\n' >> "$work/config"
else
  printf '  BatchMode yes\n' >> "$work/config"
fi
where="$ROUTEROS_USER@$ROUTEROS_HOST:$ROUTEROS_PORT"

connections=0
via=ControlPath=none
connect() {
  if [ -n "$masters" ] && [ "$via" = ControlPath=none ]; then return; fi
  connections=$((connections + 1))
  cm="$work/c$connections"
  # Its output goes nowhere: a background master holding our stdout would keep the caller waiting.
  if ! ssh -F "$work/config" -M -S "$cm" -o ControlPersist=yes -f -N switch > /dev/null 2> "$work/ssh.err"; then
    cat "$work/ssh.err" >&2
    echo "attic-infra: ssh $where failed; see the lines above" >&2
    exit 1
  fi
  masters="$masters $cm"
  via="ControlPath=$cm"
}
# ssh or scp over the current connection: output without CRs, its exit status. An SSH server
# that runs one session per connection refuses a second one (ssh exits 255, scp 1): from then on
# every command opens a connection of its own.
over() {
  tool=$1
  shift
  over_status=0
  "$tool" -F "$work/config" -o "$via" "$@" < /dev/null > "$work/over.out" 2>&1 || over_status=$?
  if [ "$over_status" != 0 ] && [ "$via" != ControlPath=none ] && { [ "$over_status" = 255 ] || [ "$tool" = scp ]; }; then
    via=ControlPath=none
    over_status=0
    "$tool" -F "$work/config" -o "$via" "$@" < /dev/null > "$work/over.out" 2>&1 || over_status=$?
  fi
  tr -d '\r' < "$work/over.out"
  return "$over_status"
}
# One line, one exec request.
ros() {
  over ssh -T switch "$1"
}

# A file is read whole before /import runs it, so its first line removes it from the switch.
run_step() {
  name="attic-infra-$2.rsc"
  { printf '/file remove [find where name="%s"]\n' "$name"; cat "$1"; } > "$work/upload.rsc"
  if ! over scp -q "$work/upload.rsc" "switch:$name" > "$work/scp.out"; then
    cat "$work/scp.out" >&2
    echo "attic-infra: could not upload $name to $where over SFTP. RouterOS accepts uploads only from users whose group has the ftp policy (the built-in write group has !ftp): add ftp to the policy of $ROUTEROS_USER's group (/user group set <group> policy=…,ftp), then run pulumi up again" >&2
    exit 1
  fi
  status=0
  ros "/import file-name=$name" > "$work/out" || status=$?
  cat "$work/out"
  if [ "$status" != 0 ]; then
    echo "attic-infra: ssh $where failed during $2 (exit $status); see the lines above" >&2
    exit 1
  fi
  bad=$(grep -E -m 1 "$ERROR_PATTERN" "$work/out" || true)
  if [ -n "$bad" ]; then
    ros "/file remove [find where name=\"$name\"]" > /dev/null || true
    echo "attic-infra: RouterOS reported an error in $2: $bad" >&2
    exit 1
  fi
  if ! grep -q -x "attic-infra: $2 done" "$work/out"; then
    ros "/file remove [find where name=\"$name\"]" > /dev/null || true
    echo "attic-infra: $2 did not finish on the switch (its last line, 'attic-infra: $2 done', is missing); see the lines above" >&2
    exit 1
  fi
}

# prepare lists the attic-infra-<time> backups and exports; the newest three stay, the current one always.
prune() {
  sed -n 's/^attic-infra: backup file \(attic-infra-[0-9]*-[0-9]*\)\..*$/\1/p' "$work/out" | sort -u | grep -v -x "$backup" |
    awk '{ old[NR] = $0 } END { for (i = 1; i <= NR - 2; i++) printf "%s name=\"%s.backup\" || name=\"%s.rsc\"", (i > 1 ? " ||" : ""), old[i], old[i] }' > "$work/prune"
  if [ -s "$work/prune" ]; then
    ros "/file remove [find where$(cat "$work/prune")]" > /dev/null || echo "attic-infra: warning: old backups stay on the switch (removing them failed)" >&2
  fi
}

connect
if ! version=$(ros ':put [/system resource get version]'); then
  printf '%s\n' "$version" >&2
  echo "attic-infra: ssh $where failed; see the lines above" >&2
  exit 1
fi
version=$(printf '%s\n' "$version" | head -n 1)
if ! printf '%s\n' "$version" | awk -v major="$MIN_MAJOR" -v minor="$MIN_MINOR" -F '[. ]' '{ exit !($1 ~ /^[0-9]+$/ && ($1 > major || ($1 == major && $2 >= minor))) }'; then
  echo "attic-infra: the switch at $where runs RouterOS ${version:-(it printed no version)}; attic-infra needs RouterOS $MIN_MAJOR.$MIN_MINOR or newer ('export … where' exists only from $MIN_MAJOR.$MIN_MINOR). Upgrade it (/system package update install), then run pulumi up again" >&2
  exit 1
fi
while read -r file step flag; do
  if [ "$flag" = new-connection ]; then connect; fi
  run_step "$file" "$step"
  if [ "$step" = prepare ]; then prune; fi
done < "$work/steps"
