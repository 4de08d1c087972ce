#!/usr/bin/env bash
# Debian packages the deployment tests need, installed only when missing (idempotent):
#   nginx           tests/test_deploy_nginx.py starts it in front of two real nodes
#   docker-compose  tests/test_deploy_files.py validates deploy/compose.yaml (`config`, no engine needed)
# Called by .ci/run before `make test`. Needs root or sudo when something is missing.
set -euo pipefail

missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
if [ ${#missing[@]} -eq 0 ]; then
    echo "ci-prereqs: nginx and docker-compose present"
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "ci-prereqs: need root to install ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
echo "ci-prereqs: installing ${missing[*]}"
"${sudo[@]}" apt-get update -q
# Where systemd runs, the package starts its own nginx on port 80; the tests use their own on free ports.
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]
command -v docker-compose >/dev/null 2>&1
