# shellcheck shell=sh disable=SC2153,SC2164
# The deploy session (scripts.ts deployScript): stage, build, arm the rollback, activate, check
# health. After the header (set -eu, the paths, the service, the times, MODULE_TEXT, ROLLBACK) and
# the host checks. SC2153: PENDING comes from the header (pending is another variable); SC2164:
# set -eu stops at a failed cd.

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
trap 'rm -rf "$work"' EXIT
cat > "$work/env"
timer_armed() { systemctl is-active --quiet attic-infra-rollback.timer; }
# Runs the pending deploy's rollback in its own unit (it survives this session) and waits for it.
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
    [ "$waited" -lt $(((ACTIVATION_SECONDS + HEALTH_SECONDS + 120) * 5)) ] || return 1
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
  fail "$1, and the rollback FAILED: $(cat "$STATE/rollback.result" 2>/dev/null || echo 'no verdict'). The host needs a look: journalctl -u attic-infra-rollback* (docs/runbooks.md)"
}
current() { readlink -f "$RUN/current-system"; }
wait_for_activation() {
  mkdir -p "$RUN/nixos"
  waited=0
  while systemctl is-active --quiet attic-infra-activate.service; do
    [ "$waited" -lt $((ACTIVATION_SECONDS * 10)) ] || break
    sleep 0.1
    waited=$((waited + 1))
  done
  timeout "$ACTIVATION_SECONDS" flock "$RUN/nixos/switch-to-configuration.lock" true \
    || fail "another activation still holds $RUN/nixos/switch-to-configuration.lock after $ACTIVATION_SECONDS s (a nixos-rebuild on the host?); wait for it, then run pulumi up again"
}
health() {
  deadline=$(($(date +%s) + HEALTH_SECONDS))
  until curl -fsS -o /dev/null --max-time 5 ${HEALTH_HOST:+-H "Host: $HEALTH_HOST"} "$HEALTH_URL" 2>/dev/null; do
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
    run_rollback || fail "rolling back the interrupted deploy $DEPLOY_ID FAILED: $(cat "$STATE/rollback.result" 2>/dev/null || echo 'no verdict'). The host needs a look: journalctl -u attic-infra-rollback* (docs/runbooks.md)"
  elif timer_armed; then
    fail "deploy $pending, not this one ($DEPLOY_ID), awaits confirmation on $(uname -n) and its rollback is armed. Let it roll back (journalctl -u attic-infra-rollback) or roll back now with: systemctl start attic-infra-rollback.service — then run pulumi up again"
  else
    echo "attic-infra: deploy $pending was left unconfirmed without an armed rollback (the host rebooted inside the window, or a rollback failed); rolling it back first" >&2
    run_rollback || fail "rolling back the unconfirmed deploy $pending FAILED: $(cat "$STATE/rollback.result" 2>/dev/null || echo 'no verdict'). The host needs a look: journalctl -u attic-infra-rollback* (docs/runbooks.md)"
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
printf '%s' "$MODULE_TEXT" > "$PENDING/module.nix"
chmod 0644 "$PENDING/module.nix"
cp -a "$CONFIG_DIR/." "$work/config"
mkdir -p "$work/config/attic-infra"
cp "$PENDING/module.nix" "$work/config/attic-infra/atticd.nix"
if [ -d "$work/config/.git" ]; then
  # A flake in a git repository ignores untracked files.
  git -C "$work/config" -c safe.directory='*' add --intent-to-add -- 'attic-infra/atticd.nix' \
    || fail "could not add attic-infra/atticd.nix to the flake's git index"
fi
cd "$work"
if [ -n "$FLAKE" ]; then
  set -- --flake "$work/config#${FLAKE#*#}"
else
  set -- -I nixos-config="$work/config/configuration.nix"
fi
if ! timeout "$BUILD_SECONDS" nixos-rebuild build "$@" > "$work/build.log" 2>&1; then
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
  sqlite3 "$DB" ".backup '$PENDING/db.snapshot'" || fail "could not snapshot $DB before the switch; nothing was activated"
  chown --reference="$DB" "$PENDING/db.snapshot"
fi
check_health=0
# A confirmed deploy before this one (of any version of this program): the previous system runs
# the service, so the rollback must see it answer again.
if [ -s "$STATE/deployed" ]; then check_health=1; fi
# The rollback script: the systems it moves between and whether to check health (known here), then
# the rest of it (ROLLBACK, from the program).
{
  echo '#!/bin/sh'
  echo "PREVIOUS='$previous'"
  echo "NEXT='$toplevel'"
  echo "CHECK_HEALTH=$check_health"
  printf '%s' "$ROLLBACK"
} > "$PENDING/rollback.sh"
chmod 0700 "$PENDING/rollback.sh"

systemctl stop attic-infra-rollback.timer attic-infra-rollback.service 2>/dev/null || true
systemctl reset-failed attic-infra-rollback.timer attic-infra-rollback.service 2>/dev/null || true
echo "$DEPLOY_ID" > "$PENDING/id"
systemd-run --on-active="$WINDOW_SECONDS" --unit=attic-infra-rollback \
  --description="attic-infra: roll back deploy $DEPLOY_ID unless confirmed" /bin/sh "$PENDING/rollback.sh" >/dev/null
echo "armed: unless confirmed within $WINDOW_SECONDS s, the host rolls back to $previous"
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
if ! timeout "$ACTIVATION_SECONDS" systemd-run --unit=attic-infra-activate --collect --wait --pipe --quiet \
  "$toplevel/bin/switch-to-configuration" test > "$work/activate.log" 2>&1; then
  tail -n 40 "$work/activate.log" >&2
  roll_back_and_fail "activating $toplevel failed (last lines above)"
fi
# The rollback may have fired meanwhile (this session could have been cut off and linger): act
# on the host again only under the lock, and only while this deploy is still the pending one.
lock
[ "$(cat "$PENDING/id" 2>/dev/null || true)" = "$DEPLOY_ID" ]   || fail "deploy $DEPLOY_ID was rolled back while it activated (the dead-man fired: journalctl -u attic-infra-rollback); run pulumi up again"
# shellcheck disable=SC2086 # UNITS is a list of unit names
if [ "$env_changed" = 1 ]; then systemctl restart $UNITS; fi
exec 9>&-
health || roll_back_and_fail "$HEALTH_URL did not answer within $HEALTH_SECONDS s of the activation"
echo "activated $toplevel; $HEALTH_URL answers; awaiting the confirm over a new connection"
