set -eu
# attic-infra: roll back deploy 610806c11696684bc62e64aab1ed32d2 unless it was confirmed. Run by systemd
# (unit attic-infra-rollback), never by an SSH session. Generated; see components/nixosHost/scripts.ts.
DEPLOY_ID='610806c11696684bc62e64aab1ed32d2'
MODULE='/etc/nixos/attic-infra/atticd.nix'
STATE='/var/lib/attic-infra'
PENDING='/var/lib/attic-infra/pending-deploy'
PROFILE='/nix/var/nix/profiles/system'
RUN='/run'
ENV_FILE='/var/lib/attic-infra/atticd.env'
DB='/var/lib/atticd/server.db'
HEALTH_URL='http://127.0.0.1:8080/'
HEALTH_HOST=''
UNITS='atticd.service'
PATH="$PREVIOUS/sw/bin:$NEXT/sw/bin"
export PATH
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
migrations() { sqlite3 "$1" 'SELECT group_concat(version) FROM (SELECT version FROM seaql_migrations ORDER BY version)' 2>/dev/null || true; }
# Only a deploy whose service has an SQLite database (DB) snapshots it.
if [ -f "$PENDING/db.snapshot" ] && [ "$(migrations "$DB")" != "$(migrations "$PENDING/db.snapshot")" ]; then
  # The new system migrated the database; the previous one cannot open it (no down-migrations).
  # shellcheck disable=SC2086 # UNITS is a list of unit names
  systemctl stop $UNITS
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
  # shellcheck disable=SC2086 # UNITS is a list of unit names
  systemctl restart $UNITS
fi
step="verifying the running system"
[ "$(readlink -f "$RUN/current-system")" = "$PREVIOUS" ]
if [ "$CHECK_HEALTH" = 1 ]; then
  step="checking $HEALTH_URL"
  tries=0
  until curl -fsS -o /dev/null --max-time 5 ${HEALTH_HOST:+-H "Host: $HEALTH_HOST"} "$HEALTH_URL"; do
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
