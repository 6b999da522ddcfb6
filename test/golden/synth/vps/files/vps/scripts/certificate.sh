set -eu
# attic-infra: wait for the TLS certificate of cache.example.com. Generated; see components/vps/module.ts.
url='https://cache.example.com/'
deadline=$(($(date +%s) + 300))
while :; do
  if err=$(curl -fsS -o /dev/null --max-time 10 --resolve 'cache.example.com:443:127.0.0.1' "$url" 2>&1); then break; fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "attic-infra: cache.example.com has no valid certificate after 300 s ($err). atticd itself is deployed. Check that the A/AAAA records of cache.example.com point at this host and that port 80 is reachable (journalctl -u caddy), then run pulumi up again." >&2
    exit 1
  fi
  sleep 5
done
echo "https://cache.example.com/ answers with a valid certificate"
