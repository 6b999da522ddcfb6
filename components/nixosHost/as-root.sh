# shellcheck shell=sh disable=SC2154
# Runs the script in $s as root. SC2154: the line before this file assigns s (scripts.ts asRoot).

if [ "$(id -u)" = 0 ]; then exec /bin/sh -c "$s"; fi
if sudo -n true 2>/dev/null; then exec sudo -n /bin/sh -c "$s"; fi
echo "attic-infra: user $(id -un) cannot run sudo without a password; connect as root or allow passwordless sudo" >&2
exit 1
