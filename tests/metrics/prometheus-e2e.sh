#!/bin/bash
# End-to-end check of the metrics chain with a real Prometheus:
#
#   tests/metrics/prometheus-e2e.sh HOST:PORT   # a running vswitchd --metrics-addr
#   tests/metrics/prometheus-e2e.sh --fake      # start tests/metrics/fake_exporter.py
#
# 1. `promtool check metrics` on the target's GET /metrics;
# 2. starts /usr/bin/prometheus on 127.0.0.1:<free port> with a temporary config
#    (scrape_interval 1s, job "vswitchd" -> the target, the alert rules loaded)
#    and a temporary TSDB directory;
# 3. waits (bounded) until the target is up and has been scraped a few times;
# 4. runs dashboard_exprs.py: every dashboard expression must return data;
# 5. checks that every alert rule evaluates without error.
# Prometheus (and the fake exporter) are stopped by pid and the temporary
# directory removed on every exit path.
#
# The caller is expected to have sent traffic through the switch (including a
# few frames that get dropped) before or while this runs.
#
# Environment: PROMETHEUS, PROMTOOL, PYTHON (default: Debian's /usr/bin ones),
# E2E_TIMEOUT (seconds to wait for the target, default 60),
# RATE_INTERVAL (value for $__rate_interval, default 1m),
# KEEP_TMP=1 to keep the temporary directory for debugging.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
PROMTOOL=${PROMTOOL:-/usr/bin/promtool}
PYTHON=${PYTHON:-/usr/bin/python3}
E2E_TIMEOUT=${E2E_TIMEOUT:-60}
RATE_INTERVAL=${RATE_INTERVAL:-1m}
DASHBOARD=$ROOT/dashboards/vswitchd.json
RULES=$ROOT/dashboards/vswitchd-alerts.yml
MIN_SCRAPES=3

log() { printf '[prometheus-e2e] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

usage() { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -eq 1 ] || usage
case $1 in
    -h|--help) usage ;;
esac

for bin in "$PROMETHEUS" "$PROMTOOL" "$PYTHON"; do
    [ -x "$bin" ] || die "$bin not found (Debian: apt-get install prometheus python3)"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/vswitchd-prom-e2e.XXXXXX")
PROM_PID=
FAKE_PID=

stop_pid() { # pid name: TERM, wait up to 5 s, then KILL; only our own children
    local pid=$1 name=$2 i
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name (pid $pid) ignored SIGTERM, killing"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$PROM_PID" prometheus
    stop_pid "$FAKE_PID" fake_exporter
    if [ "$rc" -ne 0 ] && [ -s "$TMP/prometheus.log" ]; then
        log "last lines of prometheus.log:"
        tail -n 20 "$TMP/prometheus.log" >&2 || true
    fi
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        log "kept $TMP"
    else
        rm -rf -- "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# GET $1 (a Prometheus API path + query string) and evaluate the python
# expression $2 on the decoded JSON `j`; prints the result, fails quietly.
api() {
    "$PYTHON" - "$PROM_URL$1" "$2" <<'EOF' 2>/dev/null
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
    j = json.load(r)
print(eval(sys.argv[2], {}, {"j": j}))
EOF
}

urlq() { "$PYTHON" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# --- the target --------------------------------------------------------------
if [ "$1" = --fake ]; then
    "$PYTHON" "$HERE/fake_exporter.py" --listen 127.0.0.1:0 --port-file "$TMP/fake.addr" \
        >"$TMP/fake.log" 2>&1 &
    FAKE_PID=$!
    for _ in $(seq 100); do
        [ -s "$TMP/fake.addr" ] && break
        kill -0 "$FAKE_PID" 2>/dev/null || die "fake_exporter exited: $(cat "$TMP/fake.log")"
        sleep 0.1
    done
    [ -s "$TMP/fake.addr" ] || die "fake_exporter did not start listening within 10 s"
    TARGET=$(cat "$TMP/fake.addr")
    log "fake exporter (pid $FAKE_PID) on $TARGET"
else
    TARGET=$1
fi
case $TARGET in
    *://*) die "give HOST:PORT, not a URL: $TARGET" ;;
    *:*) ;;
    *) die "give HOST:PORT: $TARGET" ;;
esac

# --- 1. exposition format ------------------------------------------------------
curl -fsS --max-time 5 "http://$TARGET/metrics" -o "$TMP/scrape.txt" \
    || die "GET http://$TARGET/metrics failed"
