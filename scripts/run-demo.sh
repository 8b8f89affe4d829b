#!/usr/bin/env bash
# `make run`: a working store on this machine. Starts a local head office,
# registers and joins a terminal on first run, seeds the terminal with a
# fortnight of demo activity, and opens the terminal app with the simulated
# scanner. Data lives in .demo/ (delete it to start over).
set -euo pipefail
cd "$(dirname "$0")/.."

demo=${DEMO_DIR:-$PWD/.demo}
hq_addr=${HQ_ADDR:-127.0.0.1:8780}
hq_url="ws://$hq_addr/v1/sync"
mkdir -p "$demo"
chmod 700 "$demo"

bin/headoffice serve --listen "$hq_addr" --data "$demo/hq" >"$demo/headoffice.log" 2>&1 &
hq_pid=$!
trap 'kill "$hq_pid" 2>/dev/null || true; wait "$hq_pid" 2>/dev/null || true' EXIT

# Wait for head office to listen (it creates its data on first start).
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/${hq_addr%:*}/${hq_addr#*:}") 2>/dev/null; then break; fi
  if ! kill -0 "$hq_pid" 2>/dev/null; then
    echo "run-demo: head office did not start:" >&2
    tail -n 5 "$demo/headoffice.log" >&2
    exit 1
  fi
  sleep 0.1
done

if [ ! -f "$demo/.joined" ]; then
  code=$(bin/headoffice terminal add --data "$demo/hq" --store demo-store --name till-1 --json |
    sed -n 's/.*"code":"\([^"]*\)".*/\1/p')
  # Head office publishes the demo's rules: the default program plus a
  # running campaign; the terminal receives them over the link.
  bin/headoffice rules set scripts/demo-rules.json --data "$demo/hq" >/dev/null
  bin/pos-agent demo --data "$demo/till"
  bin/pos-agent join --data "$demo/till" --hq "$hq_url" --code "$code"
  # The demo's manager PIN (F9 manager screen, F10 settings), set on the
  # machine as a real till's is: nobody chooses it at the till.
  echo "${DEMO_MANAGER_PIN:-1234}" | bin/pos-agent manager add --data "$demo/till"
  touch "$demo/.joined"
fi

# The demo's console account, added on the machine as head office's are.
if [ ! -f "$demo/.console" ]; then
  printf '%s\n' "${DEMO_CONSOLE_PASSWORD:-demo console}" |
    bin/headoffice operator add --data "$demo/hq" --name admin --role admin >/dev/null
  touch "$demo/.console"
fi

echo "run-demo: head office on $hq_addr (log: $demo/headoffice.log); opening the terminal app" >&2
echo "run-demo: the console is at http://$hq_addr/ (admin / ${DEMO_CONSOLE_PASSWORD:-demo console})" >&2
# In a window: a developer's desktop, not a till (a till runs full screen).
bin/pos-agent run --data "$demo/till" --hq "$hq_url" --scanner sim --window 1024x768
