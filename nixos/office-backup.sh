# shellcheck shell=sh disable=SC2154
# The office host's daily backup (the atticd-backup unit's script): sqlite3's online .backup,
# consistent while atticd runs, keeping the newest `keep` files. Backup names sort by time, so the
# shell's sorted glob lists the oldest first. SC2154: the header (office.ts backupScript)
# assigns dir, db and keep.

mkdir -p "$dir"
chmod 0700 "$dir"
if [ ! -f "$db" ]; then
  echo "no atticd database yet; nothing to back up"
  exit 0
fi
stamp=$(date -u +%Y%m%dT%H%M%SZ)
sqlite3 "$db" ".backup '$dir/server-$stamp.db'"
set -- "$dir"/server-*.db
remove=$(($# - keep))
for old in "$@"; do
  [ "$remove" -gt 0 ] || break
  rm -f -- "$old"
  remove=$((remove - 1))
done
echo "backed up to $dir/server-$stamp.db"
