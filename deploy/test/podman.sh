# shellcheck shell=bash
# Sourced by scripts/test-deploy: podman and podman-compose on Debian 12 as root, from
# nothing (the settings this machine needs: /work/shared/containers.md).
#   podman_setup   installs what is missing; writes /etc/containers/containers.conf unless
#                  one of another origin is there; podman-compose into a virtualenv
#   "${COMPOSE[@]}" ARGS...   podman-compose, building in Docker's image format (which keeps
#                  the Dockerfile's HEALTHCHECK, and so hits the cache of a first
#                  `podman build --format docker`)

PODMAN_COMPOSE_VERSION=1.6.0
PODMAN_COMPOSE_VENV=${PODMAN_COMPOSE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/happening/podman-compose-venv}
CONTAINERS_CONF=/etc/containers/containers.conf
CONTAINERS_CONF_MARK="# written by scripts/test-deploy"

podman_setup() {
  local pkgs=() p
  for p in podman runc debootstrap python3-venv; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || pkgs+=("$p")
  done
  if [ ${#pkgs[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || { echo "test-deploy: missing ${pkgs[*]}: run as root, or apt-get install -y ${pkgs[*]}" >&2; return 1; }
    say "installing ${pkgs[*]} (apt-get)"
    local log
    log=$(mktemp "${TMPDIR:-/tmp}/happening-apt.XXXXXX")
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}"; } >"$log" 2>&1; then
      tail -n 30 "$log" >&2
      rm -f "$log"
      return 1
    fi
    rm -f "$log"
  fi
  # The runtime may not raise limits above the host's hard ones; crun 1.8 rejects hybrid
  # cgroups, runc does not; no systemd here, so cgroupfs and a file for the events.
  local n conf
  n=$(ulimit -Hn)
  conf=$(printf '%s\n[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=32768:32768"]\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' \
    "$CONTAINERS_CONF_MARK" "$n" "$n")
  if [ ! -e "$CONTAINERS_CONF" ] || head -n 1 "$CONTAINERS_CONF" | grep -qxF "$CONTAINERS_CONF_MARK"; then
    [ "$(cat "$CONTAINERS_CONF" 2>/dev/null)" = "$conf" ] || echo "$conf" >"$CONTAINERS_CONF"
  else
    say "keeping $CONTAINERS_CONF as it is (not written here)"
  fi
  if ! "$PODMAN_COMPOSE_VENV/bin/podman-compose" --version 2>/dev/null | grep -q "^podman-compose version $PODMAN_COMPOSE_VERSION\$"; then
    say "installing podman-compose $PODMAN_COMPOSE_VERSION into $PODMAN_COMPOSE_VENV"
    rm -rf "$PODMAN_COMPOSE_VENV"
    mkdir -p "$(dirname "$PODMAN_COMPOSE_VENV")"
    # Debian's Python, which python3-venv completes (Debian's own podman-compose, 1.0.3,
    # mishandles networks).
    /usr/bin/python3 -m venv "$PODMAN_COMPOSE_VENV"
    "$PODMAN_COMPOSE_VENV/bin/pip" install -q --disable-pip-version-check "podman-compose==$PODMAN_COMPOSE_VERSION"
  fi
  say "$(podman --version), $("$PODMAN_COMPOSE_VENV/bin/podman-compose" --version | head -n 1)"
}

COMPOSE=(env BUILDAH_FORMAT=docker "$PODMAN_COMPOSE_VENV/bin/podman-compose")
