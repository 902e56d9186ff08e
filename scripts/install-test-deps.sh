#!/usr/bin/env bash
# Installs the system packages the test suite drives for real: OpenSSH's sshd
# (integration tests), the shells scripts are quoted for (bash, dash, zsh, ksh),
# iproute2 (network namespaces for unreachable/slow/cut-off hosts) and Debian's
# chromium (web console tests through Playwright; never `playwright install`).
# Idempotent: packages already present are not fetched again.
set -euo pipefail

packages=(openssh-server openssh-client zsh ksh dash iproute2 chromium procps)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "test system packages present: ${packages[*]}"
