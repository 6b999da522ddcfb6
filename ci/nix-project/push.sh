#!/usr/bin/env bash
# Push build results to the attic cache. A cache problem must never fail the build: this script
# warns and exits 0.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: push.sh [--retries N] PATH...

Pushes each store path (or result symlink) to $ATTIC_CACHE with `attic push`, retrying up to N
times (default 2), waiting attempt x ATTIC_RETRY_DELAY seconds (default 5) between tries.
Pushes nothing without ATTIC_TOKEN (the push token: default-branch jobs only), nor in a pull or
merge request pipeline even with it (GITHUB_EVENT_NAME pull_request*, CI_PIPELINE_SOURCE
merge_request_event or external_pull_request_event): atticd signs whatever is pushed, and every
developer trusts that signature.
Always exits 0; failures are warnings and a line in $ATTIC_REPORT_FILE (default ./attic-report.tsv).
USAGE
}

retries=2
paths=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --retries) retries="${2:?--retries needs a value}"; shift 2 ;;
    -*) echo "push.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) paths+=("$1"); shift ;;
  esac
done
case "$retries" in '' | *[!0-9]*) echo "push.sh: --retries takes a whole number" >&2; exit 2 ;; esac
report="${ATTIC_REPORT_FILE:-attic-report.tsv}"

case "${GITHUB_EVENT_NAME:-}:${CI_PIPELINE_SOURCE:-}" in
  pull_request*:* | *:merge_request_event | *:external_pull_request_event)
    echo "::warning::push.sh: this is a pull/merge request pipeline; it never pushes (unreviewed code would be signed into the cache): nothing pushed" >&2
    printf 'push\t-\tskipped\t0\t0\n' >> "$report"
    exit 0
    ;;
esac
if [ -z "${ATTIC_TOKEN:-}" ]; then
  echo "push.sh: no ATTIC_TOKEN (the push token reaches default-branch jobs only): nothing pushed"
  printf 'push\t-\tskipped\t0\t0\n' >> "$report"
  exit 0
fi
if [ "${#paths[@]}" -eq 0 ]; then
  echo "push.sh: no paths given; nothing pushed"
  exit 0
fi
if [ -z "${ATTIC_CACHE:-}" ] || ! command -v attic >/dev/null 2>&1; then
  echo "::warning::push.sh: ATTIC_CACHE is unset or the attic client is missing; nothing pushed" >&2
  printf 'push\t-\tfailed\t0\t0\n' >> "$report"
  exit 0
fi

attempt=0
start=$(date +%s)
while :; do
  attempt=$((attempt + 1))
  status=0
  attic push "ci:$ATTIC_CACHE" "${paths[@]}" || status=$?
  if [ "$status" -eq 0 ] || [ "$attempt" -gt "$retries" ]; then break; fi
  echo "push.sh: attic push failed (attempt $attempt, exit $status); retrying" >&2
  sleep $((attempt * ${ATTIC_RETRY_DELAY:-5}))
done
seconds=$(($(date +%s) - start))
if [ "$status" -eq 0 ]; then
  printf 'push\t%s\tpassed\t%s\t%s\n' "${#paths[@]} paths" "$attempt" "$seconds" >> "$report"
else
  echo "::warning::push.sh: pushing to $ATTIC_CACHE failed after $attempt attempts (exit $status); the build result stands" >&2
  printf 'push\t%s\tfailed\t%s\t%s\n' "${#paths[@]} paths" "$attempt" "$seconds" >> "$report"
fi
exit 0
