/**
 * TLS session resumption with the supervisor's shared ticket keys: a
 * session made on one listener thread resumes on the other, and a session
 * made before `sluice restart` (SIGUSR2) resumes on the successor. With
 * `session_tickets: false` nothing resumes.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testCa, type TestCa } from '../support/certs.ts';
import { testConfig } from '../support/config-file.ts';
import { killAll, type LogLine, type SluiceProcess, startRouting, stopSluice } from '../support/sluice-process.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';

interface Ctx {
  ca?: TestCa;
  a?: TestUpstream;
  sluice?: SluiceProcess;
  tlsPort?: number;
}
const resumption = suite<Ctx>('tls-session-resumption');

interface Visit {
  status: number;
  reused: boolean;
  /** The session to resume later (the last ticket the server sent). */
  session: Buffer | undefined;
}

/** One request on a new TLS connection, offering `session`; whether the server resumed it. */
function visit(port: number, ca: string, path: string, session?: Buffer): Promise<Visit> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'site.test', session });
    let latest: Buffer | undefined;
    // TLS 1.3 sends its tickets after the handshake: the last one before the end is kept.
    socket.on('session', (ticket: Buffer) => (latest = ticket));
    let text = '';
    socket.setTimeout(5_000, () => socket.destroy(new Error('timed out')));
    socket.once('secureConnect', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n`);
    });
    socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    socket.once('error', reject);
    socket.once('end', () =>
      resolve({ status: Number(text.split(' ')[1]), reused: socket.isSessionReused(), session: latest }),
    );
  });
}

/** The listener thread that served `path`: its access-log line (the access log goes to stdout). */
const threadOf = async (sluice: SluiceProcess, path: string, pid = sluice.pid) =>
  (await sluice.waitForLog((l: LogLine) => l['path'] === path && l['pid'] === pid))['thread'] as number;

function writeTlsConfig(ctx: Ctx, name: string, sessionTickets: boolean): string {
  const base = testConfig([{ port: ctx.a!.port }], { workers: 2 });
  const { listen_host: _host, listen_port: _port, ...proxy } = base.proxy;
  const file = join(ctx.ca!.dir, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      ...base,
      proxy: { ...proxy, pid_file: join(ctx.ca!.dir, `${name}.pid`) },
      access_log: { file: '-' },
      listeners: [
        {
          host: '127.0.0.1',
          port: 0,
          tls: { cert: 'site.pem', key: 'site.key', session_tickets: sessionTickets },
        },
      ],
    }),
  );
  return file;
}

resumption.before(async (ctx) => {
  ctx.ca = testCa();
  ctx.ca.leaf('site', ['site.test']);
  ctx.a = await startUpstream('a');
  ({ sluice: ctx.sluice, port: ctx.tlsPort } = await startRouting(['-c', writeTlsConfig(ctx, 'on', true)], 2, 1));
});

resumption.after(async (ctx) => {
  await stopSluice(ctx.sluice);
  await ctx.a?.close();
  killAll();
});

resumption('a session made on one listener thread resumes on the other', async (ctx) => {
  const sluice = ctx.sluice!;
  const first = await visit(ctx.tlsPort!, ctx.ca!.pem, '/first');
  assert.is(first.status, 200);
  assert.is(first.reused, false);
  const issuedBy = await threadOf(sluice, '/first');
  // The kernel spreads connections over the two threads' sockets by their source port: bounded tries.
  let otherThread: Visit | undefined;
  for (let attempt = 0; attempt < 40 && !otherThread; attempt++) {
    const path = `/again-${attempt}`;
    const again = await visit(ctx.tlsPort!, ctx.ca!.pem, path, first.session);
    assert.is(again.status, 200);
    assert.ok(again.reused, `${path} resumed the session (thread ${await threadOf(sluice, path)})`);
    if ((await threadOf(sluice, path)) !== issuedBy) otherThread = again;
  }
  assert.ok(otherThread, 'a connection reached the thread that did not issue the ticket');
});

resumption('a session made before a hot restart resumes on the successor', async (ctx) => {
  const sluice = ctx.sluice!;
  const before = await visit(ctx.tlsPort!, ctx.ca!.pem, '/before-restart');
  assert.is(before.status, 200);
  const from = sluice.pid;
  const mark = sluice.lines.length;
  process.kill(from, 'SIGUSR2');
  const taken = await sluice.waitForLog(
    (l) => l.msg === 'PID file taken over' && l['predecessor_pid'] === from,
    20_000,
    mark,
  );
  const to = taken['pid'] as number;
  try {
    await sluice.waitForLog((l) => l.msg === 'Shutdown complete' && l['pid'] === from, 20_000, mark);
    // Only the successor accepts now: this handshake is its own.
    const after = await visit(ctx.tlsPort!, ctx.ca!.pem, '/after-restart', before.session);
    assert.is(after.status, 200);
    await threadOf(sluice, '/after-restart', to);
    assert.ok(after.reused, 'the successor resumed the session the old process made');
  } finally {
    process.kill(to, 'SIGTERM');
    await sluice.waitForLog((l) => l.msg === 'Shutdown complete' && l['pid'] === to, 15_000, mark);
  }
});

resumption('session_tickets: false: a session never resumes', async (ctx) => {
  const { sluice, port } = await startRouting(['-c', writeTlsConfig(ctx, 'off', false)], 2, 1);
  try {
    const first = await visit(port, ctx.ca!.pem, '/off-first');
    const again = await visit(port, ctx.ca!.pem, '/off-again', first.session);
    assert.is(again.status, 200);
    assert.is(again.reused, false);
  } finally {
    await stopSluice(sluice);
  }
});

resumption.run();
