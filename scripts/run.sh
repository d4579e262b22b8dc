#!/usr/bin/env bash
# Serve the Eventdesk console (and, once subscribers exist, the worker beside it).
set -euo pipefail
host=${1:-127.0.0.1}
port=${2:-8000}
py=.venv/bin/python

$py manage.py ensure_operator
echo
echo "Eventdesk console: http://$host:$port/admin/   (Ctrl-C stops it)"
exec $py manage.py runserver --noreload "$host:$port"
