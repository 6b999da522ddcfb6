# shellcheck shell=sh disable=SC2154
# The restore of an office backup, as docs/office.md and docs/runbooks.md give it (as root on the
# host; office.ts restoreCommands writes backup and state before it). atticd is a systemd
# DynamicUser: a file copied in by root stays root's, and atticd could not open it; systemd fixes
# the ownership of the state directory itself, not of files put into it. A -wal/-shm pair left from
# the replaced database would be replayed into the restored one: they go first.

systemctl stop atticd.service
rm -f "$state/server.db-wal" "$state/server.db-shm"
cp "$backup" "$state/server.db"
chown --reference="$state" "$state/server.db"
chmod 0600 "$state/server.db"
systemctl start atticd.service
