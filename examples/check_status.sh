#!/bin/bash
# The seed's check_status.sh, unchanged but for overridable paths (whose
# defaults are sluice's PID file and port): it works as it is against
# sluice's PID file and /health endpoint.

PID_FILE="${PID_FILE:-/run/sluice/sluice.pid}"
HEALTH_URL="${HEALTH_URL:-http://localhost:8080/health}"

if [ ! -f "$PID_FILE" ]; then
    echo "Proxy not running (no PID file)"
    exit 1
fi

PID=$(cat "$PID_FILE")
if ! kill -0 "$PID" 2>/dev/null; then
    echo "Proxy not running (stale PID file)"
    exit 1
fi

# Check health endpoint
HTTP_CODE=$(curl -s -o /dev/null -w "%{http_code}" "$HEALTH_URL")
if [ "$HTTP_CODE" = "200" ]; then
    echo "Proxy running and healthy (PID: $PID)"
    exit 0
else
    echo "Proxy running but unhealthy (PID: $PID, HTTP: $HTTP_CODE)"
    exit 1
fi
