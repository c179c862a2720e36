#!/usr/bin/env bash
# Installs Tally's pinned test/dev binaries into .tools/bin/ (see tools/README.md).
#
#   bash tools/install.sh [options] [binary...]
#
#   binary             only these (nats-server etcd kube-apiserver kubectl helm promtool, or one of
#                      the cluster binaries below); default: those six
#   --kube             what the kube tier's single-node cluster needs (test/harness/cluster.ts):
#                      etcd kube-apiserver kubectl helm, and kubelet kube-controller-manager
#                      kube-scheduler kube-proxy (k8s.io/kubernetes), containerd
#                      containerd-shim-runc-v2 ctr (github.com/containerd/containerd/v2)
#   --rebuild          build with Go even if a cached, KUBEBUILDER_ASSETS or PATH copy exists
#   --verify           run every binary's version check, even when nothing changed
#   --sync-modules     regenerate tools/go/*/go.mod + go.sum from tools/versions.env, then exit
#
# Env: TALLY_TOOLS_CACHE (default ~/.cache/tally/tools), KUBEBUILDER_ASSETS,
#      TALLY_TOOLS_REBUILD=1 (= --rebuild), TALLY_TOOLS_REUSE=0 (never link PATH/KUBEBUILDER_ASSETS copies).
#
# Warm path (everything linked and stamped already): no Go, no binary executed; a few stat calls.
set -euo pipefail

T_START=$EPOCHREALTIME
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/tools"
BIN_DIR="$ROOT/.tools/bin"
STAMP_DIR="$ROOT/.tools/stamps"
CACHE="${TALLY_TOOLS_CACHE:-$HOME/.cache/tally/tools}"
REBUILD="${TALLY_TOOLS_REBUILD:-0}"
REUSE="${TALLY_TOOLS_REUSE:-1}"
VERIFY=0
SYNC=0

# Bump when the way a group is built changes (flags, ldflags): forces a rebuild of that group.
declare -A RECIPE=([nats-server]=1 [etcd]=1 [kubernetes]=1 [helm]=1 [promtool]=1 [kubernetes-node]=1 [containerd]=1)

# shellcheck source=tools/versions.env
source "$TOOLS/versions.env"

ALL=(nats-server etcd kube-apiserver kubectl helm promtool)
# --kube: what test/harness/cluster.ts runs besides etcd, kube-apiserver and kubectl (helm for the chart).
KUBE=(etcd kube-apiserver kubectl helm kubelet kube-controller-manager kube-scheduler kube-proxy
  containerd containerd-shim-runc-v2 ctr)
declare -A GROUP=([nats-server]=nats-server [etcd]=etcd [kube-apiserver]=kubernetes [kubectl]=kubernetes
  [helm]=helm [promtool]=promtool [kubelet]=kubernetes-node [kube-controller-manager]=kubernetes-node
  [kube-scheduler]=kubernetes-node [kube-proxy]=kubernetes-node [containerd]=containerd
  [containerd-shim-runc-v2]=containerd [ctr]=containerd)
declare -A GROUP_BINS=([nats-server]="nats-server" [etcd]="etcd" [kubernetes]="kube-apiserver kubectl"
  [helm]="helm" [promtool]="promtool" [kubernetes-node]="kubelet kube-controller-manager kube-scheduler kube-proxy"
  [containerd]="containerd containerd-shim-runc-v2 ctr")
# Wrapper module folder (tools/go/<dir>) of each group: both Kubernetes groups share one module, so
# every k8s.io/kubernetes binary is built from the same pinned dependency graph. They are two groups
# (two cache folders) so that the default set does not build the node binaries.
declare -A MODDIR=([nats-server]=nats-server [etcd]=etcd [kubernetes]=kubernetes [helm]=helm
  [promtool]=promtool [kubernetes-node]=kubernetes [containerd]=containerd)
MODDIRS=(nats-server etcd kubernetes helm promtool containerd)
IFS=. read -r _pmaj _pmin _ppat <<<"$PROMETHEUS_VERSION"
PROMETHEUS_MODULE_VERSION="v0.$((_pmaj * 100 + _pmin)).$_ppat"
IFS=. read -r _kmaj _kmin _kpat <<<"$KUBERNETES_VERSION"
declare -A VERSION=([nats-server]=$NATS_SERVER_VERSION [etcd]=$ETCD_VERSION [kubernetes]=$KUBERNETES_VERSION
  [helm]=$HELM_VERSION [promtool]=$PROMETHEUS_VERSION [kubernetes-node]=$KUBERNETES_VERSION
  [containerd]=$CONTAINERD_VERSION)
