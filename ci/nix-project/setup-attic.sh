#!/usr/bin/env bash
# Configure Nix in a CI job to use an attic cache: substitute from it, and push to it when a token
# is available. Fork pull requests get no secrets: they substitute read-only and say so.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: setup-attic.sh

Configures the attic client and Nix for this CI job, from the environment:
  ATTIC_ENDPOINT     the attic API endpoint, e.g. https://attic.example.com/   (required)
  ATTIC_CACHE        the cache name, e.g. n3x                                  (required)
  ATTIC_TOKEN        a token with pull (and push) permission; empty: read-only
  ATTIC_SUBSTITUTER  the cache's substituter URL   (read-only mode; default <endpoint><cache>)
  ATTIC_PUBLIC_KEY   the cache's public key         (required in read-only mode)

With a token: writes the attic client config (the token goes to a 0600 file, never on a command
line) and runs `attic use`, which adds the substituter, its key and credentials to Nix's config.
Without one: adds the substituter and key to Nix's user config; pushing is disabled.
All values come from `pulumi stack output` (see `npm run ci-secrets`).
USAGE
}

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  "") ;;
  *) echo "setup-attic.sh: unexpected argument $1 (see --help)" >&2; exit 2 ;;
esac

: "${ATTIC_ENDPOINT:?ATTIC_ENDPOINT is not set: the attic API endpoint (stack output <site>.endpoint)}"
: "${ATTIC_CACHE:?ATTIC_CACHE is not set: the cache name}"
config_home="${XDG_CONFIG_HOME:-$HOME/.config}"
endpoint="${ATTIC_ENDPOINT%/}/"

if [ -n "${ATTIC_TOKEN:-}" ]; then
  command -v attic >/dev/null 2>&1 || { echo "setup-attic.sh: the attic client is not installed (nix profile install nixpkgs#attic-client)" >&2; exit 1; }
  mkdir -p "$config_home/attic"
  (umask 077 && printf '%s' "$ATTIC_TOKEN" > "$config_home/attic/ci.token")
  cat > "$config_home/attic/config.toml" <<TOML
default-server = "ci"

[servers.ci]
endpoint = "$endpoint"
token-file = "$config_home/attic/ci.token"
TOML
  attic use "ci:$ATTIC_CACHE"
  echo "attic: using cache $ATTIC_CACHE at $endpoint (pull and push)"
else
  : "${ATTIC_PUBLIC_KEY:?ATTIC_PUBLIC_KEY is not set: needed to trust the cache without a token}"
  substituter="${ATTIC_SUBSTITUTER:-$endpoint$ATTIC_CACHE}"
  mkdir -p "$config_home/nix"
  {
    echo "extra-substituters = $substituter"
    echo "extra-trusted-public-keys = $ATTIC_PUBLIC_KEY"
  } >> "$config_home/nix/nix.conf"
  echo "attic: no ATTIC_TOKEN (a fork pull request?): substituting read-only from $substituter; results will not be pushed"
fi
