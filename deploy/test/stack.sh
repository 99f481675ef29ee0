# shellcheck shell=bash
# Sourced by scripts/test-deploy: one compose stack as shipped, brought up with
# podman-compose and put through what an operator does with it.
#   stack_test NAME FILES RESTARTS
# NAME names the project ($RUN-NAME); FILES are its compose files, colon-separated; RESTARTS
# the services restarted one at a time. The stack must have services replica-1 and
# replica-2 (published on HAPPENING_REPLICA_1_PORT and HAPPENING_REPLICA_2_PORT), worker,
# migrate and postgres (user and database `happening`), and take HAPPENING_JWT_SECRET.
# Each step below is a function; the stack's own state is in the ST_* variables.

# The container of service $2 in project $1.
stack_container() {
  podman ps -a --filter "label=io.podman.compose.project=$1" --filter "label=io.podman.compose.service=$2" --format '{{.Names}}' | head -n 1
}

# How many containers project $1 has (running or not).
stack_count() {
  podman ps -a -q --filter "label=io.podman.compose.project=$1" | wc -l
}

# Waits until the container $1 has exited by itself (a one-shot service), for $2 seconds;
# prints its exit code.
wait_exited() {
  local end=$((SECONDS + $2)) state
  while :; do
    state=$(podman inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$1")
    case "$state" in exited\ 0) echo 0; return 0 ;; esac
    [ "$SECONDS" -lt "$end" ] || { echo "${state#* }"; return 0; }
    sleep 1
  done
}

