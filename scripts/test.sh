#!/usr/bin/env bash
# The one test command (see README): installs what the tests need, then runs every test.
# Results land as TRX files under TestResults/.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests need:
# - clang, lld, wasi-libc, libclang-rt-dev-wasm32: build the C test programs for wasm32-wasi at test time;
# - wabt: wat2wasm turns the WebAssembly text fixtures into binaries;
# - docker-registry (distribution 2.8) and apache2-utils (htpasswd): the real registry the image pull
#   tests start on 127.0.0.1;
# - chromium and chromium-driver: the pipeline page's browser test (Selenium drives Debian's own
#   browser; nothing is downloaded at test time).
packages=(clang lld wasi-libc libclang-rt-dev-wasm32 wabt docker-registry apache2-utils chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

rm -rf TestResults
dotnet test Krustlet.sln --configuration Release \
  --logger "trx;LogFilePrefix=results" --logger "console;verbosity=normal" \
  --results-directory TestResults "$@"