# The one pinned require of each wrapper module (tools/go/<group>/go.mod).
declare -A MODULE=([nats-server]=github.com/nats-io/nats-server/v2 [etcd]=go.etcd.io/etcd/server/v3
  [kubernetes]=k8s.io/kubernetes [helm]=helm.sh/helm/v3 [promtool]=github.com/prometheus/prometheus
  [kubernetes-node]=k8s.io/kubernetes [containerd]=github.com/containerd/containerd/v2)
declare -A MODULE_VERSION=([nats-server]=v$NATS_SERVER_VERSION [etcd]=v$ETCD_VERSION
  [kubernetes]=v$KUBERNETES_VERSION [helm]=v$HELM_VERSION [promtool]=$PROMETHEUS_MODULE_VERSION
  [kubernetes-node]=v$KUBERNETES_VERSION [containerd]=v$CONTAINERD_VERSION)
declare -A PKG=([nats-server]=github.com/nats-io/nats-server/v2 [etcd]=go.etcd.io/etcd/server/v3
  [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver [kubectl]=k8s.io/kubernetes/cmd/kubectl
  [helm]=helm.sh/helm/v3/cmd/helm [promtool]=github.com/prometheus/prometheus/cmd/promtool
  [kubelet]=k8s.io/kubernetes/cmd/kubelet [kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
  [kube-scheduler]=k8s.io/kubernetes/cmd/kube-scheduler [kube-proxy]=k8s.io/kubernetes/cmd/kube-proxy
  [containerd]=github.com/containerd/containerd/v2/cmd/containerd
  [containerd-shim-runc-v2]=github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
  [ctr]=github.com/containerd/containerd/v2/cmd/ctr)
# Build tags, as containerd's Makefile (the shim leaves out the gRPC server it does not use).
declare -A TAGS=([containerd]=urfave_cli_no_docs [containerd-shim-runc-v2]="urfave_cli_no_docs no_grpc"
  [ctr]=urfave_cli_no_docs)

log() { printf 'tools: %s\n' "$*"; }
die() { printf 'tools: error: %s\n' "$*" >&2; exit 1; }
elapsed() { # start [end] -> seconds with one decimal
  local s=${1/[.,]/} e=${2:-$EPOCHREALTIME}
  e=${e/[.,]/}
  local d=$(((e - s) / 100000))
  printf '%d.%d' $((d / 10)) $((d % 10))
}

# --- version checks -----------------------------------------------------------------------
version_output() { # binary path
  case $1 in
    kubectl) "$2" version --client 2>&1 ;;
    helm) "$2" version 2>&1 ;;
    containerd-shim-runc-v2) "$2" -v 2>&1 ;;
    *) "$2" --version 2>&1 ;;
  esac
}
# Regex (bash ERE) that the version output must match for the exact pinned version.
exact_re() {
  local v=${VERSION[${GROUP[$1]}]} end='($|[^0-9A-Za-z.+-])'
  v=${v//./\\.}
  case $1 in
    nats-server) echo "nats-server: v$v$end" ;;
    etcd) echo "etcd Version: $v$end" ;;
    kube-apiserver | kubelet | kube-controller-manager | kube-scheduler | kube-proxy) echo "Kubernetes v$v$end" ;;
    kubectl) echo "Client Version: v$v$end" ;;
    helm) echo "Version:\"v$v\"" ;;
    promtool) echo "promtool, version $v$end" ;;
    containerd | ctr) echo "${1} github\.com/containerd/containerd/v2 v$v$end" ;;
    containerd-shim-runc-v2) echo "Version:[[:space:]]+v$v$end" ;;
  esac
}
check_exact() { # binary path -> 0 when it runs and reports the pinned version
  local out
  out=$(version_output "$1" "$2") || return 1
  [[ $out =~ $(exact_re "$1") ]]
}

