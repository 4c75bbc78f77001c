/** The admin `/status` document: everything an operator asks first, in one JSON object. */
import type { Supervisor } from '../supervisor/supervisor.ts';

export function statusDocument(supervisor: Supervisor) {
  return {
    state: supervisor.state,
    pid: process.pid,
    started_at: supervisor.startedAt.toISOString(),
    uptime_ms: Date.now() - supervisor.startedAt.getTime(),
    port: supervisor.port ?? null,
    listeners: supervisor.listeners(),
    certificates: supervisor.runtime.certificates().map((certificate) => ({
      ...certificate,
      days_left: Math.floor((Date.parse(certificate.not_after) - Date.now()) / 86_400_000),
    })),
    history: supervisor.history.map(({ at, from, to, event }) => ({ at: new Date(at).toISOString(), from, to, event })),
    backends: supervisor.runtime.backends(),
    upstreams: supervisor.runtime.upstreams(),
    connections: { active: supervisor.activeConnections(), rejected: supervisor.runtime.rejectedConnections() },
    workers: supervisor.runtime.workers().map(({ id, kind, restarts, alive }) => ({ id, kind, restarts, alive })),
    last_reload: supervisor.lastReload ?? null,
    last_restart: supervisor.lastRestart ?? null,
  };
}
