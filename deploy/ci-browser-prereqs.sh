#!/usr/bin/env bash
# Debian packages the web dashboard's browser tests (tests/test_web_browser.py) need, installed
# only when missing (idempotent):
#   chromium, chromium-driver  headless Chromium at /usr/bin/chromium, driven by Playwright for Python
#                              (Playwright's own browser download is never used: it needs the internet)
#   fonts-wqy-zenhei           a CJK font, so that the Chinese pages' screenshots are legible
# Called by .ci/run before `make test`. Needs root or sudo when something is missing. Without
# Chromium the browser tests skip with a message; nothing else depends on it.
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if command -v fc-list >/dev/null 2>&1; then
    [ -n "$(fc-list :lang=zh 2>/dev/null | head -n 1)" ] || missing+=(fonts-wqy-zenhei)
else
    dpkg -s fonts-wqy-zenhei >/dev/null 2>&1 || missing+=(fonts-wqy-zenhei)
fi
if [ ${#missing[@]} -eq 0 ]; then
    echo "ci-browser-prereqs: chromium, chromium-driver and a CJK font present"
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "ci-browser-prereqs: need root to install ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
echo "ci-browser-prereqs: installing ${missing[*]}"
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
[ -x /usr/bin/chromium ]
/usr/bin/chromium --version || true