stack_test() {
  local name=$1 f
  ST_PROJECT=$RUN-$1
  ST_PC=("${COMPOSE[@]}" -p "$ST_PROJECT")
  for f in ${2//:/ }; do ST_PC+=(-f "$f"); done
  _svc_free_port ST_PORT_1
  _svc_free_port ST_PORT_2
  export HAPPENING_REPLICA_1_PORT=$ST_PORT_1 HAPPENING_REPLICA_2_PORT=$ST_PORT_2
  ST_R1=http://127.0.0.1:$ST_PORT_1 ST_R2=http://127.0.0.1:$ST_PORT_2
  ST_STATE=$WORK/$name.json ST_LOG=$WORK/$name.log
  STACKS_STARTED+=("$ST_PROJECT")

  stack_refuses_without_secret "$name"
  export HAPPENING_JWT_SECRET=deploy-test-$RANDOM$RANDOM$RANDOM
  stack_up "$name"
  stack_flash_sale
  local svc
  for svc in $3; do stack_restart "$name" "$svc"; done
  stack_start_refused "$name"
  stack_down_up "$name"
  stack_teardown "$name"
}

# Runs podman-compose on the stack, its output to the stack's log, within $1 seconds.
stack_compose() {
  local limit=$1
  shift
  logged "$ST_LOG" timeout "$limit" "${ST_PC[@]}" "$@"
}

# No default secret: without HAPPENING_JWT_SECRET nothing starts, and the message names it.
stack_refuses_without_secret() {
  unset HAPPENING_JWT_SECRET
  if timeout 120 "${ST_PC[@]}" up -d >"$ST_LOG" 2>&1; then fail "the stack started without HAPPENING_JWT_SECRET"; fi
  grep -q 'required variable HAPPENING_JWT_SECRET is missing a value' "$ST_LOG" || { tail -n 20 "$ST_LOG" >&2; fail "no message naming HAPPENING_JWT_SECRET"; }
  [ "$(stack_count "$ST_PROJECT")" = 0 ] || fail "containers were created without HAPPENING_JWT_SECRET"
  say "$1: refused without HAPPENING_JWT_SECRET: $(grep -o 'required variable HAPPENING_JWT_SECRET.*' "$ST_LOG" | head -n 1)"
}

# `up -d --build` takes the image built before; the stack gets ready by itself although
# every service starts at once; the migrations are applied once; every healthcheck passes.
stack_up() {
  local image_id code
  image_id=$(podman image inspect -f '{{.Id}}' "$IMAGE")
  say "$1: up -d --build (replicas on $ST_R1 and $ST_R2)"
  stack_compose 1200 up -d --build
  [ "$(podman image inspect -f '{{.Id}}' "$IMAGE")" = "$image_id" ] || fail "up --build built $IMAGE again instead of taking the image built before"
  api ready --timeout 180 "$ST_R1" "$ST_R2"
  code=$(wait_exited "$(stack_container "$ST_PROJECT" migrate)" 60)
  [ "$code" = 0 ] || fail "the migrate service exited $code: $(podman logs "$(stack_container "$ST_PROJECT" migrate)" 2>&1 | tail -n 5)"
  stack_migrations "$ST_PROJECT"
  stack_healthchecks "$ST_PROJECT"
  say "$1: up without help: $(stack_start_failures "$ST_PROJECT" migrate replica-1 replica-2 worker)"
}

# 300 one-seat bookings at once over both replicas for 100 seats (20 members, tokens minted
# by the image's own `happening token` with the stack's secret): no oversell, the queue
# exactly the waiting bookings; every notification delivered; the audit clean.
stack_flash_sale() {
  local tokens
  # shellcheck disable=SC2016
  mapfile -t tokens < <(podman exec "$(stack_container "$ST_PROJECT" replica-1)" sh -c \
    'for i in $(seq 0 20); do happening token --sub "deploy-user-$i" --email "user$i@example.com"; done')
  [ "${#tokens[@]}" = 21 ] || fail "happening token printed ${#tokens[@]} tokens, not 21"
  api seed "$ST_R1" "${tokens[0]}" "$ST_STATE" "${tokens[@]:1}"
  api flash --bookings 300 "$ST_STATE" "$ST_R1" "$ST_R2"
  api delivered "$ST_STATE" "$ST_R1"
  stack_audit "$ST_PROJECT"
}

# Service $2 restarted: both replicas ready again, the flash sale's event as it was, new
# bookings on both, the outbox drained.
stack_restart() {
  say "$1: restarting $2"
  stack_compose 120 restart "$2"
  api ready --timeout 180 "$ST_R1" "$ST_R2"
  api check "$ST_STATE" "$ST_R1" "$ST_R2"
  api book-new --name "After $2" "$ST_STATE" "$ST_R1"
  api book-new --name "After $2" "$ST_STATE" "$ST_R2"
  api delivered "$ST_STATE" "$ST_R1"
}

# A server started while PostgreSQL refuses connections (as before it is ready) exits 1,
# and its restart policy starts it again until PostgreSQL lets it in.
stack_start_refused() {
  local replica2 refused end=$((SECONDS + 60))
  replica2=$(stack_container "$ST_PROJECT" replica-2)
  say "$1: replica-2 restarted while PostgreSQL refuses connections"
  stack_psql "$ST_PROJECT" 'ALTER DATABASE happening ALLOW_CONNECTIONS false'
  refused=$(stack_refusals "$replica2")
  podman restart "$replica2" >/dev/null 2>>"$WORK/podman.log"
  until [ "$(stack_refusals "$replica2")" -ge $((refused + 2)) ]; do
    if [ "$SECONDS" -ge "$end" ]; then
      stack_psql "$ST_PROJECT" 'ALTER DATABASE happening ALLOW_CONNECTIONS true'
      fail "replica-2 was not started again after it could not connect: $(podman logs "$replica2" 2>&1 | tail -n 3)"
    fi
    sleep 0.5
  done
  stack_psql "$ST_PROJECT" 'ALTER DATABASE happening ALLOW_CONNECTIONS true'
  api ready --timeout 180 "$ST_R1" "$ST_R2"
  say "$1: replica-2 back by itself after $(($(stack_refusals "$replica2") - refused)) refused start(s)"
  api check "$ST_STATE" "$ST_R1" "$ST_R2"
  api book-new --name "After PostgreSQL" "$ST_STATE" "$ST_R2"
}

# Everything stopped at once (as `down` does): the servers and the worker exit 0, none is
# killed at the end of its stop_grace_period. `down` leaves no container; `up` again finds
# the data in the volumes (and Redis, which has none, rebuilt from PostgreSQL on start).
stack_down_up() {
  local svc codes=
  say "$1: stop, down, then up again"
  stack_compose 300 stop
  for svc in replica-1 replica-2 worker; do
    codes+="$svc=$(podman inspect -f '{{.State.ExitCode}}' "$(stack_container "$ST_PROJECT" "$svc")") "
  done
  [ "$codes" = "replica-1=0 replica-2=0 worker=0 " ] || fail "exit codes on stop (137: killed at the end of the grace period): $codes"
  say "$1: stopped: exit codes $codes"
  stack_note_volumes "$ST_PROJECT"
  stack_compose 300 down
  [ "$(stack_count "$ST_PROJECT")" = 0 ] || fail "containers left after down: $(podman ps -a --filter "label=io.podman.compose.project=$ST_PROJECT" --format '{{.Names}}')"
  stack_compose 600 up -d
  api ready --timeout 180 "$ST_R1" "$ST_R2"
  api check "$ST_STATE" "$ST_R1" "$ST_R2"
  api delivered "$ST_STATE" "$ST_R1"
  stack_audit "$ST_PROJECT"
}

# `down -v` leaves nothing of the stack: no container, pod, volume or network.
stack_teardown() {
  local left
  say "$1: down -v"
  stack_note_volumes "$ST_PROJECT"
  stack_compose 300 down -v
  left=$(
    podman ps -a --format '{{.Names}}' | grep -F "$ST_PROJECT" || true
    podman pod ls --format '{{.Name}}' | grep -F "$ST_PROJECT" || true
    podman volume ls -q | grep -F "$ST_PROJECT" || true
    podman network ls --format '{{.Name}}' | grep -F "$ST_PROJECT" || true
  )
  [ -z "$left" ] || fail "left after down -v: $left"
  say "$1: no container, pod, volume or network left"
}

# Every migration of the image applied once, and successfully.
stack_migrations() {
  local pg rows want
  pg=$(stack_container "$1" postgres)
  rows=$(podman exec "$pg" psql -U happening -d happening -tA -c \
    'SELECT count(*), count(DISTINCT version), bool_and(success) FROM _sqlx_migrations')
  want=$(find happening-postgres/migrations -name '*.sql' | wc -l)
  [ "$rows" = "$want|$want|t" ] || fail "_sqlx_migrations has (rows|distinct versions|all succeeded) $rows, wanted $want|$want|t"
  say "migrations: each of the $want applied once (migrate: $(podman logs "$(stack_container "$1" migrate)" 2>&1 | tail -n 1))"
}

# Every healthcheck the compose file defines (or the image's) passes: podman runs them only
# when asked, without systemd.
stack_healthchecks() {
  local c names=()
  for c in $(podman ps --filter "label=io.podman.compose.project=$1" --format '{{.Names}}'); do
    case "$(podman inspect -f '{{if .Config.Healthcheck}}{{index .Config.Healthcheck.Test 0}}{{end}}' "$c")" in
      '' | NONE) continue ;;
    esac
    podman healthcheck run "$c" >/dev/null 2>>"$WORK/podman.log" || fail "healthcheck of $c: unhealthy ($(podman inspect -f '{{.Config.Healthcheck.Test}}' "$c"))"
    names+=("${c#"$1"_}")
  done
  say "healthchecks passed: ${names[*]}"
}

