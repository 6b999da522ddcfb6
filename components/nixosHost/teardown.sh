# shellcheck shell=sh disable=SC2164
# The holder's delete (scripts.ts teardownScript): an empty module, switched to. After the header
# (set -eu, the paths, ENV_FILE, FLAKE, TIMEOUT_SECONDS, REMOVED_MODULE) and the host checks.
# SC2164: set -eu stops at a failed cd.

exec 9>"$STATE/lock"
flock -w 120 9 || fail "the deploy lock $STATE/lock is still held after 120 s; try again"
systemctl stop attic-infra-rollback.timer 2>/dev/null || true
rm -rf "$PENDING"
if [ -f "$MODULE" ]; then cp -p "$MODULE" "$MODULE.previous"; fi
printf '%s' "$REMOVED_MODULE" > "$MODULE"
work="$STATE/work"
rm -rf "$work"
mkdir -m 0700 "$work"
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! timeout "$TIMEOUT_SECONDS" nixos-rebuild switch ${FLAKE:+--flake "$FLAKE"} > "$work/log" 2>&1; then
  tail -n 40 "$work/log" >&2
  if [ -f "$MODULE.previous" ]; then cp -p "$MODULE.previous" "$MODULE"; fi
  fail "nixos-rebuild switch failed while removing the module (last lines above); the module was restored"
fi
rm -f "$ENV_FILE" "$ENV_FILE.next" "$MODULE.previous" "$MODULE.next" "$STATE/deployed" "$STATE/deployed.toplevel" "$STATE/pending"
echo "removed from the host; the service's state is kept"
