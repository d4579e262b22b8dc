#!/usr/bin/env bash
# Serve the Eventdesk console with the subscriber worker beside it; load the demo on first run.
set -euo pipefail
host=${1:-127.0.0.1}
port=${2:-8000}
py=.venv/bin/python

$py manage.py ensure_operator
$py manage.py seed_demo   # does nothing when the demo history is already there

# The worker runs the subscribers of EVENTDESK_SUBSCRIBERS (the demo's by default).
# It stops (SIGTERM: finishes its current batch, at most EVENTDESK_SHUTDOWN_TIMEOUT_SECONDS)
# when the console stops; a SIGTERM or Ctrl-C to the whole group reaches both at once,
# and a repeated SIGTERM does the worker no harm.
$py manage.py run_subscribers &
worker=$!
trap 'kill -TERM "$worker" 2>/dev/null || true; wait "$worker" 2>/dev/null || true' EXIT

echo
echo "Eventdesk console: http://$host:$port/admin/   (Ctrl-C stops it and the worker)"
echo "Subscribers:       http://$host:$port/admin/subscribers/bookmark/"
echo "REST API docs:     http://$host:$port/agent/docs"
echo "MCP (HTTP):        http://$host:$port/mcp   (Bearer token: manage.py create_api_token admin)"
# uvicorn serves the ASGI app: Django and the MCP endpoint (runserver cannot serve /mcp).
# On SIGTERM it waits for requests in flight, but not for ever (an open stream, say).
$py -m uvicorn config.asgi:application --host "$host" --port "$port" --no-access-log \
    --timeout-graceful-shutdown 10
