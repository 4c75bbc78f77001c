# Source this file: it puts a Node.js >= 24 first on PATH, installing one from
# the npm registry into ~/.cache/sluice-node (once) when the machine's node is
# older. sluice needs 24 for reusePort on listen() and for .ts worker files.
sluice_node_major() { "${1:-node}" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(sluice_node_major)" -lt 24 ]; then
  SLUICE_NODE_PREFIX="${SLUICE_NODE_PREFIX:-$HOME/.cache/sluice-node}"
  if [ "$(sluice_node_major "$SLUICE_NODE_PREFIX/bin/node")" -lt 24 ]; then
    echo "sluice: node $(node --version 2>/dev/null) is older than 24; installing Node.js 24 into $SLUICE_NODE_PREFIX" >&2
    npm install -g --prefix "$SLUICE_NODE_PREFIX" node@24 >&2 || return 1 2>/dev/null || exit 1
  fi
  export PATH="$SLUICE_NODE_PREFIX/bin:$PATH"
fi
