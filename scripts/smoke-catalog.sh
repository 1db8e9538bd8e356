#!/usr/bin/env bash
# Starts the indicator-catalog binary on SQLite and makes the README's
# grpcurl calls with buf curl (a reflection client like grpcurl): list the
# methods, check health, define "FCR, 3-day window, chat only" from a JSON
# body and read it back, then stop the server with SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/.."
BUF=${BUF:-.ci/.tools/node_modules/.bin/buf}
ADDR=127.0.0.1:${SMOKE_PORT:-50151}
URL=http://$ADDR
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

cargo build -q -p indicator-catalog
KPI_LISTEN_ADDR=$ADDR KPI_DATABASE_URL="sqlite://$work/kpi.db?mode=rwc" target/debug/indicator-catalog >"$work/log" 2>&1 &
pid=$!

call() { "$BUF" curl --protocol grpc --http2-prior-knowledge "$@"; }

for _ in $(seq 1 100); do
  call -d '{}' "$URL/grpc.health.v1.Health/Check" >/dev/null 2>&1 && break
  kill -0 "$pid" || { cat "$work/log"; exit 1; }
  sleep 0.1
done

call --list-methods "$URL" | tee "$work/methods"
grep -q '^kpi.catalog.v1.CatalogService/CreateIndicator$' "$work/methods"
call -d '{"service":"kpi.catalog.v1.CatalogService"}' "$URL/grpc.health.v1.Health/Check" | grep -q '"SERVING"'
call -d @examples/catalog/create-fcr-3d-chat.json "$URL/kpi.catalog.v1.CatalogService/CreateIndicator" >/dev/null
call -d '{"name":"tenants/acme/indicators/fcr_3d_chat"}' "$URL/kpi.catalog.v1.CatalogService/GetIndicator" | tee "$work/fcr"
grep -q '"state": "VERSION_STATE_ACTIVE"' "$work/fcr"
grep -q 'channel == \\"chat\\"' "$work/fcr"
call -d @examples/catalog/create-vip-csat-tree.json "$URL/kpi.catalog.v1.CatalogService/CreateIndicator" | grep -q 'customer_segment in'
call -d '{"parent":"tenants/acme","timeZone":"Asia/Shanghai"}' "$URL/kpi.catalog.v1.CatalogService/InstallStarterKit" | grep -q '"created"'
# A bad request answers INVALID_ARGUMENT naming the field.
if call -d '{"parent":"tenants/acme","indicator":{"key":"bad","kind":"INDICATOR_KIND_SIMPLE","measure":{"factType":"FACT_TYPE_TICKET","aggregation":"AGGREGATION_MEAN","field":"chanel"},"direction":"DIRECTION_HIGHER_IS_BETTER","category":"CATEGORY_OUTCOME"}}' \
    "$URL/kpi.catalog.v1.CatalogService/CreateIndicator" >"$work/bad" 2>&1; then
  echo "a bad indicator was accepted"; exit 1
fi
grep -q 'invalid_argument' "$work/bad" && grep -q 'indicator.measure.field' "$work/bad"

kill -TERM "$pid"
wait "$pid"
grep -q 'stopped' "$work/log"
echo "smoke: ok"