if ! "$PROMTOOL" check metrics <"$TMP/scrape.txt" >"$TMP/lint.txt" 2>&1; then
    cat "$TMP/lint.txt" >&2
    die "promtool check metrics found problems in http://$TARGET/metrics"
fi
log "promtool check metrics: ok ($(grep -vc '^#' "$TMP/scrape.txt") samples)"

# --- 2. prometheus -------------------------------------------------------------
cat >"$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $RULES
scrape_configs:
  - job_name: vswitchd
    static_configs:
      - targets: ['$TARGET']
EOF
"$PROMTOOL" check config "$TMP/prometheus.yml" >"$TMP/check-config.txt" 2>&1 \
    || { cat "$TMP/check-config.txt" >&2; die "promtool check config"; }

# The free port may be taken between probing and binding: retry a few times.
for attempt in 1 2 3; do
    PORT=$(free_port)
    PROM_URL=http://127.0.0.1:$PORT
    "$PROMETHEUS" \
        --config.file="$TMP/prometheus.yml" \
        --storage.tsdb.path="$TMP/data" \
        --web.listen-address="127.0.0.1:$PORT" \
        --storage.tsdb.retention.time=1h \
        >"$TMP/prometheus.log" 2>&1 &
    PROM_PID=$!
    ready=
    for _ in $(seq 100); do
        if ! kill -0 "$PROM_PID" 2>/dev/null; then
            wait "$PROM_PID" 2>/dev/null || true
            PROM_PID=
            break
        fi
        if curl -fs --max-time 1 "$PROM_URL/-/ready" >/dev/null 2>&1; then
            ready=1
            break
        fi
        sleep 0.1
    done
    [ -n "$ready" ] && break
    if [ -n "$PROM_PID" ]; then
        die "prometheus (pid $PROM_PID) not ready on $PROM_URL within 10 s"
    fi
    grep -q 'address already in use' "$TMP/prometheus.log" \
        || die "prometheus exited at start"
    log "port $PORT taken, retrying ($attempt/3)"
done
[ -n "$ready" ] || die "prometheus could not bind a free port"
log "prometheus (pid $PROM_PID) on $PROM_URL scraping $TARGET every 1s"

# --- 3. wait for the target ------------------------------------------------------
q=$(urlq "sum_over_time(up{job=\"vswitchd\"}[1m]) and on (job, instance) (up{job=\"vswitchd\"} == 1)")
deadline=$((SECONDS + E2E_TIMEOUT))
scrapes=0
while :; do
    scrapes=$(api "/api/v1/query?query=$q" \
        'int(float(j["data"]["result"][0]["value"][1])) if j["data"]["result"] else 0' || echo 0)
    [ "$scrapes" -ge "$MIN_SCRAPES" ] && break
    if [ "$SECONDS" -ge "$deadline" ]; then
        err=$(api "/api/v1/targets" \
            '"; ".join(t["health"] + ": " + t["lastError"] for t in j["data"]["activeTargets"])' || true)
        die "target $TARGET not up after ${E2E_TIMEOUT}s (successful scrapes: $scrapes; targets: ${err:-?})"
    fi
    sleep 0.5
done
log "target up, $scrapes scrapes"

# --- 4. dashboard expressions ---------------------------------------------------
"$PYTHON" "$HERE/dashboard_exprs.py" check --prometheus "$PROM_URL" \
    --dashboard "$DASHBOARD" --rate-interval "$RATE_INTERVAL" \
    || die "dashboard expressions failed or returned no data (see above)"

# --- 5. alert rules evaluate ----------------------------------------------------
deadline=$((SECONDS + 10))
while :; do
    rules=$(api "/api/v1/rules" '" ".join(r["name"] + "=" + r["health"] for g in j["data"]["groups"] for r in g["rules"])' || true)
    case " $rules " in
        *=unknown*|"  ") ;;  # not evaluated yet
        *) break ;;
    esac
    [ "$SECONDS" -lt "$deadline" ] || break
    sleep 0.5
done
bad=$(printf '%s\n' $rules | grep -v '=ok$' || true)
[ -n "$rules" ] || die "no alert rules loaded from $RULES"
[ -z "$bad" ] || die "alert rules not healthy: $bad"
firing=$(api "/api/v1/alerts" '" ".join(sorted({a["labels"]["alertname"] + "(" + a["state"] + ")" for a in j["data"]["alerts"]})) or "none"' || echo "?")
log "alert rules healthy: $rules; active alerts: $firing"
log "PASS"
