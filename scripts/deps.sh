#!/usr/bin/env bash
# Installs the Debian packages streamrec needs to build, test and demo.
# Idempotent: does nothing when everything is present. Uses sudo when not root.
set -euo pipefail
PKGS="cmake make gcc pkg-config clang libclang-rt-14-dev
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
