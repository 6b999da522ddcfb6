# shellcheck shell=sh
# The checks every remote script starts with (scripts.ts remoteScript): this is NixOS, and the
# host's configuration imports the module. After the header (set -eu, CONFIG_DIR, ...).

fail() {
  echo "attic-infra: $*" >&2
  exit 1
}
command -v nixos-rebuild >/dev/null 2>&1 || fail "nixos-rebuild not found on $(uname -n): this is not a NixOS host"
if ! grep -rqs --include='*.nix' --exclude-dir=attic-infra 'attic-infra/atticd\.nix' "$CONFIG_DIR"; then
  fail "no .nix file in $CONFIG_DIR imports ./attic-infra/atticd.nix; add \"imports = [ ./attic-infra/atticd.nix ];\" to the host's configuration (docs/office.md, one-time host setup)"
fi
