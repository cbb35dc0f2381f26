#!/usr/bin/env bash
# Builds helmfile from its Go module into ~/.cache/aicr-helmfile/bin (or
# $HELMFILE_DIR/bin), once per version: the helmfile test
# (tests/cli_deploy_k8s.rs, `make test-helmfile`) lints, templates, syncs and
# destroys a `-d helmfile` bundle with it. `go install module@version` refuses
# helmfile (its go.mod has replace directives), so the module is downloaded,
# copied and built as the main module. A cold build is long (helmfile links
# helm, the Kubernetes client and every cloud SDK of vals): far over what
# .ci/run may spend, which is why CI's `make test-all` skips that test by name.
set -euo pipefail

VERSION=v1.8.0
DIR=${HELMFILE_DIR:-$HOME/.cache/aicr-helmfile}
BIN=$DIR/bin/helmfile

if [ -x "$BIN" ] && [ "$(cat "$DIR/version" 2>/dev/null)" = "$VERSION" ]; then
    exit 0
fi
command -v go >/dev/null 2>&1 || { echo "go is not installed: helmfile is built from its Go module" >&2; exit 1; }
mkdir -p "$DIR/bin"
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
export GOPATH=$work/gopath GOFLAGS=-buildvcs=false
src=$(go mod download -json "github.com/helmfile/helmfile@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$src" ] || { echo "go mod download github.com/helmfile/helmfile@$VERSION gave no directory" >&2; exit 1; }
cp -r "$src" "$work/src"
chmod -R u+w "$work/src"
(cd "$work/src" && go build -o "$BIN.tmp" .)
mv "$BIN.tmp" "$BIN"
echo "$VERSION" > "$DIR/version"
"$BIN" --version
