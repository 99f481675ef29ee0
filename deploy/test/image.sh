# shellcheck shell=bash
# Sourced by scripts/test-deploy: the image on its own, as `docker run IMAGE` runs it (no
# environment: in memory, with a generated secret and its printed token).
#   image_test IMAGE     serves, answers its probes and HEALTHCHECK, books; runs as uid 10001;
#                        on SIGTERM finishes a request in flight and exits 0
#   image_size IMAGE BASE LIMIT_BYTES   prints what IMAGE adds on top of BASE, layer by
#                        layer; fails over the limit

image_test() {
  local image=$1 name=$RUN-image port url token pid uids code
  _svc_free_port port
  url=http://127.0.0.1:$port
  # (podman's stderr to a log: without systemd it complains that it cannot time the
  # HEALTHCHECK, which `podman healthcheck run` runs below.)
  podman run -d --pull=never --name "$name" -p "127.0.0.1:$port:5000" "$image" >/dev/null 2>>"$WORK/podman.log"
  wait_log "$name" 'happening listening on' 60
  api ready --timeout 30 "$url"
  token=$(podman logs "$name" 2>/dev/null | sed -n 's/^TOKEN=//p')
  [ -n "$token" ] || fail "no token printed by the server: $(podman logs "$name" 2>&1 | tail -n 5)"
  podman healthcheck run "$name" >/dev/null 2>>"$WORK/podman.log" || fail "HEALTHCHECK: unhealthy"
  say "HEALTHCHECK (happening healthcheck): healthy"
  api demo "$url" "$token"

  [ "$(podman exec "$name" id -u)" = 10001 ] || fail "the container's user is not 10001: $(podman exec "$name" id)"
  pid=$(podman inspect -f '{{.State.Pid}}' "$name")
  uids=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$pid/status")
  [ "$uids" = "10001 10001 10001 10001" ] || fail "the server process (pid $pid) runs as uids $uids"
  say "user: $(podman exec "$name" id), the server's process too (pid $pid on the host)"

  api in-flight "$url" "$token" -- podman kill --signal TERM "$name"
  code=$(timeout 60 podman wait "$name") || fail "the container did not stop within 60 s of SIGTERM"
  [ "$code" = 0 ] || fail "exit code $code after SIGTERM: $(podman logs "$name" 2>&1 | tail -n 5)"
  # (conmon may write the last lines to the log just after the exit is known)
  log_has "$name" '"message":"shutdown requested' || fail "no shutdown line in the log"
  log_has "$name" '"message":"stopped"' || fail "no \"stopped\" line in the log: $(podman logs "$name" 2>&1 | tail -n 3)"
  ! podman logs "$name" 2>&1 | grep -q 'grace period over' || fail "the grace period ran out"
  say "SIGTERM: the request in flight answered, exit code 0, log: shutdown requested ... stopped"
  podman rm "$name" >/dev/null 2>>"$WORK/podman.log"
}

image_size() {
  local image=$1 base=$2 limit=$3 total base_size added base_rows
  total=$(podman image inspect -f '{{.Size}}' "$image")
  base_size=$(podman image inspect -f '{{.Size}}' "$base")
  added=$((total - base_size))
  base_rows=$(podman history -q "$base" | wc -l)
  say "image $image: $(mb "$added") on top of $base ($(mb "$base_size")), limit $(mb "$limit"); its layers, newest first:"
  podman history --no-trunc --format '{{.Size}}|{{.CreatedBy}}' "$image" | head -n "-$base_rows" |
    while IFS='|' read -r size created_by; do
      printf '   %9s  %s\n' "$size" "$(echo "$created_by" | sed 's#^/bin/sh -c ##; s#^\#(nop) ##' | cut -c 1-110)"
    done
  say "the binary: $(podman run --rm --pull=never --entrypoint ls "$image" -l /usr/local/bin/happening 2>>"$WORK/podman.log" | awk '{ print $5 " bytes, " $NF }')"
  [ "$added" -le "$limit" ] || fail "the image adds $(mb "$added") to $base, over $(mb "$limit")"
}

# Bytes as MB (10^6), one decimal.
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }

# True when container $1's log has a line matching $2 within 10 s.
log_has() {
  local end=$((SECONDS + 10))
  until podman logs "$1" 2>&1 | grep -q -- "$2"; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.2
  done
}
