set -eu
# attic-infra: confirm a deploy from a new connection. Generated; see components/nixosHost/scripts.ts.
CONFIG_DIR='/etc/nixos'
MODULE='/etc/nixos/attic-infra/atticd.nix'
STATE='/var/lib/attic-infra'
PENDING='/var/lib/attic-infra/pending-deploy'
PROFILE='/nix/var/nix/profiles/system'
RUN='/run'
HEALTH_URL='http://127.0.0.1:8080/'
ENV_FILE='/var/lib/attic-infra/atticd.env'
HEALTH_HOST='cache.example.com'
DEPLOY_ID='81e94e0c94a63e7072015cabe3e29baf'
FLAKE=''
fail() {
  echo "attic-infra: $*" >&2
  exit 1
}
command -v nixos-rebuild >/dev/null 2>&1 || fail "nixos-rebuild not found on $(uname -n): this is not a NixOS host"
if ! grep -rqs --include='*.nix' --exclude-dir=attic-infra 'attic-infra/atticd\.nix' "$CONFIG_DIR"; then
  fail "no .nix file in $CONFIG_DIR imports ./attic-infra/atticd.nix; add \"imports = [ ./attic-infra/atticd.nix ];\" to the host's configuration (docs/office.md, one-time host setup)"
fi
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
curl -fsS -o /dev/null --max-time 5 ${HEALTH_HOST:+-H "Host: $HEALTH_HOST"} "$HEALTH_URL" \
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
if [ -n "$FLAKE" ] && [ -d "$CONFIG_DIR/.git" ]; then
  git -C "$CONFIG_DIR" -c safe.directory='*' add --intent-to-add -- 'attic-infra/atticd.nix' \
    || fail "could not add attic-infra/atticd.nix to the flake's git index in $CONFIG_DIR"
fi
# Leftovers of the layout before the pending path (staged .next files, the old rollback).
rm -f "$MODULE.next" "$MODULE.previous" "$ENV_FILE.next" "$ENV_FILE.previous" "$STATE/rollback.sh" "$STATE/pending"
echo "$DEPLOY_ID" > "$STATE/deployed"
echo "$toplevel" > "$STATE/deployed.toplevel"
rm -rf "$STATE/confirmed"
mv "$PENDING" "$STATE/confirmed"
systemctl stop attic-infra-rollback.timer
echo "confirmed deploy $DEPLOY_ID: $toplevel is the boot default and the module is live; rollback disarmed"
