#!/usr/bin/env bash
# The test command: every crate's unit, integration and end-to-end tests
# (real binaries on loopback, the TUI under tmux, sshd for the SSH backend).
# Installs the system tools they need first (apt-get, as root or via sudo).
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-test-deps.sh
exec cargo test --workspace "$@"
