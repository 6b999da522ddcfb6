set -eu
# attic-infra: remove the module from the host (its state is kept). Generated; see components/nixosHost/scripts.ts.
CONFIG_DIR='/etc/nixos'
MODULE='/etc/nixos/attic-infra/atticd.nix'
STATE='/var/lib/attic-infra'
PENDING='/var/lib/attic-infra/pending-deploy'
ENV_FILE='/var/lib/attic-infra/atticd.env'
FLAKE=''
TIMEOUT_SECONDS='600'
# shellcheck disable=SC1003,SC2016 # literal text, expanded nowhere
REMOVED_MODULE='# attic-infra (stack office) was removed from this host. atticd'\''s state in /var/lib/atticd is kept.
# Remove the `./attic-infra/atticd.nix` import from the host'\''s configuration, then this file.
{ ... }:
{ }
'
fail() {
  echo "attic-infra: $*" >&2
  exit 1
}
command -v nixos-rebuild >/dev/null 2>&1 || fail "nixos-rebuild not found on $(uname -n): this is not a NixOS host"
if ! grep -rqs --include='*.nix' --exclude-dir=attic-infra 'attic-infra/atticd\.nix' "$CONFIG_DIR"; then
  fail "no .nix file in $CONFIG_DIR imports ./attic-infra/atticd.nix; add \"imports = [ ./attic-infra/atticd.nix ];\" to the host's configuration (docs/office.md, one-time host setup)"
fi
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
