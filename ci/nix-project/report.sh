#!/usr/bin/env bash
# Summarise the job's checks and pushes as markdown: into the GitHub step summary when there is one,
# on stdout otherwise (GitLab, local runs).
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: report.sh

Reads $ATTIC_REPORT_FILE (default ./attic-report.tsv, written by run-check.sh and push.sh) and
writes a markdown table to $GITHUB_STEP_SUMMARY when set, to stdout otherwise. Exits 0.
USAGE
}

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  "") ;;
  *) echo "report.sh: unexpected argument $1 (see --help)" >&2; exit 2 ;;
esac

report="${ATTIC_REPORT_FILE:-attic-report.tsv}"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  exec >> "$GITHUB_STEP_SUMMARY"
fi
{
  echo "### Nix checks (cache: ${ATTIC_CACHE:-none})"
  echo
  if [ ! -s "$report" ]; then
    echo "No checks ran."
  else
    echo "| step | what | result | attempts | seconds |"
    echo "|---|---|---|---|---|"
    while IFS=$'\t' read -r kind what result attempts seconds; do
      case "$result" in passed) mark="✅" ;; skipped) mark="⏭️" ;; *) mark="❌" ;; esac
      echo "| $kind | $what | $mark $result | $attempts | $seconds |"
    done < "$report"
  fi
}
