#!/usr/bin/env bash
# The test command: every crate's unit, integration and end-to-end tests
# (real binaries on loopback, the TUI under tmux, sshd for the SSH backend).
set -euo pipefail
cd "$(dirname "$0")"
exec cargo test --workspace "$@"
