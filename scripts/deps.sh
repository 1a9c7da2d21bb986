#!/usr/bin/env bash
# Installs the Debian packages streamrec needs to build, test and demo.
# Idempotent: does nothing when everything is present. Uses sudo when not root.
# Everything a test needs is here, so that on CI no test skips (a skip fails
# CI, scripts/ctest.sh):
#   build:        cmake make gcc pkg-config and the -dev libraries
#   TSan / ASan:  gcc's libtsan2 / libasan8 / libubsan1 come with gcc (12)
#   fuzz_smoke:   clang libclang-rt-14-dev (libFuzzer)
#   format-check: clang-format (Debian 12: 14)
#   0210, 0220:   kcat;  0011, 0220: python3-avro;  0220: python3-kafka
#   0220-0260:    python3 (/usr/bin/python3: JSON, HTTP, sockets)
#   bench:        time
set -euo pipefail
PKGS="cmake make gcc pkg-config clang libclang-rt-14-dev clang-format
      librdkafka-dev libavro-dev libopenblas-dev libuv1-dev libroaring-dev
      libjansson-dev libxxhash-dev libhttp-parser-dev kcat python3 python3-avro python3-kafka time"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
