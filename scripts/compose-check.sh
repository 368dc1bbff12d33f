#!/usr/bin/env bash
# The compose stack on a real Docker engine, end to end:
#   build both images from the Dockerfile; `compose up` with a media folder and
#   API_TOKEN; wait for health; check that the API wants its token and that
#   Temporal's frontend refuses a client without a certificate; scan through
#   the API and follow it to the end; fetch a real thumbnail; a worker's
#   process SIGKILLed from the host mid-scan (a crash the restart policy must
#   recover) and the Temporal container restarted mid-scan, each scan
#   completing with every file in the library once, status reads answering
#   within seconds while Temporal is away; `down` and `up` again keeping the
#   library and the scans' histories; the three databases dumped, every volume
#   removed, the dumps restored and served; `--scale worker=4`, each worker
#   probing. Prints each step's time; exits non-zero at the first failed check.
#
#   scripts/compose-check.sh                 # everything, then `down -v`
#   KEEP=1 scripts/compose-check.sh          # leave the stack running
#   SKIP_BUILD=1 scripts/compose-check.sh    # use the images already built
#   FRESH=1 scripts/compose-check.sh         # build without the build cache (cold times)
#
# Settings: FILES (3000 videos made with the test media helper; needs the
# checkout's node_modules and ffmpeg from it) or MEDIA_DIR (a folder of
# your own, FILES then ignored: its video count is taken from the first scan),
# PROJECT (compose project name, compose-check), DOCKER (docker command;
# e.g. DOCKER=/usr/bin/docker where the docker first on PATH wants buildx for
# BuildKit builds).
# Needs: docker with compose v2, curl, jq, node.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DOCKER=${DOCKER:-docker}
PROJECT=${PROJECT:-compose-check}
FILES=${FILES:-3000}
API=http://127.0.0.1:${API_PORT:-8000}
export API_TOKEN=${API_TOKEN:-$(openssl rand -hex 24)}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/compose-check.XXXXXX")
compose() { $DOCKER compose -p "$PROJECT" -f "$ROOT/docker-compose.yml" "$@"; }

START=$(date +%s)
STEP_START=$START
declare -a SUMMARY=()
step() { STEP_NAME=$1; STEP_START=$(date +%s.%N); printf '\n== %s\n' "$1"; }
done_step() {
  local took
  took=$(awk -v a="$STEP_START" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  printf -- '-- %s: %s s%s\n' "$STEP_NAME" "$took" "${1:+ ($1)}"
  SUMMARY+=("$(printf '%-46s %8s s  %s' "$STEP_NAME" "$took" "${1:-}")")
}
fail() { printf 'FAILED (%s): %s\n' "${STEP_NAME:-setup}" "$*" >&2; exit 1; }
cleanup() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    echo "--- last logs" >&2
    compose logs --tail 30 >&2 2>/dev/null || true
  fi
  if [ "${KEEP:-0}" != 1 ]; then compose down -v --remove-orphans >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

api() { curl -sS --max-time 30 -H "authorization: Bearer $API_TOKEN" "$@"; }
pgx() { compose exec -T -e PGPASSWORD="${POSTGRES_PASSWORD:-scanner}" postgresql "$@"; }
psql_q() { pgx psql -U scanner -d library -tAc "$1"; }

# Waits until every running service is healthy (the one-shot certs service excepted).
wait_healthy() {
  local deadline=$(( $(date +%s) + ${1:-600} )) states
  while :; do
    states=$(compose ps --format '{{.Service}} {{.State}} {{.Health}}' | grep -v '^certs ' || true)
    if [ -n "$states" ] && ! grep -qv ' running healthy$' <<<"$states"; then return 0; fi
    [ "$(date +%s)" -lt "$deadline" ] || { echo "$states" >&2; fail "services not healthy in time"; }
    sleep 2
  done
}

# Starts a scan of /media; prints its job id.
start_scan() {
  local body
  body=$(api -X POST -H 'content-type: application/json' -d "{\"path\":\"/media\",\"force\":${1:-false}}" "$API/api/v1/videos/scan")
  jq -er .job_id <<<"$body" || fail "scan not started: $body"
}

job() { api "$API/api/v1/jobs/$1"; }

# Follows a job until it ends; fails unless it completed.
follow() {
  local id=$1 body status
  while :; do
    body=$(job "$id" || true)
    status=$(jq -r '.status // empty' <<<"$body" 2>/dev/null || true)
    case "$status" in
      completed) echo "$body" > "$WORK/last-job.json"; return 0 ;;
      failed|cancelled|timeout) fail "job $id ended $status: $(jq -c '{error, counts, result: (.result | {scanned, errors: (.errors[:3])})}' <<<"$body")" ;;
    esac
    sleep 1
  done
}

