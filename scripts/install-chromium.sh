#!/usr/bin/env bash
# Debian's chromium for the browser check of the Airflow UI (tests/test_browser.py). Best effort: where it cannot
# be installed (no apt-get, no root or passwordless sudo, no package mirror) it says why and the check is skipped.
set -uo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "install-chromium: no apt-get on this machine; the browser check will be skipped" >&2
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    as_root=()
elif sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "install-chromium: needs root or passwordless sudo; the browser check will be skipped" >&2
    exit 0
fi
echo "install-chromium: installing Debian's chromium (about 20 s)" >&2
if ! { "${as_root[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq \
        --no-install-recommends chromium fonts-liberation >/dev/null; }; then
    echo "install-chromium: apt-get failed; the browser check will be skipped" >&2
fi
exit 0
