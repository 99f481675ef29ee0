# shellcheck shell=bash
# Sourced by scripts/test-deploy: the images a build of the Dockerfile and a compose stack
# start from. Each is taken from local storage when there, else pulled, else (no registry
# reachable, as on this project's CI) made here as a stand-in:
#   debian:bookworm-slim   Debian 12 by debootstrap (minbase), trusting what the host trusts
#   rust:*                 that base with the host's Rust toolchain (deploy/standins/rust)
#   postgres:*, redis:*, rabbitmq:*   Debian's packages behind entrypoints that take the
#                          official images' environment (deploy/standins/NAME)
# A stand-in is tagged with the official name, so the Dockerfile and the compose file run
# unchanged on it; it carries what Debian 12 has (PostgreSQL 15, Redis 7.0, RabbitMQ 3.10,
# the host's rustc) whatever its tag says; one whose files changed is made again.
# drop_old_builds removes the cache of earlier builds of the Dockerfile.
# Needs: podman, debootstrap, rustc; root.

# The fully qualified name of an image reference (`redis:7` -> docker.io/library/redis:7).
image_qualified() {
  local ref=$1
  case "$ref" in
    */*/*) echo "$ref" ;;
    *.*/* | localhost/*) echo "$ref" ;;
    */*) echo "docker.io/$ref" ;;
    *) echo "docker.io/library/$ref" ;;
  esac
}

# The images named by the FROM lines of Dockerfile $1 (not its own stages).
images_of_dockerfile() {
  awk 'toupper($1) == "FROM" { print $2; for (i = 3; i < NF; i++) if (toupper($i) == "AS") print "stage:" $(i + 1) }' "$1" |
    awk '/^stage:/ { stages[substr($0, 7)] = 1; next } !($0 in stages)'
}

# The images named by `image:` in compose file $1, but `$2` (the one the stack builds).
images_of_compose() {
  sed -n 's/^[[:space:]]*image:[[:space:]]*["'\'']\{0,1\}\([^"'\'' #]*\).*/\1/p' "$1" | grep -vxF "$2" | sort -u
}

# The Debian mirror apt uses on this machine (one-line or deb822 sources), for debootstrap.
apt_mirror() {
  local m
  m=$(awk '$1 == "deb" && $2 !~ /security/ { print ($2 ~ /^\[/ ? $3 : $2); exit }' /etc/apt/sources.list 2>/dev/null || true)
  if [ -z "$m" ]; then
    m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '$1 == "URIs:" && $2 !~ /security/ { print $2; exit }' || true)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

# debian:SUITE-slim as Debian's minbase of that suite, with the host's extra CA certificates (so that
# HTTPS from build containers works as on the host).
make_debian_base() {
  local ref=$1 suite=${1##*:} root
  suite=${suite%%-*}
  root=$(mktemp -d "${TMPDIR:-/tmp}/happening-debian.XXXXXX")
  say "making $ref: debootstrap $suite from $(apt_mirror)"
  if ! debootstrap --variant=minbase "$suite" "$root" "$(apt_mirror)" >"$root.log" 2>&1; then
    tail -n 30 "$root.log" >&2
    rm -rf "$root" "$root.log"
    return 1
  fi
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root.log"
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
  tar --numeric-owner -C "$root" -c . | podman import -q --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$ref" >/dev/null
  rm -rf "$root"
}

# What a stand-in is made from: its folder's files (and for Rust, the host's toolchain).
standin_digest() {
  { (cd "deploy/standins/$1" && find . -type f | sort | xargs sha256sum); [ "$1" != rust ] || rustc --version; } |
    sha256sum | cut -c 1-16
}

# A stand-in from deploy/standins/$2, built on the Debian base and labelled with its digest;
# the Rust one gets the host's toolchain mounted at /tc.
make_standin() {
  local ref=$1 dir=deploy/standins/$2 mount=() log
  ensure_image debian:bookworm-slim
  [ "$2" != rust ] || mount=(-v "$(rustc --print sysroot):/tc:ro")
  say "making $ref: stand-in from $dir"
  log=$(mktemp "${TMPDIR:-/tmp}/happening-standin.XXXXXX")
  if ! podman build --pull=never "${mount[@]}" --label "io.happening.standin-digest=$(standin_digest "$2")" \
    -t "$ref" "$dir" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}

# Makes sure image $1 is in local storage: there already (a stand-in only if made from the
# stand-in's files as they are), pulled, or made as a stand-in.
ensure_image() {
  local ref name made
  ref=$(image_qualified "$1")
  name=${ref##*/}
  name=${name%%:*}
  if podman image exists "$ref"; then
    made=$(podman image inspect -f '{{index .Labels "io.happening.standin-digest"}}' "$ref")
    if [ -z "$made" ] || [ "$made" = "<no value>" ] || [ "$made" = "$(standin_digest "$name")" ]; then
      return 0
    fi
    say "$ref: its stand-in's files changed"
    make_standin "$ref" "$name"
    return
  fi
  if timeout 120 podman pull -q "$ref" >/dev/null 2>&1; then
    say "pulled $ref"
    return 0
  fi
  case "$name" in
    debian) make_debian_base "$ref" ;;
    rust | postgres | redis | rabbitmq) make_standin "$ref" "$name" ;;
    *)
      echo "test-deploy: no image $ref, it cannot be pulled, and there is no stand-in for it under deploy/standins/" >&2
      return 1
      ;;
  esac
}

# The build keeps its first stage (the compiled workspace over the Rust image, about 1 GB)
# as its cache: drops those of earlier builds, given the log of the latest (podman build
# prints each step's image as `--> ID`).
drop_old_builds() {
  local keep id
  keep=$(awk '/^\[2\//{ exit } /^--> /{ id = $NF } END { print id }' "$1")
  [ -n "$keep" ] || return 0
  for id in $(podman images -q --no-trunc --filter dangling=true); do
    case "${id#sha256:}" in "$keep"*) continue ;; esac
    podman history --no-trunc --format '{{.CreatedBy}}' "$id" | head -n 1 | grep -q 'cargo build --release' || continue
    podman rmi "$id" >/dev/null 2>&1 || true
  done
}