# Waits until a job has probed at least N files (and is still running).
wait_probed() {
  local id=$1 at_least=$2 body
  while :; do
    body=$(job "$id" || true)
    [ "$(jq -r '.status // empty' <<<"$body" 2>/dev/null)" = completed ] && fail "job $id completed before the fault could be injected (raise FILES)"
    [ "$(jq -r '.counts.probed // 0' <<<"$body" 2>/dev/null)" -ge "$at_least" ] && return 0
    sleep 0.2
  done
}

# Every file of the media folder in the library exactly once.
check_library() {
  local rows
  rows=$(psql_q "select count(*) || ' ' || count(distinct path) from videos where status = 'present'")
  [ "$rows" = "$EXPECTED $EXPECTED" ] || fail "library holds '$rows' (videos, distinct paths); expected $EXPECTED of each"
  local counts
  counts=$(jq -c '.counts' "$WORK/last-job.json")
  [ "$(jq -r '.counts.discovered' "$WORK/last-job.json")" = "$EXPECTED" ] || fail "job discovered other than $EXPECTED: $counts"
  [ "$(jq -r '.counts.failed' "$WORK/last-job.json")" = 0 ] || fail "job counted failures: $counts"
  echo "library: $EXPECTED videos, each once; job counts $counts"
}

command -v jq >/dev/null || fail "jq is needed"
$DOCKER compose version >/dev/null || fail "docker compose v2 is needed"

# ---------------------------------------------------------------- media
step "media folder"
if [ -n "${MEDIA_DIR:-}" ]; then
  EXPECTED=
  echo "using MEDIA_DIR=$MEDIA_DIR"
else
  export MEDIA_DIR=$WORK/media
  node --require ./scripts/ts-register.js -e "
    const m = require('./test/support/media');
    m.ensureTestMedia().then((clips) => m.buildLibrary(process.argv[1], Number(process.argv[2]), clips)).then((f) => console.log(f.length + ' videos in ' + process.argv[1]));
  " "$MEDIA_DIR" "$FILES"
  EXPECTED=$FILES
  chmod -R a+rX "$WORK"
fi
done_step "${EXPECTED:-?} files"

# ---------------------------------------------------------------- build
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  step "build app image"
  DOCKER_BUILDKIT=1 $DOCKER build ${FRESH:+--no-cache} --target app -t video-scanner:local . > "$WORK/build-app.log" 2>&1 || { tail -40 "$WORK/build-app.log"; fail "app image build"; }
  done_step "$($DOCKER image inspect -f '{{.Size}}' video-scanner:local | awk '{ printf "%.0f MB", $1 / 1e6 }')"
  step "build temporal image"
  DOCKER_BUILDKIT=1 $DOCKER build ${FRESH:+--no-cache} --target temporal -t video-scanner-temporal:local . > "$WORK/build-temporal.log" 2>&1 || { tail -40 "$WORK/build-temporal.log"; fail "temporal image build"; }
  done_step "$($DOCKER image inspect -f '{{.Size}}' video-scanner-temporal:local | awk '{ printf "%.0f MB", $1 / 1e6 }')"
fi

# ---------------------------------------------------------------- up
step "compose up, all healthy"
compose down -v --remove-orphans >/dev/null 2>&1 || true
compose up -d --no-build --quiet-pull 2>&1 | tail -3
wait_healthy 900
compose ps --format '  {{.Name}}: {{.State}} {{.Health}}'
done_step

