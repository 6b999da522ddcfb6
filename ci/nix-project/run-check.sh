#!/usr/bin/env bash
# Build one flake check with Nix, retrying transient failures, and record the result for report.sh.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: run-check.sh NAME [--system SYSTEM] [--retries N]

Runs `nix build .#checks.<system>.<NAME> --print-build-logs`, up to 1 + N times (default N=2:
downloads and builders fail transiently), leaves the result at ./result-<NAME>, and appends a line
to $ATTIC_REPORT_FILE (default ./attic-report.tsv) for report.sh. SYSTEM defaults to the current
system. Exits with nix's status of the last attempt. Retries wait attempt x ATTIC_RETRY_DELAY
seconds (default 5).
USAGE
}

name=""
system=""
retries=2
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --system) system="${2:?--system needs a value}"; shift 2 ;;
    --retries) retries="${2:?--retries needs a value}"; shift 2 ;;
    -*) echo "run-check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [ -z "$name" ] || { echo "run-check.sh: one check at a time (see --help)" >&2; exit 2; }; name="$1"; shift ;;
  esac
done
[ -n "$name" ] || { usage >&2; exit 2; }
case "$retries" in '' | *[!0-9]*) echo "run-check.sh: --retries takes a whole number" >&2; exit 2 ;; esac
if [ -z "$system" ]; then
  system=$(nix eval --impure --raw --expr builtins.currentSystem)
fi

report="${ATTIC_REPORT_FILE:-attic-report.tsv}"
attempt=0
start=$(date +%s)
while :; do
  attempt=$((attempt + 1))
  status=0
  nix build ".#checks.$system.$name" --print-build-logs --out-link "result-$name" || status=$?
  if [ "$status" -eq 0 ] || [ "$attempt" -gt "$retries" ]; then break; fi
  echo "run-check.sh: $name failed (attempt $attempt, exit $status); retrying" >&2
  sleep $((attempt * ${ATTIC_RETRY_DELAY:-5}))
done
seconds=$(($(date +%s) - start))
outcome=passed
[ "$status" -eq 0 ] || outcome=failed
printf 'check\t%s\t%s\t%s\t%s\n' "$name" "$outcome" "$attempt" "$seconds" >> "$report"
exit "$status"
