#!/usr/bin/env bash
# Debian packages some tests use: chromium for the browser check of the Airflow UI (tests/test_browser.py),
# docker-compose to resolve docker-compose.yaml (tests/test_compose.py) and redis-server, the Celery broker of the
# scale-out check (tests/test_scale_out.py). Best effort: where they cannot be installed (no apt-get, no root or
# passwordless sudo, no package mirror) it says why and those checks are skipped.
set -uo pipefail
packages=()
if [ ! -x /usr/bin/chromium ]; then packages+=(chromium fonts-liberation); fi
if ! command -v docker-compose >/dev/null; then packages+=(docker-compose); fi
if ! command -v redis-server >/dev/null; then packages+=(redis-server); fi
if [ ${#packages[@]} = 0 ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "install-test-tools: no apt-get on this machine; the checks needing ${packages[*]} will be skipped" >&2
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    as_root=()
elif sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "install-test-tools: needs root or passwordless sudo; the checks needing ${packages[*]} will be skipped" >&2
    exit 0
fi
echo "install-test-tools: installing Debian's ${packages[*]} (about 30 s)" >&2
# policy-rc.d 101: the package must not start a system-wide redis-server (the scale-out check runs its own)
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null && "${as_root[@]}" chmod +x "$policy"
    trap '"${as_root[@]}" rm -f "$policy"' EXIT
fi
if ! { "${as_root[@]}" apt-get update -qq && "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${packages[@]}" >/dev/null; }; then
    echo "install-test-tools: apt-get failed; the checks needing ${packages[*]} will be skipped" >&2
fi
exit 0
