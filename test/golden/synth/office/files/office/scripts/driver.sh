set -eu
# attic-infra: deploy 5099e4f9a323921397291c1042fa7a0a to a NixOS host, then confirm it over a new connection.
# Generated; see components/nixosHost/driver.ts.
for tool in ssh ssh-agent ssh-add; do
  command -v "$tool" >/dev/null 2>&1 || { echo "attic-infra: the OpenSSH client ($tool) is needed on this machine to deploy to the host" >&2; exit 1; }
done
work=$(mktemp -d)
agent=""
watchdog=""
cleanup() {
  if [ -n "$watchdog" ]; then kill "$watchdog" 2>/dev/null || true; fi
  if [ -n "$agent" ]; then kill "$agent" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$NIXOS_PORT" = 22 ]; then known="$NIXOS_HOST"; else known="[$NIXOS_HOST]:$NIXOS_PORT"; fi
if [ -n "${NIXOS_HOST_KEY:-}" ]; then
  printf '%s %s\n' "$known" "$NIXOS_HOST_KEY" > "$work/known_hosts"
  printf 'StrictHostKeyChecking yes\nUserKnownHostsFile "%s"\n' "$work/known_hosts" > "$work/config"
else
  printf 'StrictHostKeyChecking no\nUserKnownHostsFile /dev/null\n' > "$work/config"
fi
# The key goes into an agent of our own through a pipe: it never touches the disk. The agent runs
# in the foreground of a background job, so its pid is known before anything can kill us.
if [ -n "${NIXOS_PRIVATE_KEY:-}" ]; then
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
  printf '%s\n' "$NIXOS_PRIVATE_KEY" | ssh-add -q - >/dev/null 2>&1 || {
    echo "attic-infra: the key in attic-infra:office.privateKey could not be loaded (ssh-add); give an unencrypted OpenSSH or PEM private key" >&2
    exit 1
  }
  # IdentitiesOnly no: a user's "IdentitiesOnly yes" (if their ssh_config is included) would hide it.
  printf 'IdentityAgent "%s"\nIdentitiesOnly no\n' "$work/agent" >> "$work/config"
fi
# Then the user's and the system's ssh_config, as plain ssh reads them (first value wins: ours).
echo 'Include ~/.ssh/config /etc/ssh/ssh_config' >> "$work/config"
# remote <command>: one session; no prompts, bounded dialling, and a dead connection noticed
# within ~45 s.
remote() {
  ssh -F "$work/config" -T -p "$NIXOS_PORT" -o BatchMode=yes -o ConnectTimeout=15 \
    -o ServerAliveInterval=15 -o ServerAliveCountMax=3 "$NIXOS_USER@$NIXOS_HOST" "$1"
}
target="$NIXOS_USER@$NIXOS_HOST:$NIXOS_PORT"
status=0
# shellcheck disable=SC1003,SC2016 # a script for the host, quoted: expanded there
remote 's='\''set -eu
# attic-infra: deploy a new system, pending confirmation. Generated; see components/nixosHost/scripts.ts.
CONFIG_DIR='\''\'\'''\''/etc/nixos'\''\'\'''\''
STATE='\''\'\'''\''/var/lib/attic-infra'\''\'\'''\''
PENDING='\''\'\'''\''/var/lib/attic-infra/pending-deploy'\''\'\'''\''
PROFILE='\''\'\'''\''/nix/var/nix/profiles/system'\''\'\'''\''
RUN='\''\'\'''\''/run'\''\'\'''\''
ENV_FILE='\''\'\'''\''/var/lib/attic-infra/atticd.env'\''\'\'''\''
DB='\''\'\'''\''/var/lib/atticd/server.db'\''\'\'''\''
HEALTH_URL='\''\'\'''\''http://127.0.0.1:8080/'\''\'\'''\''
fail() {
  echo "attic-infra: $*" >&2
  exit 1
}
command -v nixos-rebuild >/dev/null 2>&1 || fail "nixos-rebuild not found on $(uname -n): this is not a NixOS host"
if ! grep -rqs --include='\''\'\'''\''*.nix'\''\'\'''\'' --exclude-dir=attic-infra '\''\'\'''\''attic-infra/atticd\.nix'\''\'\'''\'' "$CONFIG_DIR"; then
  fail "no .nix file in $CONFIG_DIR imports ./attic-infra/atticd.nix; add \"imports = [ ./attic-infra/atticd.nix ];\" to the host'\''\'\'''\''s configuration (docs/office.md, one-time host setup)"
fi
DEPLOY_ID=5099e4f9a323921397291c1042fa7a0a
umask 077
mkdir -p "$STATE"
chmod 0700 "$STATE"
lock() {
  exec 9>"$STATE/lock"
  flock -w 60 9 || fail "another attic-infra deploy, confirm or rollback has held $STATE/lock on $(uname -n) for 60 s; wait for it to finish (journalctl -u attic-infra-rollback*), then run pulumi up again"
}
lock
# The secret environment file passes through here: inside the state directory (0700), never /tmp.
# A work directory that a killed session left behind is removed by the next one, under the lock.
work="$STATE/work"
rm -rf "$work"
mkdir -m 0700 "$work"
trap '\''\'\'''\''rm -rf "$work"'\''\'\'''\'' EXIT
cat > "$work/env"
timer_armed() { systemctl is-active --quiet attic-infra-rollback.timer; }
# Runs the pending deploy'\''\'\'''\''s rollback in its own unit (it survives this session) and waits for it.
run_rollback() {
  rm -f "$STATE/rollback.result"
  # The rollback takes the deploy lock itself.
  exec 9>&-
  if timer_armed; then
    systemctl start attic-infra-rollback.service
  else
    systemd-run --unit=attic-infra-rollback-now --collect --quiet /bin/sh "$PENDING/rollback.sh"
  fi
  waited=0
  until [ -f "$STATE/rollback.result" ]; do
    [ "$waited" -lt 1200 ] || return 1
    sleep 0.2
    waited=$((waited + 1))
  done
  lock
  read -r verdict _ < "$STATE/rollback.result"
  [ "$verdict" = ok ]
}
roll_back_and_fail() {
  echo "attic-infra: $1; rolling back to $(cat "$PENDING/previous")" >&2
  if run_rollback; then
    fail "$1; the host was rolled back (journalctl -u attic-infra-rollback). Fix the cause and run pulumi up again."
  fi
  fail "$1, and the rollback FAILED: $(cat "$STATE/rollback.result" 2>/dev/null || echo '\''\'\'''\''no verdict'\''\'\'''\''). The host needs a look: journalctl -u attic-infra-rollback* (docs/runbooks.md)"
}
current() { readlink -f "$RUN/current-system"; }
wait_for_activation() {
  mkdir -p "$RUN/nixos"
  waited=0
  while systemctl is-active --quiet attic-infra-activate.service; do
    [ "$waited" -lt 900 ] || break
    sleep 0.1
    waited=$((waited + 1))
  done
  timeout 90 flock "$RUN/nixos/switch-to-configuration.lock" true \
    || fail "another activation still holds $RUN/nixos/switch-to-configuration.lock after 90 s (a nixos-rebuild on the host?); wait for it, then run pulumi up again"
}
health() {
  deadline=$(($(date +%s) + 30))
  until curl -fsS -o /dev/null --max-time 5 "$HEALTH_URL" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.25
  done
}

if [ "$(cat "$STATE/deployed" 2>/dev/null || true)" = "$DEPLOY_ID" ] && [ ! -e "$PENDING/id" ] \
  && [ "$(current)" = "$(cat "$STATE/deployed.toplevel" 2>/dev/null || true)" ]; then
  echo "deploy $DEPLOY_ID is live and confirmed; nothing to do"
  exit 0
fi

if [ -e "$PENDING/id" ]; then
  pending=$(cat "$PENDING/id")
  if [ "$pending" = "$DEPLOY_ID" ] && timer_armed; then
    wait_for_activation
    if [ "$(current)" = "$(cat "$PENDING/toplevel")" ] && health; then
      echo "resuming deploy $DEPLOY_ID: $(current) is active, answers $HEALTH_URL, and awaits the confirm"
      exit 0
    fi
    echo "attic-infra: deploy $DEPLOY_ID was interrupted before its system ran and answered; rolling it back, then deploying again" >&2
    run_rollback || fail "rolling back the interrupted deploy $DEPLOY_ID FAILED: $(cat "$STATE/rollback.result" 2>/dev/null || echo '\''\'\'''\''no verdict'\''\'\'''\''). The host needs a look: journalctl -u attic-infra-rollback* (docs/runbooks.md)"
  elif timer_armed; then
    fail "deploy $pending, not this one ($DEPLOY_ID), awaits confirmation on $(uname -n) and its rollback is armed. Let it roll back (journalctl -u attic-infra-rollback) or roll back now with: systemctl start attic-infra-rollback.service — then run pulumi up again"
  else
    echo "attic-infra: deploy $pending was left unconfirmed without an armed rollback (the host rebooted inside the window, or a rollback failed); rolling it back first" >&2
    run_rollback || fail "rolling back the unconfirmed deploy $pending FAILED: $(cat "$STATE/rollback.result" 2>/dev/null || echo '\''\'\'''\''no verdict'\''\'\'''\''). The host needs a look: journalctl -u attic-infra-rollback* (docs/runbooks.md)"
  fi
elif timer_armed; then
  fail "a rollback timer (attic-infra-rollback.timer) is armed on $(uname -n) but no deploy is pending; an earlier attic-infra version armed it. Let it fire or stop it (systemctl stop attic-infra-rollback.timer), then run pulumi up again"
fi

wait_for_activation
previous=$(current)
boot_previous=$(readlink -f "$PROFILE")

# The module is built from a copy of the configuration: the live import path keeps the confirmed
# module until the confirm, so a reboot or a manual rebuild meanwhile uses that one.
rm -rf "$PENDING"
mkdir -p "$PENDING"
# shellcheck disable=SC2016 # literal text, expanded nowhere
printf '\''\'\'''\''%s'\''\'\'''\'' '\''\'\'''\''# Generated by attic-infra (stack office). Do not edit: `pulumi up` replaces this file.
# Secrets are not here: atticd reads them from the environment file.
{ pkgs, ... }:
{
  services = {
    atticd = {
      enable = true;
      mode = "monolithic";
      environmentFile = "/var/lib/attic-infra/atticd.env";
      settings = {
        listen = "[::]:8080";
        allowed-hosts = [ ];
        api-endpoint = "http://attic.lan:8080/";
        soft-delete-caches = false;
        require-proof-of-possession = true;
        chunking = {
          nar-size-threshold = 65536;
          min-size = 16384;
          avg-size = 65536;
          max-size = 262144;
        };
        compression = {
          type = "zstd";
          level = 8;
        };
        garbage-collection = {
          interval = "12 hours";
          default-retention-period = "90 days";
        };
        database = {
          url = "sqlite:///var/lib/atticd/server.db?mode=rwc";
          heartbeat = false;
        };
        storage = {
          type = "local";
          path = "/var/lib/atticd/storage";
        };
      };
    };
  };
  environment = {
    systemPackages = [
      pkgs.curl
      pkgs.sqlite
    ];
  };
  systemd = {
    services = {
      atticd-backup = {
        description = "Back up the atticd SQLite database (every cache'\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''s signing key is in it)";
        after = [
          "atticd.service"
        ];
        path = [
          pkgs.sqlite
          pkgs.coreutils
          pkgs.findutils
        ];
        serviceConfig = {
          Type = "oneshot";
          UMask = "0077";
        };
        script = '\''\'\'''\''\'\''\'\'''\'''\''\'\'''\'''\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''
          set -eu
          dir='\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''/var/backup/atticd'\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''
          db='\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''/var/lib/atticd/server.db'\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''
          mkdir -p "$dir"
          chmod 0700 "$dir"
          if [ ! -f "$db" ]; then
            echo "no atticd database yet; nothing to back up"
            exit 0
          fi
          stamp=$(date -u +%Y%m%dT%H%M%SZ)
          sqlite3 "$db" ".backup '\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''$dir/server-$stamp.db'\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''"
          set -- "$dir"/server-*.db
          remove=$(($# - 14))
          for old in "$@"; do
            [ "$remove" -gt 0 ] || break
            rm -f -- "$old"
            remove=$((remove - 1))
          done
          echo "backed up to $dir/server-$stamp.db"
        '\''\'\'''\''\'\''\'\'''\'''\''\'\'''\'''\''\'\'''\''\'\''\'\'''\'''\''\'\'''\'';
      };
      atticd = {
        unitConfig = {
          RequiresMountsFor = [
            "/var/lib/private/atticd/storage"
          ];
        };
      };
    };
    timers = {
      atticd-backup = {
        wantedBy = [
          "timers.target"
        ];
        timerConfig = {
          OnCalendar = "daily";
          Persistent = true;
          RandomizedDelaySec = "30m";
        };
      };
    };
  };
  networking = {
    firewall = {
      allowedTCPPorts = [
        8080
      ];
    };
  };
  fileSystems = {
    "/var/lib/private/atticd/storage" = {
      device = "/dev/disk/by-label/attic-storage";
      fsType = "ext4";
      options = [
        "noatime"
        "nofail"
        "x-systemd.device-timeout=30s"
      ];
    };
  };
}
'\''\'\'''\'' > "$PENDING/module.nix"
chmod 0644 "$PENDING/module.nix"
cp -a "$CONFIG_DIR/." "$work/config"
mkdir -p "$work/config/attic-infra"
cp "$PENDING/module.nix" "$work/config/attic-infra/atticd.nix"
if [ -d "$work/config/.git" ]; then
  # A flake in a git repository ignores untracked files.
  git -C "$work/config" -c safe.directory='\''\'\'''\''*'\''\'\'''\'' add --intent-to-add -- '\''\'\'''\''attic-infra/atticd.nix'\''\'\'''\'' \
    || fail "could not add attic-infra/atticd.nix to the flake'\''\'\'''\''s git index"
fi
cd "$work"
if ! timeout 1800 nixos-rebuild build -I nixos-config="$work/config/configuration.nix" > "$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log" >&2
  rm -rf "$PENDING"
  fail "nixos-rebuild build failed (last lines above); nothing was activated, the host is unchanged"
fi
toplevel=$(readlink -f "$work/result")

echo "$previous" > "$PENDING/previous"
echo "$boot_previous" > "$PENDING/boot.previous"
echo "$toplevel" > "$PENDING/toplevel"
cp "$work/env" "$PENDING/env"
if [ -f "$ENV_FILE" ]; then cp -p "$ENV_FILE" "$PENDING/env.previous"; fi
if [ -n "$DB" ] && [ -f "$DB" ]; then
  sqlite3 "$DB" ".backup '\''\'\'''\''$PENDING/db.snapshot'\''\'\'''\''" || fail "could not snapshot $DB before the switch; nothing was activated"
  chown --reference="$DB" "$PENDING/db.snapshot"
fi
check_health=0
# A confirmed deploy before this one (of any version of this program): the previous system runs
# the service, so the rollback must see it answer again.
if [ -s "$STATE/deployed" ]; then check_health=1; fi
# shellcheck disable=SC2016 # literal text, expanded nowhere
printf '\''\'\'''\''%s'\''\'\'''\'' '\''\'\'''\''#!/bin/sh
# attic-infra: roll back deploy 5099e4f9a323921397291c1042fa7a0a unless it was confirmed. Run by systemd
# (unit attic-infra-rollback), never by an SSH session. Generated; see components/nixosHost/scripts.ts.
set -eu
PATH='\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''@PREVIOUS@/sw/bin:@NEXT@/sw/bin'\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''
export PATH
DEPLOY_ID=5099e4f9a323921397291c1042fa7a0a
PREVIOUS='\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''@PREVIOUS@'\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''
MODULE='\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''/etc/nixos/attic-infra/atticd.nix'\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''
STATE='\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''/var/lib/attic-infra'\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''
PENDING='\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''/var/lib/attic-infra/pending-deploy'\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''
PROFILE='\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''/nix/var/nix/profiles/system'\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''
RUN='\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''/run'\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''
ENV_FILE='\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''/var/lib/attic-infra/atticd.env'\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''
DB='\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''/var/lib/atticd/server.db'\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''
HEALTH_URL='\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''http://127.0.0.1:8080/'\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''
CHECK_HEALTH=1
step="starting"
finish() {
  status=$?
  if [ "$status" != 0 ]; then
    # <2>: systemd logs this line at priority crit (SyslogLevelPrefix).
    echo "<2>attic-infra: ROLLBACK OF DEPLOY $DEPLOY_ID FAILED while $step; the host runs $(readlink -f "$RUN/current-system" || echo unknown). See docs/runbooks.md, office: a failed rollback." >&2
    echo "failed $DEPLOY_ID $step" > "$STATE/rollback.result" || true
  fi
}
trap finish EXIT
step="waiting for the deploy lock"
exec 9>"$STATE/lock"
flock 9
if [ "$(cat "$PENDING/id" 2>/dev/null || true)" != "$DEPLOY_ID" ]; then
  echo "attic-infra: deploy $DEPLOY_ID is not pending (confirmed, or already rolled back): nothing to do"
  echo "ok $DEPLOY_ID nothing-pending" > "$STATE/rollback.result"
  exit 0
fi
step="waiting for a running activation"
mkdir -p "$RUN/nixos"
if ! flock -n "$RUN/nixos/switch-to-configuration.lock" true; then
  echo "attic-infra: an activation is running; waiting for it to finish"
  flock "$RUN/nixos/switch-to-configuration.lock" true
fi
step="restoring the environment file"
restart=0
if ! cmp -s "$PENDING/env.previous" "$ENV_FILE"; then restart=1; fi
if [ -f "$PENDING/env.previous" ]; then
  cp -p "$PENDING/env.previous" "$ENV_FILE.rollback"
  mv -f "$ENV_FILE.rollback" "$ENV_FILE"
else
  rm -f "$ENV_FILE"
fi
step="restoring the live module"
if [ -f "$PENDING/module.previous" ]; then
  cp -p "$PENDING/module.previous" "$MODULE.rollback"
  mv -f "$MODULE.rollback" "$MODULE"
elif [ -f "$PENDING/module.absent" ]; then
  rm -f "$MODULE"
fi
step="restoring the boot default"
boot_previous=$(cat "$PENDING/boot.previous")
if [ "$(readlink -f "$PROFILE")" != "$boot_previous" ]; then
  nix-env -p "$PROFILE" --set "$boot_previous"
  "$boot_previous/bin/switch-to-configuration" boot
fi
step="restoring the database"
migrations() { sqlite3 "$1" '\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''SELECT group_concat(version) FROM (SELECT version FROM seaql_migrations ORDER BY version)'\''\'\'''\''\'\''\'\'''\'''\''\'\'''\'' 2>/dev/null || true; }
if [ -f "$PENDING/db.snapshot" ] && [ "$(migrations "$DB")" != "$(migrations "$PENDING/db.snapshot")" ]; then
  # The new system migrated the database; the previous one cannot open it (no down-migrations).
  systemctl stop '\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''atticd.service'\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''
  restart=1
  rm -f "$DB-wal" "$DB-shm"
  cp -p "$PENDING/db.snapshot" "$DB"
  echo "attic-infra: restored the database snapshot taken before the switch"
fi
step="re-activating $PREVIOUS"
"$PREVIOUS/bin/switch-to-configuration" test
if [ "$restart" = 1 ] && [ "$CHECK_HEALTH" = 1 ]; then
  # Not restarted by the activation (their definitions did not change), yet their environment
  # file or database did.
  systemctl restart '\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''atticd.service'\''\'\'''\''\'\''\'\'''\'''\''\'\'''\''
fi
step="verifying the running system"
[ "$(readlink -f "$RUN/current-system")" = "$PREVIOUS" ]
if [ "$CHECK_HEALTH" = 1 ]; then
  step="checking $HEALTH_URL"
  tries=0
  until curl -fsS -o /dev/null --max-time 5 "$HEALTH_URL"; do
    tries=$((tries + 1))
    [ "$tries" -lt 30 ]
    sleep 2
  done
fi
step="recording the rollback"
rm -rf "$STATE/rolled-back"
mv "$PENDING" "$STATE/rolled-back"
systemctl stop attic-infra-rollback.timer 2>/dev/null || true
echo "ok $DEPLOY_ID" > "$STATE/rollback.result"
echo "attic-infra: rolled back deploy $DEPLOY_ID; the host runs $PREVIOUS again"
'\''\'\'''\'' | sed -e "s|@PREVIOUS@|$previous|g" -e "s|@NEXT@|$toplevel|g" -e "s|^CHECK_HEALTH=1$|CHECK_HEALTH=$check_health|" > "$PENDING/rollback.sh"
chmod 0700 "$PENDING/rollback.sh"

systemctl stop attic-infra-rollback.timer attic-infra-rollback.service 2>/dev/null || true
systemctl reset-failed attic-infra-rollback.timer attic-infra-rollback.service 2>/dev/null || true
echo "$DEPLOY_ID" > "$PENDING/id"
systemd-run --on-active=180 --unit=attic-infra-rollback \
  --description="attic-infra: roll back deploy $DEPLOY_ID unless confirmed" /bin/sh "$PENDING/rollback.sh" >/dev/null
echo "armed: unless confirmed within 180 s, the host rolls back to $previous"
# From here on the armed rollback owns the outcome: it must be able to take the lock while this
# session activates (it waits for the activation itself), even if this session hangs.
exec 9>&-

env_changed=0
if ! cmp -s "$work/env" "$ENV_FILE"; then
  env_changed=1
  install -m 0600 -o root -g root "$work/env" "$ENV_FILE.next"
  mv -f "$ENV_FILE.next" "$ENV_FILE"
fi
# Its own unit, as nixos-rebuild does: the activation survives this session.
if ! timeout 90 systemd-run --unit=attic-infra-activate --collect --wait --pipe --quiet \
  "$toplevel/bin/switch-to-configuration" test > "$work/activate.log" 2>&1; then
  tail -n 40 "$work/activate.log" >&2
  roll_back_and_fail "activating $toplevel failed (last lines above)"
fi
# The rollback may have fired meanwhile (this session could have been cut off and linger): act
# on the host again only under the lock, and only while this deploy is still the pending one.
lock
[ "$(cat "$PENDING/id" 2>/dev/null || true)" = "$DEPLOY_ID" ]   || fail "deploy $DEPLOY_ID was rolled back while it activated (the dead-man fired: journalctl -u attic-infra-rollback); run pulumi up again"
if [ "$env_changed" = 1 ]; then systemctl restart '\''\'\'''\''atticd.service'\''\'\'''\''; fi
exec 9>&-
health || roll_back_and_fail "$HEALTH_URL did not answer within 30 s of the activation"
echo "activated $toplevel; $HEALTH_URL answers; awaiting the confirm over a new connection"
'\''
if [ "$(id -u)" = 0 ]; then exec /bin/sh -c "$s"; fi
if sudo -n true 2>/dev/null; then exec sudo -n /bin/sh -c "$s"; fi
echo "attic-infra: user $(id -un) cannot run sudo without a password; connect as root or allow passwordless sudo" >&2
exit 1' || status=$?
if [ "$status" = 255 ]; then
  echo "attic-infra: the SSH connection to $target failed or was lost during deploy 5099e4f9a323921397291c1042fa7a0a. If the new system was activated, the host rolls back by itself within 180 s; run pulumi up again: it resumes the deploy while its rollback is armed, else deploys again." >&2
  exit 1
elif [ "$status" != 0 ]; then
  echo "attic-infra: deploy 5099e4f9a323921397291c1042fa7a0a failed on $target (exit $status; the lines above say why). Run pulumi up again once the cause is fixed." >&2
  exit 1
fi
attempt=1
while :; do
  status=0
  # shellcheck disable=SC1003,SC2016 # a script for the host, quoted: expanded there
  remote 's='\''set -eu
# attic-infra: confirm a deploy from a new connection. Generated; see components/nixosHost/scripts.ts.
CONFIG_DIR='\''\'\'''\''/etc/nixos'\''\'\'''\''
MODULE='\''\'\'''\''/etc/nixos/attic-infra/atticd.nix'\''\'\'''\''
STATE='\''\'\'''\''/var/lib/attic-infra'\''\'\'''\''
PENDING='\''\'\'''\''/var/lib/attic-infra/pending-deploy'\''\'\'''\''
PROFILE='\''\'\'''\''/nix/var/nix/profiles/system'\''\'\'''\''
RUN='\''\'\'''\''/run'\''\'\'''\''
HEALTH_URL='\''\'\'''\''http://127.0.0.1:8080/'\''\'\'''\''
ENV_FILE='\''\'\'''\''/var/lib/attic-infra/atticd.env'\''\'\'''\''
fail() {
  echo "attic-infra: $*" >&2
  exit 1
}
command -v nixos-rebuild >/dev/null 2>&1 || fail "nixos-rebuild not found on $(uname -n): this is not a NixOS host"
if ! grep -rqs --include='\''\'\'''\''*.nix'\''\'\'''\'' --exclude-dir=attic-infra '\''\'\'''\''attic-infra/atticd\.nix'\''\'\'''\'' "$CONFIG_DIR"; then
  fail "no .nix file in $CONFIG_DIR imports ./attic-infra/atticd.nix; add \"imports = [ ./attic-infra/atticd.nix ];\" to the host'\''\'\'''\''s configuration (docs/office.md, one-time host setup)"
fi
DEPLOY_ID=5099e4f9a323921397291c1042fa7a0a
exec 9>"$STATE/lock"
flock -w 60 9 || fail "the deploy lock $STATE/lock is still held after 60 s (a rollback running?); run pulumi up again"
current=$(readlink -f "$RUN/current-system")
if [ "$(cat "$PENDING/id" 2>/dev/null || true)" != "$DEPLOY_ID" ]; then
  if [ "$(cat "$STATE/deployed" 2>/dev/null || true)" = "$DEPLOY_ID" ] && [ "$current" = "$(cat "$STATE/deployed.toplevel")" ]; then
    echo "deploy $DEPLOY_ID already confirmed"
    exit 0
  fi
  if [ "$(cat "$STATE/rolled-back/id" 2>/dev/null || true)" = "$DEPLOY_ID" ]; then
    fail "deploy $DEPLOY_ID was rolled back before it was confirmed (the dead-man timer fired: journalctl -u attic-infra-rollback); run pulumi up again to redeploy, or raise the rollback window if it was too short"
  fi
  fail "deploy $DEPLOY_ID is not pending on $(uname -n); run pulumi up again"
fi
toplevel=$(cat "$PENDING/toplevel")
[ "$current" = "$toplevel" ] \
  || fail "deploy $DEPLOY_ID is pending but the host runs $current, not $toplevel (rebooted inside the window?); run pulumi up again: it rolls the pending deploy back and redeploys"
curl -fsS -o /dev/null --max-time 5 "$HEALTH_URL" \
  || fail "$HEALTH_URL does not answer; not confirming: the host rolls back by itself (journalctl -u attic-infra-rollback)"
# The timer stays armed until the end: if anything below fails, the rollback undoes it (it restores
# the boot default and the module it finds changed).
# Only the first attempt records it: a retried confirm may find its own module already live.
if [ ! -e "$PENDING/module.previous" ] && [ ! -e "$PENDING/module.absent" ]; then
  if [ -f "$MODULE" ]; then cp -p "$MODULE" "$PENDING/module.previous"; else touch "$PENDING/module.absent"; fi
fi
nix-env -p "$PROFILE" --set "$toplevel"
"$toplevel/bin/switch-to-configuration" boot
mkdir -p "$(dirname "$MODULE")"
cp "$PENDING/module.nix" "$MODULE.confirm"
mv -f "$MODULE.confirm" "$MODULE"
# Leftovers of the layout before the pending path (staged .next files, the old rollback).
rm -f "$MODULE.next" "$MODULE.previous" "$ENV_FILE.next" "$ENV_FILE.previous" "$STATE/rollback.sh" "$STATE/pending"
echo "$DEPLOY_ID" > "$STATE/deployed"
echo "$toplevel" > "$STATE/deployed.toplevel"
rm -rf "$STATE/confirmed"
mv "$PENDING" "$STATE/confirmed"
systemctl stop attic-infra-rollback.timer
echo "confirmed deploy $DEPLOY_ID: $toplevel is the boot default and the module is live; rollback disarmed"
'\''
if [ "$(id -u)" = 0 ]; then exec /bin/sh -c "$s"; fi
if sudo -n true 2>/dev/null; then exec sudo -n /bin/sh -c "$s"; fi
echo "attic-infra: user $(id -un) cannot run sudo without a password; connect as root or allow passwordless sudo" >&2
exit 1' < /dev/null || status=$?
  [ "$status" = 0 ] && exit 0
  if [ "$status" = 255 ] && [ "$attempt" -lt 2 ]; then
    attempt=$((attempt + 1))
    continue
  fi
  if [ "$status" = 255 ]; then
    echo "attic-infra: could not reach $target over a new SSH connection to confirm deploy 5099e4f9a323921397291c1042fa7a0a: the new system may have cut the host off. It rolls back by itself within 180 s; run pulumi up again once the host answers." >&2
  else
    echo "attic-infra: the confirm of deploy 5099e4f9a323921397291c1042fa7a0a failed on $target (the lines above say why). Run pulumi up again." >&2
  fi
  exit 1
done
