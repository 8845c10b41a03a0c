#!/usr/bin/env bash
# Build kube-apiserver, kube-controller-manager, kube-scheduler and etcd from
# the Go modules pinned in tests/stack/k8s/go.mod, and kwok (fake nodes and
# pods) at the version pinned below. Binaries are cached outside the checkout,
# keyed by what determines them (go.mod, go.sum, link flags), and rebuilt only
# when that changes.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
mod_dir="$here/tests/stack/k8s"
cache_root="${LAYERED_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/layered-eks-rds}"

# what `kubectl version` and clients see: the pinned release, not v0.0.0-master
k8s_version=$(sed -n 's/^[[:space:]]*k8s.io\/kubernetes \(v[0-9.]*\).*/\1/p' "$mod_dir/go.mod")
[[ -n "$k8s_version" ]] || { echo "cannot read the k8s.io/kubernetes version from $mod_dir/go.mod" >&2; exit 1; }
minor=$(cut -d. -f2 <<<"$k8s_version")
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

key=$( { cat "$mod_dir/go.mod" "$mod_dir/go.sum"; echo "$ldflags"; } | sha256sum | cut -c1-16)
bin_dir="$cache_root/k8s-$key/bin"
# kwok is its own module; its stage definitions ship in the module source
kwok_version=v0.8.0
kwok_dir="$cache_root/kwok-$kwok_version"

case "${1:-}" in
  --print-bin-dir) echo "$bin_dir"; exit 0 ;;
  --print-kwok-dir) echo "$kwok_dir"; exit 0 ;;
esac

build_kwok() {
  if [[ -x "$kwok_dir/bin/kwok" && -d "$kwok_dir/stage" && -d "$kwok_dir/crd" ]]; then
    echo "kwok $kwok_version up to date in $kwok_dir"
    return
  fi
  command -v go >/dev/null || { echo "go is required to build kwok" >&2; exit 1; }
  echo "building kwok $kwok_version ..."
  mkdir -p "$kwok_dir/bin"
  (cd / && CGO_ENABLED=0 GOBIN="$kwok_dir/bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$kwok_version")
  local src
  src="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$kwok_version/kustomize/stage"
  [[ -d "$src" ]] || { echo "kwok stage definitions not found in $src" >&2; exit 1; }
  rm -rf "$kwok_dir/stage" "$kwok_dir/crd"
  cp -r "$src" "$kwok_dir/stage"
  cp -r "$src/../crd/bases" "$kwok_dir/crd"
  chmod -R u+w "$kwok_dir/stage" "$kwok_dir/crd"
  for old in "$cache_root"/kwok-*; do
    [[ "$old" == "$kwok_dir" ]] || rm -rf "$old"
  done
}
build_kwok

tools=(
  "kube-apiserver:k8s.io/kubernetes/cmd/kube-apiserver"
  "kube-controller-manager:k8s.io/kubernetes/cmd/kube-controller-manager"
  "kube-scheduler:k8s.io/kubernetes/cmd/kube-scheduler"
  "etcd:go.etcd.io/etcd/server/v3"
)

missing=()
for t in "${tools[@]}"; do
  [[ -x "$bin_dir/${t%%:*}" ]] || missing+=("$t")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "k8s $k8s_version binaries up to date in $bin_dir"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build the local control plane" >&2; exit 1; }
mkdir -p "$bin_dir"
cd "$mod_dir"
echo "downloading Go modules for Kubernetes $k8s_version (first run only) ..."
go mod download

# a line every 30 s while a long compile runs, so CI logs show progress
ticker() {
  local what=$1 start=$2
  while sleep 30; do echo "    ... still building $what ($(( $(date +%s) - start ))s)"; done
}

n=0
for t in "${missing[@]}"; do
  n=$((n + 1))
  name=${t%%:*}
  pkg=${t#*:}
  echo "[$n/${#missing[@]}] building $name from $pkg (first build takes several minutes on 2 cores) ..."
  start=$(date +%s)
  ticker "$name" "$start" &
  tick=$!
  if ! CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin_dir/$name.tmp" "$pkg"; then
    kill "$tick" 2>/dev/null || true
    exit 1
  fi
  kill "$tick" 2>/dev/null || true
  mv "$bin_dir/$name.tmp" "$bin_dir/$name"
  echo "[$n/${#missing[@]}] $name built in $(( $(date +%s) - start ))s"
done

# drop builds of earlier pins
for old in "$cache_root"/k8s-*; do
  [[ "$old" == "$cache_root/k8s-$key" ]] || rm -rf "$old"
done
echo "k8s $k8s_version binaries ready in $bin_dir"
