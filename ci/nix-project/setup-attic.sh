#!/usr/bin/env bash
# Configure Nix in a CI job to use an attic cache: substitute from it, and push to it when the push
# token is available (default-branch jobs only). Pull requests get the pull-only token; fork pull
# requests get no secrets at all: both substitute and say so.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: setup-attic.sh

Configures the attic client and Nix for this CI job, from the environment:
  ATTIC_ENDPOINT     the attic API endpoint, e.g. https://attic.example.com/   (required)
  ATTIC_CACHE        the cache name, e.g. n3x                                  (required)
  ATTIC_TOKEN        the push token (pull and push): default-branch jobs only
  ATTIC_PULL_TOKEN   the pull-only token: used when ATTIC_TOKEN is empty (pull requests)
  ATTIC_SUBSTITUTER  the cache's substituter URL   (tokenless mode; default <endpoint><cache>)
  ATTIC_PUBLIC_KEY   the cache's public key         (required in tokenless mode)

With a token: writes the attic client config (the token goes to a 0600 file, never on a command
line) and runs `attic use`, which adds the substituter, its key and credentials to Nix's config.
Without one (fork pull requests): adds the substituter and key to Nix's user config.
Only ATTIC_TOKEN lets push.sh push. All values come from `pulumi stack output` (`npm run ci-secrets`).
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

token="${ATTIC_TOKEN:-}"
access="pull and push"
if [ -z "$token" ] && [ -n "${ATTIC_PULL_TOKEN:-}" ]; then
  token="$ATTIC_PULL_TOKEN"
  access="pull only: results are not pushed"
fi

if [ -n "$token" ]; then
  command -v attic >/dev/null 2>&1 || { echo "setup-attic.sh: the attic client is not installed (the templates install it pinned: nix profile install github:NixOS/nixpkgs/<revision>#attic-client)" >&2; exit 1; }
  mkdir -p "$config_home/attic"
  (umask 077 && printf '%s' "$token" > "$config_home/attic/ci.token")
  cat > "$config_home/attic/config.toml" <<TOML
default-server = "ci"

[servers.ci]
endpoint = "$endpoint"
token-file = "$config_home/attic/ci.token"
TOML
  attic use "ci:$ATTIC_CACHE"
  echo "attic: using cache $ATTIC_CACHE at $endpoint ($access)"
else
  : "${ATTIC_PUBLIC_KEY:?ATTIC_PUBLIC_KEY is not set: needed to trust the cache without a token}"
  substituter="${ATTIC_SUBSTITUTER:-$endpoint$ATTIC_CACHE}"
  mkdir -p "$config_home/nix"
  {
    echo "extra-substituters = $substituter"
    echo "extra-trusted-public-keys = $ATTIC_PUBLIC_KEY"
  } >> "$config_home/nix/nix.conf"
  echo "attic: no token (a fork pull request?): substituting read-only from $substituter; results will not be pushed"
fi