# KUBEBUILDER_ASSETS: envtest's etcd, kube-apiserver, kubectl. Accepted when kube-apiserver and
# kubectl are the same minor and >= 1.34, and etcd is 3.6 or newer.
declare -A KBA_OK=()
probe_kubebuilder_assets() {
  local d=${KUBEBUILDER_ASSETS:-} out a_minor c_minor
  [[ $REUSE == 1 && -n $d ]] || return 0
  if [[ -x $d/kube-apiserver && -x $d/kubectl ]]; then
    out=$("$d/kube-apiserver" --version 2>&1) || out=
    [[ $out =~ Kubernetes\ v1\.([0-9]+)\. ]] && a_minor=${BASH_REMATCH[1]} || a_minor=
    out=$("$d/kubectl" version --client 2>&1) || out=
    [[ $out =~ Client\ Version:\ v1\.([0-9]+)\. ]] && c_minor=${BASH_REMATCH[1]} || c_minor=
    if [[ -n $a_minor && $a_minor == "$c_minor" && $a_minor -ge 34 ]]; then
      KBA_OK[kube-apiserver]=1 KBA_OK[kubectl]=1
    else
      log "KUBEBUILDER_ASSETS=$d: kube-apiserver/kubectl not a matching 1.34+ pair (minor '${a_minor}'/'${c_minor}'), not used"
    fi
  fi
  if [[ -x $d/etcd ]]; then
    out=$("$d/etcd" --version 2>&1) || out=
    if [[ $out =~ etcd\ Version:\ 3\.([0-9]+)\. ]] && ((BASH_REMATCH[1] >= 6)); then
      KBA_OK[etcd]=1
    else
      log "KUBEBUILDER_ASSETS=$d: etcd is not 3.6+, not used"
    fi
  fi
}

# --- keys and stamps ----------------------------------------------------------------------
declare -A KEY=()
compute_keys() { # key of a group = what its cached binaries were built from
  local g m h f gomod re
  declare -A sum=()
  while read -r h f; do sum[$f]=${h:0:16}; done < <(cd "$TOOLS/go" && sha256sum -- */go.mod */go.sum)
  for g in "${!GROUP_BINS[@]}"; do
    m=${MODDIR[$g]}
    gomod=$(<"$TOOLS/go/$m/go.mod")
    re="[[:space:]]${MODULE[$g]//./\\.} ${MODULE_VERSION[$g]//./\\.}( |$)"
    [[ $gomod =~ $re ]] ||
      die "tools/go/$m/go.mod does not require ${MODULE[$g]} ${MODULE_VERSION[$g]} (tools/versions.env); run: bash tools/install.sh --sync-modules"
    KEY[$g]="$g ${VERSION[$g]} recipe=${RECIPE[$g]} mod=${sum[$m/go.mod]:-none} sum=${sum[$m/go.sum]:-none}"
  done
}
cache_dir() { echo "$CACHE/$1-${VERSION[$1]}"; }
cache_ok() { # group -> cached binaries exist and were built from the current key
  local g=$1 d b stamp
  d=$(cache_dir "$g")
  [[ -f $d/.stamp ]] || return 1
  read -r stamp <"$d/.stamp" || true
  [[ $stamp == "${KEY[$g]}" ]] || return 1
  for b in ${GROUP_BINS[$g]}; do [[ -x $d/$b ]] || return 1; done
}
local_key() { # binary -> key of the link in .tools/bin (inputs that decide where it comes from)
  local b=$1
  local k="${KEY[${GROUP[$b]}]} reuse=$REUSE cache=$CACHE"
  case $b in etcd | kube-apiserver | kubectl) k+=" kba=${KUBEBUILDER_ASSETS:-}" ;; esac
  echo "$k"
}
file_id() { stat -L -c '%d:%i:%Y:%s' "$1" 2>/dev/null || true; }

