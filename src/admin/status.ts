/** The admin `/status` document: everything an operator asks first, in one JSON object. */
import type { SupervisorView } from '../supervisor/supervisor-view.ts';

export function statusDocument(supervisor: SupervisorView) {
  return {
    state: supervisor.state,
    pid: process.pid,
    started_at: supervisor.startedAt.toISOString(),
    uptime_ms: Date.now() - supervisor.startedAt.getTime(),
    port: supervisor.port ?? null,
    listeners: supervisor.listeners(),
    certificates: supervisor.certificates().map((certificate) => ({
      ...certificate,
      days_left: Math.floor((Date.parse(certificate.not_after) - Date.now()) / 86_400_000),
    })),
    history: supervisor.history.map(({ at, from, to, event }) => ({ at: new Date(at).toISOString(), from, to, event })),
    backends: supervisor.backends(),
    upstreams: supervisor.upstreams(),
    connections: { active: supervisor.activeConnections(), rejected: supervisor.rejectedConnections() },
    workers: supervisor.workers().map(({ id, kind, restarts, alive }) => ({ id, kind, restarts, alive })),
    last_reload: supervisor.lastReload ?? null,
    last_restart: supervisor.lastRestart ?? null,
  };
}
