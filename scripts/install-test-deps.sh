#!/usr/bin/env bash
# Installs the system tools the test suite drives for real: tmux (TUI tests),
# sshd/ssh and iproute2 (SSH backend in network namespaces), shellcheck, python3.
set -euo pipefail
need=()
for pair in tmux:tmux shellcheck:shellcheck /usr/sbin/sshd:openssh-server ssh:openssh-client ip:iproute2 python3:python3; do
  tool=${pair%%:*} pkg=${pair#*:}
  command -v "$tool" >/dev/null 2>&1 || [ -x "$tool" ] || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "install-test-deps: missing packages: ${need[*]} (run as root or install them)" >&2; exit 1
  fi
fi
# Wait for another apt (e.g. unattended upgrades) instead of failing on its lock.
${SUDO:-} apt-get -o DPkg::Lock::Timeout=300 update -qq
DEBIAN_FRONTEND=noninteractive ${SUDO:-} apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${need[@]}" >/dev/null
