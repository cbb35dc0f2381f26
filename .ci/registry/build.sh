#!/usr/bin/env bash
# Builds the OCI registry of the air-gap tests (distribution v3's `registry`,
# the version in go.mod) into $REGISTRY_DIR (~/.cache/aicr-test-registry),
# once: it is rebuilt only when go.mod or go.sum change. Quiet; the build log
# is kept in $REGISTRY_DIR/build.log.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${REGISTRY_DIR:-$HOME/.cache/aicr-test-registry}"
mkdir -p "$dir"
stamp="$(cat "$here/go.mod" "$here/go.sum" | sha256sum | cut -d' ' -f1)"
if [ -x "$dir/registry" ] && [ "$(cat "$dir/stamp" 2>/dev/null)" = "$stamp" ]; then
    exit 0
fi
if ! (cd "$here" && GOFLAGS=-mod=mod go build -trimpath -o "$dir/registry.new" \
        github.com/distribution/distribution/v3/cmd/registry) >"$dir/build.log" 2>&1; then
    echo "building the test OCI registry failed: see $dir/build.log" >&2
    exit 1
fi
mv "$dir/registry.new" "$dir/registry"
echo "$stamp" > "$dir/stamp"
