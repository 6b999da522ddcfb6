set -eu
# attic-infra: wait for the TLS certificate of cache.example.com. Generated; see components/vps/module.ts.
url='https://cache.example.com/'
domain='cache.example.com'
wait_seconds='300'
unit='caddy'
deadline=$(($(date +%s) + wait_seconds))
while :; do
  if err=$(curl -fsS -o /dev/null --max-time 10 --resolve "$domain:443:127.0.0.1" "$url" 2>&1); then break; fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "attic-infra: $domain has no valid certificate after $wait_seconds s ($err). atticd itself is deployed. Check that the A/AAAA records of $domain point at this host and that port 80 is reachable (journalctl -u $unit), then run pulumi up again." >&2
    exit 1
  fi
  sleep 5
done
echo "$url answers with a valid certificate"
