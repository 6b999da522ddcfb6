#!/usr/bin/env bash
# The nightly drift and health check of one stack (.github/workflows/nightly.yml): has anything
# changed behind Pulumi's back, and does the cache still work for the people who use it?
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: check.sh STACK

1. Drift: `pulumi preview --stack STACK --refresh --expect-no-changes --diff --policy-pack policy`
   (read-only: it refreshes into a preview, writes no state). Exit 0 is no drift; exit 7 (Pulumi
   3.226 or newer) is drift, reported with the diff; any other exit is a failed preview, reported
   as such, never as drift.
2. Health: `npm run --silent verify -- --stack STACK --json`, its JSON put into the report as is.
Both always run. The report (Markdown) goes to $GITHUB_STEP_SUMMARY, or stdout without one.
Exit 0 when there is no drift and no check failed, 1 otherwise; 2 on a usage error.
USAGE
}

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  "" | -*) usage >&2; exit 2 ;;
esac
stack="$1"
[ $# -eq 1 ] || { echo "check.sh: one stack at a time (see --help)" >&2; exit 2; }
summary="${GITHUB_STEP_SUMMARY:-/dev/stdout}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

preview=0
pulumi preview --stack "$stack" --refresh --expect-no-changes --diff --non-interactive \
  --policy-pack policy > "$work/preview.log" 2>&1 || preview=$?
verify=0
npm run --silent verify -- --stack "$stack" --json > "$work/verify.json" 2> "$work/verify.err" || verify=$?

{
  echo "## Stack \`$stack\`"
  echo
  case "$preview" in
    0) echo "**Drift: none.** \`pulumi preview --refresh --expect-no-changes\` proposes no change." ;;
    7) echo "**Drift: yes.** The refreshed state differs from the program; the diff below says what. Run \`pulumi up --refresh\` to put it back, or change the program to accept it." ;;
    *) echo "**Drift: unknown: the preview failed** (exit $preview; 7 would mean drift). Its output below says why." ;;
  esac
  echo
  echo "<details><summary>pulumi preview (last 200 lines)</summary>"
  echo
  echo '```'
  tail -n 200 "$work/preview.log"
  echo '```'
  echo
  echo "</details>"
  echo
  case "$verify" in
    0) echo "**Health: verify passed** (warnings and skips are in the JSON)." ;;
    1) echo "**Health: verify failed:** the checks with \`\"status\": \"fail\"\` below." ;;
    *) echo "**Health: verify could not run** (exit $verify): $(tr '\n' ' ' < "$work/verify.err")" ;;
  esac
  echo
  echo '```json'
  cat "$work/verify.json"
  echo '```'
} >> "$summary"

if [ "$preview" -ne 0 ] || [ "$verify" -ne 0 ]; then exit 1; fi
exit 0
