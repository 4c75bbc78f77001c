#!/usr/bin/env bash
# Runs a command with a Node.js >= 24 first on PATH (see .ci/node.sh), so that
# `npm start` and `npm test` work even where the machine's node is older.
# `exec` keeps the command in this process: signals reach it directly.
set -e
# shellcheck source=../.ci/node.sh
source "$(dirname "$0")/../.ci/node.sh"
exec "$@"
