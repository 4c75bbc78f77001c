# Source this file: it puts a Node.js >= 24 first on PATH, installing one from
# the npm registry into ~/.cache/sluice-node when the machine's node is older.
# sluice needs 24 for reusePort on listen() and for .ts worker entry files.
sluice_node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(sluice_node_major)" -lt 24 ]; then
  SLUICE_NODE_PREFIX="${SLUICE_NODE_PREFIX:-$HOME/.cache/sluice-node}"
  if [ ! -x "$SLUICE_NODE_PREFIX/bin/node" ] || [ "$("$SLUICE_NODE_PREFIX/bin/node" -p 'process.versions.node.split(".")[0]')" -lt 24 ]; then
    echo "provisioning Node.js 24 into $SLUICE_NODE_PREFIX" >&2
    npm install -g --prefix "$SLUICE_NODE_PREFIX" node@24 >&2
  fi
  export PATH="$SLUICE_NODE_PREFIX/bin:$PATH"
fi
echo "using node $(node --version) from $(command -v node)" >&2
