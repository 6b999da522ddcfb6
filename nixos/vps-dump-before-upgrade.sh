# shellcheck shell=sh disable=SC2154
# Runs before every start of atticd on a VPS host with PostgreSQL (the atticd-dump-before-upgrade
# unit's script): when the atticd package differs from the one the last dump was taken for, dump
# the database first. SC2154: the header (vps.ts preUpgradeDumpScript) assigns dir and
# marker; the unit's environment gives ATTICD_PACKAGE.

if [ "$(cat "$marker" 2>/dev/null || true)" = "$ATTICD_PACKAGE" ]; then
  echo "atticd unchanged since the last pre-upgrade dump"
  exit 0
fi
if [ "$(runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_database WHERE datname = 'atticd'")" != 1 ]; then
  echo "no atticd database yet; nothing to dump"
  exit 0
fi
mkdir -p "$dir" "$(dirname "$marker")"
chmod 0700 "$dir"
name="atticd-$(date -u +%Y%m%dT%H%M%SZ).before-upgrade.pgdump"
tmp="$dir/.$name.partial"
trap 'rm -f "$tmp"' EXIT
runuser -u postgres -- pg_dump --format=custom atticd >"$tmp"
mv "$tmp" "$dir/$name"
printf '%s\n' "$ATTICD_PACKAGE" >"$marker"
echo "dumped to $dir/$name before atticd $ATTICD_PACKAGE starts"