# --- building -----------------------------------------------------------------------------
declare -A BUILT=() BUILD_SECS=()
ldflags_for() { # binary -> extra -ldflags for version reporting (run inside the wrapper module)
  local b=$1 date
  case $b in
    kube-apiserver | kubectl | kubelet | kube-controller-manager | kube-scheduler | kube-proxy)
      date=$(go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes 2>/dev/null || echo 1970-01-01T00:00:00Z)
      local p f=()
      for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
        f+=("-X $p.gitVersion=v$KUBERNETES_VERSION" "-X $p.gitMajor=$_kmaj" "-X $p.gitMinor=$_kmin"
          "-X $p.gitTreeState=clean" "-X $p.buildDate=$date")
      done
      echo "${f[*]}"
      ;;
    etcd) echo "-X go.etcd.io/etcd/api/v3/version.GitSHA=v$ETCD_VERSION" ;;
    containerd | containerd-shim-runc-v2 | ctr)
      local v=github.com/containerd/containerd/v2/version
      echo "-X $v.Version=v$CONTAINERD_VERSION -X $v.Revision=v$CONTAINERD_VERSION -X $v.Package=github.com/containerd/containerd/v2"
      ;;
    nats-server) echo "-X github.com/nats-io/nats-server/v2/server.gitCommit=v$NATS_SERVER_VERSION" ;;
    helm)
      # As helm's Makefile: default Capabilities.KubeVersion = client-go's 0.X -> 1.X.
      local cg
      cg=$(go list -m -f '{{.Version}}' k8s.io/client-go)
      cg=${cg#v0.}
      cg=${cg%%.*}
      echo "-X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
        "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$cg" \
        "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$cg"
      ;;
    promtool)
      date=$(go list -m -f '{{.Time.UTC.Format "20060102-15:04:05"}}' github.com/prometheus/prometheus 2>/dev/null || true)
      local v=github.com/prometheus/common/version
      echo "-X $v.Version=$PROMETHEUS_VERSION -X $v.Revision=$PROMETHEUS_MODULE_VERSION -X $v.Branch=HEAD" \
        "-X $v.BuildUser=tally-tools -X $v.BuildDate=$date"
      ;;
  esac
}
build_group() { # group -> builds every binary of the group into the cache
  local g=$1 d b t0 lockfd
  [[ -n ${BUILT[$g]:-} ]] && return 0
  command -v go >/dev/null || die "go is not installed (needed to build $g; see tools/README.md)"
  d=$(cache_dir "$g")
  mkdir -p "$d"
  exec {lockfd}>"$d/.lock"
  flock "$lockfd" # another clone may be building the same version right now
  if [[ $REBUILD != 1 ]] && cache_ok "$g"; then # ... and it finished while we waited
    BUILT[$g]=cache
    exec {lockfd}>&-
    return 0
  fi
  rm -f "$d/.stamp"
  log "$g ${VERSION[$g]}: building with $(go env GOVERSION) (tools/go/${MODDIR[$g]}) ..."
  for b in ${GROUP_BINS[$g]}; do
    t0=$EPOCHREALTIME
    (
      cd "$TOOLS/go/${MODDIR[$g]}"
      export GOWORK=off CGO_ENABLED=0
      go build -trimpath -buildvcs=false -tags "${TAGS[$b]:-}" -ldflags "-s -w $(ldflags_for "$b")" \
        -o "$d/.$b.tmp.$$" "${PKG[$b]}"
    ) || { rm -f "$d/.$b.tmp.$$"; die "building $b ${VERSION[$g]} failed"; }
    mv -f "$d/.$b.tmp.$$" "$d/$b"
    BUILD_SECS[$b]=$(elapsed "$t0")
    log "  $b built in ${BUILD_SECS[$b]}s"
  done
  printf '%s\nbuilt %s with %s\n' "${KEY[$g]}" "$(date -u +%FT%TZ)" "$(go env GOVERSION)" >"$d/.stamp"
  BUILT[$g]=built
  exec {lockfd}>&-
}

# --- go.mod generation (--sync-modules) --------------------------------------------------
sync_modules() {
  command -v go >/dev/null || die "go is not installed"
  local g b mod gomod staging pkgs
  for g in "${MODDIRS[@]}"; do
    mod="${MODULE[$g]} ${MODULE_VERSION[$g]}"
    log "sync tools/go/$g: $mod"
    pkgs=()
    for b in "${!GROUP[@]}"; do [[ ${MODDIR[${GROUP[$b]}]} == "$g" ]] && pkgs+=("${PKG[$b]}"); done
    {
      printf 'module tally.local/tools/%s\n\ngo 1.26.0\n\n' "$g"
      if [[ $g == kubernetes ]]; then
        printf '%s\n' "// Builds kube-apiserver, kubectl and the node binaries (kubelet, kube-proxy," \
          "// kube-controller-manager, kube-scheduler) from k8s.io/kubernetes. Every k8s.io/*" \
          "// staging module must be replaced with the matching v0.X.Y: k8s.io/kubernetes" \
          "// requires them as v0.0.0 and only its own (ignored) replace points at ./staging." ""
      fi
      printf 'tool (\n'
      printf '\t%s\n' "${pkgs[@]}" | sort
      printf ')\n\nrequire %s\n' "$mod"
      if [[ $g == kubernetes ]]; then
        gomod=$(cd "$TOOLS/go/$g" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION" |
          sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
        [[ -f $gomod ]] || die "could not download k8s.io/kubernetes@v$KUBERNETES_VERSION"
        staging=$(awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$gomod")
        printf '\nreplace (\n'
        for b in $staging; do printf '\t%s => %s v0.%s.%s\n' "$b" "$b" "$_kmin" "$_kpat"; done
        printf ')\n'
      fi
    } >"$TOOLS/go/$g/go.mod"
    rm -f "$TOOLS/go/$g/go.sum"
    (cd "$TOOLS/go/$g" && GOWORK=off go mod tidy)
  done
  log "done; review and commit tools/go/"
}

# --- main ---------------------------------------------------------------------------------
WANT=()
for a in "$@"; do
  case $a in
    --rebuild) REBUILD=1 ;;
    --verify) VERIFY=1 ;;
    --sync-modules) SYNC=1 ;;
    --kube) WANT+=("${KUBE[@]}") ;;
    -h | --help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $a" ;;
    *) [[ -n ${GROUP[$a]:-} ]] || die "unknown binary $a (one of: ${ALL[*]} ${KUBE[*]:4})"; WANT+=("$a") ;;
  esac
