#!/usr/bin/env bash
# Debian packages some tests use: chromium for the browser check of the Airflow UI (tests/test_browser.py) and
# docker-compose to resolve docker-compose.yaml (tests/test_compose.py). Best effort: where they cannot be
# installed (no apt-get, no root or passwordless sudo, no package mirror) it says why and those checks are skipped.
set -uo pipefail
if [ -x /usr/bin/chromium ] && command -v docker-compose >/dev/null; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "install-test-tools: no apt-get on this machine; the browser and compose checks will be skipped" >&2
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    as_root=()
elif sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "install-test-tools: needs root or passwordless sudo; the browser and compose checks will be skipped" >&2
    exit 0
fi
echo "install-test-tools: installing Debian's chromium and docker-compose (about 30 s)" >&2
if ! { "${as_root[@]}" apt-get update -qq && "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends chromium fonts-liberation docker-compose >/dev/null; }; then
    echo "install-test-tools: apt-get failed; the browser and compose checks will be skipped" >&2
fi
exit 0