# How many times container $1 could not connect to PostgreSQL on start (its log keeps
# every run's lines).
stack_refusals() {
  podman logs "$1" 2>&1 | grep -c 'cannot connect to PostgreSQL' || true
}

# For each service of project $1 named after it: how often it could not reach PostgreSQL
# on start, and how often its restart policy started it again.
stack_start_failures() {
  local project=$1 svc c
  shift
  for svc in "$@"; do
    c=$(stack_container "$project" "$svc")
    printf '%s: %s refused start(s), %s restart(s); ' "$svc" "$(stack_refusals "$c")" "$(podman inspect -f '{{.RestartCount}}' "$c")"
  done
}

# Runs SQL statement $2 as the superuser on project $1's PostgreSQL.
stack_psql() {
  podman exec "$(stack_container "$1" postgres)" psql -U happening -d postgres -v ON_ERROR_STOP=1 -q -c "$2" >/dev/null
}

# `happening audit` inside the stack (a replica's environment): exit 0, no breach.
stack_audit() {
  local out
  out=$(podman exec "$(stack_container "$1" replica-1)" happening audit 2>&1) || fail "happening audit: $out"
  say "audit: $(echo "$out" | tail -n 1)"
}

# Records the volumes of project $1's containers (anonymous ones too), for the cleanup.
stack_note_volumes() {
  local c
  for c in $(podman ps -a -q --filter "label=io.podman.compose.project=$1"); do
    podman inspect -f '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}}{{"\n"}}{{end}}{{end}}' "$c"
  done >>"$WORK/volumes"
}
