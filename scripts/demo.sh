#!/usr/bin/env bash
# Runs the chapter's chat: open http://127.0.0.1:3000/ in two browser tabs.
# PORT and HOST change where it listens.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --npm
# The chapter's server on Node's http, its Socket.IO handed to the Rust hub.
# (The same chat from Rust alone: cargo run -p chathub --example chat-server)
exec node examples/node/chat-server.js
