#!/usr/bin/env bash
# Builds the example modules (examples/src/*.c) for wasm32-wasi with clang and writes them as an OCI
# image layout at examples/images/: one wasm artifact per module (config
# application/vnd.wasm.config.v0+json, one application/vnd.wasm.content.layer.v1+wasm layer titled
# <name>.wasm, the same structure as WasmArtifactPusher pushes, written compactly by printf), named examples.krustlet.dev/<name>:v1 by the
# index's org.opencontainers.image.ref.name annotations. The output has no timestamps: the same
# sources and compiler give the same bytes. Import it with: krustlet image import examples/images
#
# Needs Debian's clang, lld, wasi-libc and libclang-rt-dev-wasm32 (scripts/test.sh installs them).
# Usage: examples/build.sh [output-dir]   (default: examples/images; CLANG overrides the compiler)
set -euo pipefail
export LC_ALL=C
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/images}"
clang="${CLANG:-clang}"
registry="examples.krustlet.dev"
tag="v1"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/layout/blobs/sha256"

# put FILE: stores FILE as a blob; prints "<digest> <size>".
put() {
  local hex size
  hex="$(sha256sum "$1" | cut -d' ' -f1)"
  size="$(stat -c %s "$1")"
  cp "$1" "$work/layout/blobs/sha256/$hex"
  chmod 644 "$work/layout/blobs/sha256/$hex"
  echo "sha256:$hex $size"
}

entries=()
for source in "$here"/src/*.c; do
  name="$(basename "$source" .c)"
  "$clang" --target=wasm32-wasi -O2 -s -o "$work/$name.wasm" "$source"
  read -r layer layer_size < <(put "$work/$name.wasm")

  printf '{"os":"wasip1","architecture":"wasm","layerDigests":["%s"]}' "$layer" > "$work/$name.config.json"
  read -r config config_size < <(put "$work/$name.config.json")

  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.wasm.config.v0+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.wasm.content.layer.v1+wasm","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.title":"%s.wasm"}}]}' \
    "$config" "$config_size" "$layer" "$layer_size" "$name" > "$work/$name.manifest.json"
  read -r manifest manifest_size < <(put "$work/$name.manifest.json")

  entries+=("$(printf '    {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s/%s:%s"}}' \
    "$manifest" "$manifest_size" "$registry" "$name" "$tag")")
  echo "built $registry/$name:$tag  module $layer ($layer_size bytes)"
done

printf '{"imageLayoutVersion":"1.0.0"}' > "$work/layout/oci-layout"
{
  echo '{'
  echo '  "schemaVersion": 2,'
  echo '  "mediaType": "application/vnd.oci.image.index.v1+json",'
  echo '  "manifests": ['
  last=$(( ${#entries[@]} - 1 ))
  for i in "${!entries[@]}"; do
    if [ "$i" -lt "$last" ]; then echo "${entries[$i]},"; else echo "${entries[$i]}"; fi
  done
  echo '  ]'
  echo '}'
} > "$work/layout/index.json"

rm -rf "$out"
mkdir -p "$(dirname "$out")"
cp -r "$work/layout" "$out"
echo "wrote the OCI image layout $out"
