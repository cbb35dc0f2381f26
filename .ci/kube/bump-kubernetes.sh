#!/usr/bin/env bash
# bump-kubernetes.sh vX.Y.Z - point ./kubernetes/go.mod at another
# k8s.io/kubernetes release: the staging modules k8s.io/X that this version's
# own go.mod replaces with ./staging/src/k8s.io/X are replaced here with their
# published release v0.Y.Z; then go mod tidy writes go.mod and go.sum.
# install.sh rebuilds on its next run (the key of a build is go.mod + go.sum).
set -euo pipefail
V=${1:?usage: bump-kubernetes.sh vX.Y.Z}
[[ $V =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || { echo "not a Kubernetes release: $V (expected v1.Y.Z)" >&2; exit 2; }
minor=${BASH_REMATCH[1]} patch=${BASH_REMATCH[2]}
cd "$(dirname "${BASH_SOURCE[0]}")/kubernetes"
export GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOFLAGS=-buildvcs=false
export GOMODCACHE=${GOMODCACHE:-${KUBE_DIR:-$HOME/.cache/aicr-test-kube-modern}/gomodcache}   # install.sh's
upstream=$(go mod download -json "k8s.io/kubernetes@$V" | jq -r .GoMod)
godirective=$(awk '$1=="go"{print $2; exit}' "$upstream")
{
  sed -n '1,/^module /p' go.mod
  echo; echo "go $godirective"; echo
  grep -E '^godebug ' "$upstream" || true
  echo; echo "tool ("
  for c in kube-apiserver kube-controller-manager kube-scheduler; do printf '\tk8s.io/kubernetes/cmd/%s\n' "$c"; done
  echo ")"; echo; echo "require k8s.io/kubernetes $V"; echo; echo "replace ("
  sed -n 's|^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/src/.*|\1|p' "$upstream" |
    while read -r m; do printf '\t%s => %s v0.%s.%s\n' "$m" "$m" "$minor" "$patch"; done
  echo ")"
} > go.mod.new
mv go.mod.new go.mod
go mod tidy
echo "kubernetes/go.mod: k8s.io/kubernetes $V, $(grep -c ' => ' go.mod) staging modules replaced"
