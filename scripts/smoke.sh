#!/usr/bin/env bash
# Starts the indicator-catalog, data-ingestion and scoring binaries (scoring
# with its in-process cache) on one SQLite file and makes the README's
# grpcurl calls with buf curl (a reflection client like grpcurl): list the
# methods, check health, define "FCR, 3-day window, chat only" from a JSON
# body and read it back, ingest a batch with one bad event, query measures,
# read a scorecard and a leaderboard, then stop the servers with SIGTERM.
# Authentication is on: an API-key file with an admin key of tenant acme
# (the token every call sends) and a service key the services send each other.
set -euo pipefail
cd "$(dirname "$0")/.."
BUF=${BUF:-.ci/.tools/node_modules/.bin/buf}
# Ports above Linux's ephemeral range (32768-60999 by default): a port in it
# may still be held by one of the thousands of client connections the tests
# just closed (TIME_WAIT), and binding it then fails (seen: 50152 in CI).
ADDR=127.0.0.1:${SMOKE_PORT:-61151}
URL=http://$ADDR
INGEST_ADDR=127.0.0.1:${SMOKE_INGEST_PORT:-61152}
INGEST=http://$INGEST_ADDR
SCORING_ADDR=127.0.0.1:${SMOKE_SCORING_PORT:-61153}
SCORING=http://$SCORING_ADDR
work=$(mktemp -d)
pid=""; ipid=""; spid=""
trap 'kill $pid $ipid $spid 2>/dev/null || true; rm -rf "$work"' EXIT

cargo build -q -p indicator-catalog -p data-ingestion -p scoring
BIN=${CARGO_TARGET_DIR:-target}/debug
export KPI_DATABASE_URL="sqlite://$work/kpi.db?mode=rwc"
TOKEN=smoke-admin-$RANDOM$RANDOM
export KPI_SERVICE_TOKEN=smoke-service-$RANDOM$RANDOM
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
printf 'smoke-admin acme admin %s\nsmoke-service * service %s\n' "$(sha "$TOKEN")" "$(sha "$KPI_SERVICE_TOKEN")" >"$work/api-keys"
export KPI_API_KEYS_FILE="$work/api-keys"
KPI_LISTEN_ADDR=$ADDR "$BIN/indicator-catalog" >"$work/log" 2>&1 &
pid=$!
KPI_LISTEN_ADDR=$INGEST_ADDR KPI_CATALOG_URL=$URL "$BIN/data-ingestion" >"$work/ingest.log" 2>&1 &
ipid=$!
KPI_LISTEN_ADDR=$SCORING_ADDR KPI_CATALOG_URL=$URL KPI_INGESTION_URL=$INGEST "$BIN/scoring" >"$work/scoring.log" 2>&1 &
spid=$!

call() { "$BUF" curl --protocol grpc --http2-prior-knowledge -H "Authorization: Bearer $TOKEN" "$@"; }
anonymous() { "$BUF" curl --protocol grpc --http2-prior-knowledge "$@"; }

wait_serving() {
  for _ in $(seq 1 100); do
    call -d '{}' "$1/grpc.health.v1.Health/Check" >/dev/null 2>&1 && return 0
    kill -0 "$2" || { cat "$work"/*.log "$work/log"; exit 1; }
    sleep 0.1
  done
  echo "$1 did not become ready"; exit 1
}
wait_serving "$URL" "$pid"
wait_serving "$INGEST" "$ipid"
wait_serving "$SCORING" "$spid"

call --list-methods "$URL" | tee "$work/methods"
grep -q '^kpi.catalog.v1.CatalogService/CreateIndicator$' "$work/methods"
anonymous -d '{"service":"kpi.catalog.v1.CatalogService"}' "$URL/grpc.health.v1.Health/Check" | grep -q '"SERVING"'
# Without a token: UNAUTHENTICATED; another tenant: PERMISSION_DENIED.
if anonymous -d '{"parent":"tenants/acme"}' "$URL/kpi.catalog.v1.CatalogService/ListIndicators" >"$work/anon" 2>&1; then
  echo "a call without a token was served"; exit 1
fi
grep -q 'unauthenticated' "$work/anon"
if call -d '{"parent":"tenants/other"}' "$URL/kpi.catalog.v1.CatalogService/ListIndicators" >"$work/other" 2>&1; then
  echo "another tenant was served"; exit 1
fi
grep -q 'permission_denied' "$work/other"
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

# Ingestion: five good events and a CSAT of 7, rejected with its field path.
call -d @examples/ingestion/ingest-tickets.json "$INGEST/kpi.ingestion.v1.IngestionService/IngestEvents" | tee "$work/ingested"
grep -q '"accepted": 5' "$work/ingested"
grep -q '"field": "events\[5\].survey.score"' "$work/ingested"
call -d @examples/ingestion/query-fcr.json "$INGEST/kpi.ingestion.v1.IngestionService/QueryMeasures" | tee "$work/measures"
grep -q '"subjectId": "ann"' "$work/measures"
grep -q '"value": 5' "$work/measures"
# Replaying the batch changes nothing.
call -d @examples/ingestion/ingest-tickets.json "$INGEST/kpi.ingestion.v1.IngestionService/IngestEvents" | grep -q '"duplicates": 5'

# Scoring: Ann's October under the template that applies to her
# (ticket_handling): one ticket handled, CSAT 5 from one response (below the
# minimum of 10).
call -d @examples/ingestion/ingest-roster.json "$INGEST/kpi.ingestion.v1.IngestionService/IngestEvents" | grep -q '"accepted": 3'
call -d @examples/scoring/get-scorecard-ann.json "$SCORING/kpi.scoring.v1.ScoringService/GetScorecard" | tee "$work/card"
grep -q '"template": "ticket_handling"' "$work/card"
grep -q '"grade": "D"' "$work/card"
call -d '{"parent":"tenants/acme","teamId":"ecom","period":{"kind":"PERIOD_KIND_MONTH","date":"2026-10-01"},"pageSize":20}' \
  "$SCORING/kpi.scoring.v1.ScoringService/ListScorecards" | tee "$work/board"
grep -q '"totalSize": 2' "$work/board"
if call -d '{"parent":"tenants/acme","subject":{"kind":"SUBJECT_KIND_AGENT","id":"ann"},"period":{"kind":"PERIOD_KIND_MONTH","date":"2026-13-01"}}' \
    "$SCORING/kpi.scoring.v1.ScoringService/GetScorecard" >"$work/bad-period" 2>&1; then
  echo "a bad period was accepted"; exit 1
fi
grep -q 'period.date' "$work/bad-period"

kill -TERM "$pid" "$ipid" "$spid"
wait "$pid" "$ipid" "$spid"
grep -q 'stopped' "$work/log"
grep -q 'stopped' "$work/ingest.log"
grep -q 'stopped' "$work/scoring.log"
echo "smoke: ok"