done
if [[ $SYNC == 1 ]]; then sync_modules; exit 0; fi
if ((${#WANT[@]})); then # --kube plus names may repeat some
  declare -A _seen=()
  _want=()
  for b in "${WANT[@]}"; do [[ -n ${_seen[$b]:-} ]] || { _seen[$b]=1; _want+=("$b"); }; done
  WANT=("${_want[@]}")
else
  WANT=("${ALL[@]}")
fi

mkdir -p "$BIN_DIR" "$STAMP_DIR"
compute_keys

# Pass 1 (warm path): links whose stamp still matches are left alone, without running anything.
TODO=()
declare -A SOURCE=()
for b in "${WANT[@]}"; do
  stamp=
  [[ -f $STAMP_DIR/$b ]] && { IFS= read -r stamp <"$STAMP_DIR/$b" || true; }
  want="$(local_key "$b")|$(file_id "$BIN_DIR/$b")"
  if [[ $REBUILD != 1 && -n $stamp && ${stamp%|*} == "$want" && -L $BIN_DIR/$b ]]; then
    SOURCE[$b]=${stamp##*|}
    if [[ $VERIFY == 1 ]]; then
      check_exact "$b" "$BIN_DIR/$b" || [[ ${SOURCE[$b]} == KUBEBUILDER_ASSETS* ]] ||
        die "$b at $(readlink "$BIN_DIR/$b") fails its version check; rerun with --rebuild"
    fi
    log "$(printf '%-15s %-8s reused: %s' "$b" "${VERSION[${GROUP[$b]}]}" "${SOURCE[$b]}")"
  else
    TODO+=("$b")
  fi
done

# Pass 2: resolve, build if needed, link, verify, stamp.
if ((${#TODO[@]})) && [[ $REBUILD != 1 ]]; then probe_kubebuilder_assets; fi
for b in "${TODO[@]}"; do
  g=${GROUP[$b]}
  target="" src=""
  if [[ ${BUILT[$g]:-} == built ]]; then
    target=$(cache_dir "$g")/$b src="built in ${BUILD_SECS[$b]}s"
  elif [[ -n ${KBA_OK[$b]:-} ]]; then
    target=$KUBEBUILDER_ASSETS/$b src="reused: KUBEBUILDER_ASSETS $KUBEBUILDER_ASSETS"
  elif [[ $REBUILD != 1 ]] && cache_ok "$g"; then
    target=$(cache_dir "$g")/$b src="reused: cache"
  elif [[ $REUSE == 1 && $REBUILD != 1 ]]; then
    p=$(type -P "$b" || true)
    if [[ -n $p && $(realpath "$p") != "$(realpath -m "$BIN_DIR/$b")" && $p != "$CACHE"/* ]] && check_exact "$b" "$p"; then
      target=$(realpath "$p") src="reused: PATH $p"
    fi
  fi
  if [[ -z $target ]]; then
    build_group "$g"
    target=$(cache_dir "$g")/$b
    if [[ ${BUILT[$g]} == built ]]; then src="built in ${BUILD_SECS[$b]}s"; else src="reused: cache"; fi
  fi
  ln -sfn "$target" "$BIN_DIR/$b"
  if ! check_exact "$b" "$BIN_DIR/$b"; then
    if [[ $src == "reused: KUBEBUILDER_ASSETS"* ]] && version_output "$b" "$BIN_DIR/$b" >/dev/null; then
      src+=" ($(version_output "$b" "$BIN_DIR/$b" | head -n1))"
    else
      rm -f "$BIN_DIR/$b" "$STAMP_DIR/$b"
      die "$b from $target does not run or does not report ${VERSION[$g]}: $(version_output "$b" "$target" | head -n3)"
    fi
  fi
  # What a later warm run reports: where the link points (a fresh build is "cache" from then on).
  stamped=${src#reused: }
  [[ $stamped == built* ]] && stamped=cache
  printf '%s|%s|%s\n' "$(local_key "$b")" "$(file_id "$BIN_DIR/$b")" "$stamped" >"$STAMP_DIR/$b"
  log "$(printf '%-15s %-8s %s' "$b" "${VERSION[$g]}" "$src")"
done

log "${#WANT[@]} binaries ready in .tools/bin (total $(elapsed "$T_START")s)"
