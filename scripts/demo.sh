#!/usr/bin/env bash
# Runs the chapter's chat: open http://127.0.0.1:3000/ in two browser tabs.
# PORT and HOST change where it listens.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --npm
exec cargo run --quiet -p chathub --example chat-server