step "the doors: API token, Temporal client certificates, data folder"
code=$(curl -s -o /dev/null -w '%{http_code}' "$API/api/v1/jobs")
[ "$code" = 401 ] || fail "a call without the token answered $code, not 401"
echo "API without token: $code"
# From inside the network: plaintext, TLS without a client certificate, and with one.
probe_temporal() {
  compose exec -T api node -e "
    const { Connection } = require('@temporalio/client');
    const fs = require('node:fs');
    const mode = process.argv[1];
    const tls = mode === 'plain' ? undefined : {
      serverRootCACertificate: fs.readFileSync('/app/certs/ca.pem'), serverNameOverride: 'temporal',
      ...(mode === 'cert' ? { clientCertPair: { crt: fs.readFileSync('/app/certs/api.pem'), key: fs.readFileSync('/app/certs/api.key') } } : {}),
    };
    Connection.connect({ address: 'temporal:7233', tls, connectTimeout: '5s' })
      .then((c) => c.withDeadline(Date.now() + 5000, () => c.healthService.check({})))
      .then(() => { console.log(mode + ': answered'); process.exit(0); }, (e) => { console.log(mode + ': refused (' + String(e.message).split('\n')[0].slice(0, 120) + ')'); process.exit(1); });
  " "$1"
}
probe_temporal plain && fail "the frontend answered a plaintext client"
probe_temporal nocert && fail "the frontend answered a client without a certificate"
probe_temporal cert || fail "the frontend refused the API's client certificate"
owner=$(compose exec -T worker sh -c 'id -un; stat -c %U /app/data /app/data/thumbnails' | tr '\n' ' ')
echo "worker runs as / data folder owners: $owner"
[ "$owner" = "node node node " ] || fail "the data folder does not belong to the image's user: $owner"
done_step

# ---------------------------------------------------------------- scan
step "scan through the API, followed to the end"
id=$(start_scan false)
echo "job $id"
follow "$id"
if [ -z "$EXPECTED" ]; then EXPECTED=$(jq -r .counts.discovered "$WORK/last-job.json"); fi
check_library
[ "$(jq -r .counts.thumbnails "$WORK/last-job.json")" -gt 0 ] || fail "no thumbnails made: $(jq -c .counts "$WORK/last-job.json")"
done_step "$EXPECTED files, $(jq -r .rate_per_s "$WORK/last-job.json") files/s"
FIRST_JOB=$id

step "fetch a thumbnail"
vid=$(api "$API/api/v1/videos?limit=1" | jq -er '.videos[0].id')
headers=$(api -D - -o "$WORK/thumb.jpg" "$API/api/v1/videos/$vid/thumbnail")
grep -qi '^x-thumbnail: video' <<<"$headers" || fail "video $vid has no real picture (headers: $(tr '\r\n' '  ' <<<"$headers"))"
[ "$(head -c 2 "$WORK/thumb.jpg" | od -An -tx1 | tr -d ' ')" = ffd8 ] || fail "the thumbnail is not a JPEG"
done_step "video $vid: $(stat -c %s "$WORK/thumb.jpg") bytes of JPEG"

# ---------------------------------------------------------------- faults
step "SIGKILL a worker's process from the host mid-scan"
id=$(start_scan true)
wait_probed "$id" $(( EXPECTED / 10 ))
# sed, not head: head would close the pipe early, and pipefail would count it a failure.
victim=$(compose ps -q worker | sed -n 1p)
pid=$($DOCKER inspect -f '{{.State.Pid}}' "$victim")
restarts_before=$($DOCKER inspect -f '{{.RestartCount}}' "$victim")
echo "job $id at $(job "$id" | jq -r '"\(.counts.probed) probed, phase \(.phase)"'): kill -KILL $pid (container ${victim:0:12})"
kill -KILL "$pid"
follow "$id"
check_library
restarts_after=$($DOCKER inspect -f '{{.RestartCount}}' "$victim")
[ "$restarts_after" -gt "$restarts_before" ] || fail "the killed worker was not restarted by its restart policy"
wait_healthy 300
done_step "restarted by policy ($restarts_before -> $restarts_after)"

step "restart the Temporal container mid-scan"
id=$(start_scan true)
wait_probed "$id" $(( EXPECTED / 10 ))
echo "job $id at $(job "$id" | jq -r '"\(.counts.probed) probed, phase \(.phase)"'): docker compose restart temporal"
compose restart temporal >/dev/null 2>&1 &
restarting=$!
# Status reads until Temporal is healthy again: each answers (200 or a clear 503), none hangs.
slowest=0
codes=""
temporal_healthy() { [ "$(compose ps --format '{{.Health}}' temporal)" = healthy ]; }
sleep 1
while kill -0 "$restarting" 2>/dev/null || ! temporal_healthy; do
  out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 30 -H "authorization: Bearer $API_TOKEN" "$API/api/v1/jobs/$id")
  codes="$codes${codes:+ }${out%% *}"
  slowest=$(awk -v a="$slowest" -v b="${out##* }" 'BEGIN { print (b > a ? b : a) }')
  sleep 0.5
