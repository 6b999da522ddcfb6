# shellcheck shell=sh
# The teardown holder's create (host.ts): after the host checks, nothing to change.

echo "host ready: NixOS, privileges and the module import are in place"
