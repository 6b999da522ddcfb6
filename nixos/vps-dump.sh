# shellcheck shell=sh disable=SC2154
# The VPS host's daily dump (the atticd-dump unit's script): pg_dump (custom format, as the postgres
# superuser) or sqlite3's online .backup, written beside the older ones; then every dump older than
# keep_days is deleted. With dest (s3://<bucket>/<prefix>), the dump is copied there and expired
# dumps there are deleted too (endpoint: an S3-compatible store's). Names carry a UTC stamp that
# sorts by time, so "older" is a string comparison against the cutoff stamp. SC2154: the header
# (vps.ts dumpScript) assigns dir, keep_days, database, db, dest and endpoint.

mkdir -p "$dir"
chmod 0700 "$dir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
if [ "$database" = postgresql ]; then name="atticd-$stamp.pgdump"; else name="atticd-$stamp.db"; fi
tmp="$dir/.$name.partial"
trap 'rm -f "$tmp"' EXIT
if [ "$database" = postgresql ]; then
  runuser -u postgres -- pg_dump --format=custom atticd >"$tmp"
else
  if [ ! -f "$db" ]; then
    echo "no atticd database yet; nothing to dump"
    exit 0
  fi
  sqlite3 "$db" ".backup '$tmp'"
fi
mv "$tmp" "$dir/$name"
echo "dumped to $dir/$name"
cutoff=$(date -u -d "-$keep_days days" +%Y%m%dT%H%M%SZ)
# Names of dumps (one a line on stdin) stamped before the cutoff.
expired() {
  awk -v cutoff="$cutoff" '/^atticd-[0-9]+T[0-9]+Z\./ { s = substr($0, 8, 16); if (s < cutoff) print }'
}
find "$dir" -maxdepth 1 -name 'atticd-*' -printf '%f\n' | expired | while read -r old; do
  rm -f -- "$dir/$old"
  echo "deleted $dir/$old"
done
if [ -n "$dest" ]; then
  aws s3 cp --only-show-errors ${endpoint:+--endpoint-url "$endpoint"} "$dir/$name" "$dest$name"
  echo "copied to $dest$name"
  aws s3 ls ${endpoint:+--endpoint-url "$endpoint"} "$dest" | awk '{ print $4 }' | expired | while read -r old; do
    aws s3 rm --only-show-errors ${endpoint:+--endpoint-url "$endpoint"} "$dest$old"
    echo "deleted $dest$old"
  done
fi