done
wait "$restarting"
echo "status reads until Temporal was healthy again: codes$(tr ' ' '\n' <<<"$codes" | sort | uniq -c | awk '{ printf " %sx%s", $1, $2 }'), slowest ${slowest} s"
awk -v s="$slowest" 'BEGIN { exit !(s < 10) }' || fail "a status read took ${slowest} s while Temporal restarted"
wait_healthy 600
follow "$id"
check_library
done_step "slowest status read ${slowest} s"

# ---------------------------------------------------------------- down/up
step "compose down and up: library and histories kept"
before_jobs=$(api "$API/api/v1/jobs?limit=100" | jq -r '[.jobs[].job_id] | length')
compose down >/dev/null 2>&1
compose up -d --no-build 2>&1 | tail -1
wait_healthy 900
after=$(api "$API/api/v1/jobs/$FIRST_JOB" | jq -r .status)
[ "$after" = completed ] || fail "the first scan's history reads '$after' after down/up"
after_jobs=$(api "$API/api/v1/jobs?limit=100" | jq -r '[.jobs[].job_id] | length')
[ "$after_jobs" -ge "$before_jobs" ] || fail "jobs listed: $before_jobs before, $after_jobs after"
rows=$(psql_q "select count(*) from videos where status = 'present'")
[ "$rows" = "$EXPECTED" ] || fail "library holds $rows videos after down/up"
done_step "$after_jobs jobs listed, $rows videos"

step "back up the three databases, restore them into empty volumes"
for db in library temporal temporal_visibility; do
  pgx pg_dump -U scanner --format=custom "$db" > "$WORK/$db.dump"
done
ls -l "$WORK"/*.dump | awk '{ print "  " $NF ": " $5 " bytes" }'
compose down -v >/dev/null 2>&1
compose up -d --no-build postgresql 2>&1 | tail -1
# Over TCP: the image's first-start initialisation serves only its socket.
until pgx pg_isready -q -h 127.0.0.1 -U scanner -d library; do sleep 1; done
for db in temporal temporal_visibility; do pgx createdb -h 127.0.0.1 -U scanner "$db"; done
for db in library temporal temporal_visibility; do
  pgx pg_restore -h 127.0.0.1 -U scanner --no-owner --clean --if-exists -d "$db" < "$WORK/$db.dump"
done
compose up -d --no-build 2>&1 | tail -1
wait_healthy 900
temporal_log=$(compose logs temporal 2>&1)
grep -q 'nothing to set up' <<<"$temporal_log" || fail "the temporal service set its databases up again after the restore"
after=$(api "$API/api/v1/jobs/$FIRST_JOB" | jq -r .status)
[ "$after" = completed ] || fail "the first scan's history reads '$after' after the restore"
rows=$(psql_q "select count(*) from videos where status = 'present'")
[ "$rows" = "$EXPECTED" ] || fail "the restored library holds $rows videos"
vid=$(api "$API/api/v1/videos?limit=1" | jq -er '.videos[0].id')
api -sf -o /dev/null "$API/api/v1/videos/$vid" || fail "video $vid not served after the restore"
done_step "$rows videos, first scan's history $after"

step "--scale worker=4, a scan over four workers"
compose up -d --no-build --scale worker=4 2>&1 | tail -1
wait_healthy 600
[ "$(compose ps -q worker | wc -l)" = 4 ] || fail "not four workers"
id=$(start_scan true)
follow "$id"
check_library
# What each worker probed (its own counter, since its start): the scan spread over all four.
per_worker=""
for i in 1 2 3 4; do
  n=$(compose exec -T --index "$i" worker node -e "
    fetch('http://127.0.0.1:9464/metrics').then((r) => r.text()).then((t) => console.log(t.split('\n')
      .filter((l) => l.startsWith('scanner_files_probed_total{')).reduce((s, l) => s + Number(l.split(' ').pop()), 0)))")
  per_worker="$per_worker${per_worker:+ / }$n"
  [ "$n" -gt 0 ] || fail "worker $i probed nothing (probed per worker: $per_worker)"
done
done_step "probed per worker $per_worker"

TOTAL=$(( $(date +%s) - START ))
printf '\n== summary (%s s in all)\n' "$TOTAL"
printf '%s\n' "${SUMMARY[@]}"
echo "compose-check passed"
