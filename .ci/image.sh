#!/usr/bin/env bash
# image.sh - build the agent image without a daemon or a registry, and check it.
#
# The Containerfile builds from docker.io and gcr.io base images, which CI
# machines cannot reach. This script builds the same runtime image from
# scratch with buildah (vfs storage, no daemon): the dist binary, the
# shared libraries it links (from this machine's Debian), the CA bundle and a
# passwd entry for the non-root user 65532, entrypoint `aicr`. It writes an
# OCI archive, then checks the image: its config (user, entrypoint) and that
# the binary runs on the image's own file system as user 65532 (chroot; CI
# machines cannot start containers). Needs root and buildah.
#
#   OUT (default target/aicr-image.oci.tar)   TAG (default aicr:v<version>)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/aicr-image.oci.tar}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
TAG=${TAG:-aicr:v$version}
B=(buildah --storage-driver vfs)
log() { printf '[image %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

cargo build --profile dist --locked --bin aicr
bin=target/dist/aicr
c=$("${B[@]}" from scratch)
trap '"${B[@]}" umount "$c" >/dev/null 2>&1; "${B[@]}" rm "$c" >/dev/null 2>&1' EXIT
root=$("${B[@]}" mount "$c")
chmod 0755 "$root"
install -D -m 0755 "$bin" "$root/usr/local/bin/aicr"
for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"; done
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0::/root:/sbin/nologin\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$root/etc/group"
mkdir -p "$root/tmp" && chmod 1777 "$root/tmp"

# The binary runs on the image's file system alone, as the image's user.
want="$("$bin" --version)"
got="$(chroot --userspec=65532:65532 "$root" /usr/local/bin/aicr --version)"
[ "$got" = "$want" ] || { log "the image's aicr printed '$got', expected '$want'"; exit 1; }
"${B[@]}" umount "$c" >/dev/null

"${B[@]}" config --user 65532:65532 --entrypoint '["/usr/local/bin/aicr"]' --cmd '[]' \
  --label org.opencontainers.image.version="$version" \
  --label org.opencontainers.image.licenses=Apache-2.0 "$c"
cfg=$("${B[@]}" inspect --type container "$c" | jq -c '.OCIv1.config | [.User, .Entrypoint]')
[ "$cfg" = '["65532:65532",["/usr/local/bin/aicr"]]' ] || { log "unexpected image config: $cfg"; exit 1; }
rm -f "$OUT"
"${B[@]}" commit -q "$c" "oci-archive:$OUT:$TAG" >/dev/null
log "built $TAG into $OUT ($(du -h "$OUT" | cut -f1)); user 65532, entrypoint aicr; '$got' runs on its file system"
