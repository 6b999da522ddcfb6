# shellcheck shell=sh disable=SC2154
# How RouterOS steps reach the switch (ssh.ts): the bundle on stdin is split into its steps, each
# uploaded (scp, over SFTP), run with /import, and required to end with its done line. After the
# header (set -eu, BACKUP_PLACEHOLDER, ERROR_PATTERN, MIN_MAJOR, MIN_MINOR) and the SSH client
# (components/sshClient.sh). The connection comes from the environment: ROUTEROS_HOST,
# ROUTEROS_PORT, ROUTEROS_USER, ROUTEROS_HOST_KEY, ROUTEROS_PRIVATE_KEY, ROUTEROS_PASSWORD.
# SC2154: ssh_client_setup sets work and agent.

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
