/**
 * Operating TLS listeners: certificates in /status and /metrics, the
 * warning for one about to expire, and reloading certificates without a
 * restart (new handshakes get the new one, open connections keep theirs; a
 * bad one is refused and the old one stays).
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type PeerCertificate, type TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { testCa, type TestCa } from '../support/certs.ts';
import { get } from '../support/http.ts';
import type { StatusDocument } from '../support/documents.ts';
import { killAll, mainFile, type SluiceProcess, startRouting, stopSluice } from '../support/sluice-process.ts';
import { startUpstream, type TestUpstream } from '../support/upstream.ts';
import { testConfig } from '../support/config-file.ts';

interface Ctx {
  ca?: TestCa;
  a?: TestUpstream;
  sluice?: SluiceProcess;
  config?: string;
  tlsPort?: number;
  adminPort?: number;
}
const operate = suite<Ctx>('tls-operate');

const sluiceCli = async (...args: string[]) => {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [mainFile, ...args], { timeout: 15_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
};

/** A TLS connection, open: the certificate it got, and a way to send a keep-alive request on it. */
async function openTls(port: number, ca: string, servername: string) {
  const socket: TLSSocket = connect({ host: '127.0.0.1', port, ca, servername });
  await new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  let text = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  return {
    // An empty object when the peer sent no certificate (Node's docs), which its type leaves out.
    subject: String((socket.getPeerCertificate() as Partial<PeerCertificate>).subject?.CN),
    socket,
    async request(path: string): Promise<number> {
      const before = text.length;
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${servername}\r\n\r\n`);
      for (let wait = 0; !text.slice(before).includes('\r\n\r\n') && wait < 50; wait++) {
        await new Promise((resolve) => socket.once('data', resolve));
      }
      return Number(text.slice(before).split(' ')[1]);
    },
  };
}

operate.before(async (ctx) => {
  ctx.ca = testCa();
  ctx.ca.leaf('site', ['site.test']);
  ctx.ca.leaf('soon', ['soon.test'], 3);
  ctx.a = await startUpstream('a');
  const base = testConfig([{ port: ctx.a.port }], { workers: 2 });
  const { listen_host: _host, listen_port: _port, ...proxy } = base.proxy;
  ctx.config = join(ctx.ca.dir, 'config.json');
  writeFileSync(
    ctx.config,
    JSON.stringify({
      ...base,
      proxy: { ...proxy, pid_file: join(ctx.ca.dir, 'sluice.pid') },
      admin: { listen_host: '127.0.0.1', listen_port: 0 },
      listeners: [
        {
          host: '127.0.0.1',
          port: 0,
          tls: {
            cert: 'site.pem',
            key: 'site.key',
            sni: [{ server_names: ['soon.test'], cert: 'soon.pem', key: 'soon.key' }],
          },
        },
      ],
    }),
  );
  ({ sluice: ctx.sluice, port: ctx.tlsPort } = await startRouting(['-c', ctx.config], 2, 1));
  ctx.adminPort = (await ctx.sluice.waitForLog((l) => l['event'] === 'admin.listening'))['port'] as number;
});

operate.after(async (ctx) => {
  await stopSluice(ctx.sluice);
  await ctx.a?.close();
  killAll();
});

operate('a certificate with under 14 days left is warned about at start', async (ctx) => {
  const line = await ctx.sluice!.waitForLog((l) => l['code'] === 'SLUICE_TLS_CERTIFICATE_EXPIRES_SOON');
  assert.is(line['certificate'], join(ctx.ca!.dir, 'soon.pem'));
  assert.is(line['days_left'], 2);
  assert.is(line.level, 40);
  // Only that one: the 30-day certificate is not.
  assert.is(ctx.sluice!.lines.filter((l) => l['code'] === 'SLUICE_TLS_CERTIFICATE_EXPIRES_SOON').length, 1);
});

operate('/status lists each certificate with subject, SANs and expiry; /metrics its expiry', async (ctx) => {
  const status = JSON.parse((await get(ctx.adminPort!, '/status')).body) as StatusDocument;
  assert.equal(status.listeners, [{ host: '127.0.0.1', port: ctx.tlsPort, tls: true }]);
  const site = status.certificates.find((c) => c.name.endsWith('site.pem'))!;
  assert.is(site.subject, 'CN=site.test');
  assert.equal(site.sans, ['DNS:site.test']);
  assert.is(site.listener, '127.0.0.1:0');
  assert.ok(site.days_left >= 29 && site.days_left <= 30, String(site.days_left));
  const soon = status.certificates.find((c) => c.name.endsWith('soon.pem'))!;
  assert.is(soon.days_left, 2);
  const metrics = (await get(ctx.adminPort!, '/metrics')).body;
  const line = metrics
    .split('\n')
    .find((l) => l.startsWith(`sluice_tls_certificate_expiry_seconds{name="${site.name}"}`));
  assert.ok(line, metrics);
  assert.is(Number(line.split(' ').pop()), Date.parse(site.not_after) / 1000);
});

operate('reload: new handshakes get the new certificate; an open connection keeps working', async (ctx) => {
  const open = await openTls(ctx.tlsPort!, ctx.ca!.pem, 'site.test');
  assert.is(open.subject, 'site.test');
  assert.is(await open.request('/before'), 200);
  const renewed = ctx.ca!.leaf('renewed', ['site.test', 'renewed.test']);
  copyFileSync(renewed.cert, join(ctx.ca!.dir, 'site.pem'));
  copyFileSync(renewed.key, join(ctx.ca!.dir, 'site.key'));
  const reload = await sluiceCli('reload', '-c', ctx.config!);
  assert.is(reload.code, 0, reload.stdout + reload.stderr);
  assert.match(reload.stdout, 'Configuration reloaded');
  const fresh = await openTls(ctx.tlsPort!, ctx.ca!.pem, 'site.test');
  assert.equal(fresh.socket.getPeerCertificate().subjectaltname, 'DNS:site.test, DNS:renewed.test');
  fresh.socket.destroy();
  assert.is(await open.request('/after'), 200);
  assert.equal(open.socket.getPeerCertificate().subjectaltname, 'DNS:site.test');
  open.socket.destroy();
  const status = JSON.parse((await get(ctx.adminPort!, '/status')).body) as StatusDocument;
  const site = status.certificates.find((c) => c.name.endsWith('site.pem'))!;
  assert.equal(site.sans, ['DNS:site.test', 'DNS:renewed.test']);
});

operate(
  'reload: a key that does not match is refused, the certificate in use stays, no connection fails',
  async (ctx) => {
    const open = await openTls(ctx.tlsPort!, ctx.ca!.pem, 'site.test');
    const inUse = open.socket.getPeerCertificate().fingerprint256;
    copyFileSync(join(ctx.ca!.dir, 'soon.key'), join(ctx.ca!.dir, 'site.key'));
    const reload = await sluiceCli('reload', '-c', ctx.config!);
    assert.is(reload.code, 2);
    assert.match(
      reload.stderr,
      `${ctx.config}: $.listeners[0].tls.key: the key does not match the certificate ${join(ctx.ca!.dir, 'site.pem')}`,
    );
    // The proxy's own reload (SIGHUP, as the command's check did not send it) refuses it too.
    const from = ctx.sluice!.lines.length;
    process.kill(ctx.sluice!.pid, 'SIGHUP');
    const failed = await ctx.sluice!.waitForLog((l) => l['event'] === 'config.reload_failed', 10_000, from);
    assert.match(String(failed.msg), '$.listeners[0].tls.key');
    const status = JSON.parse((await get(ctx.adminPort!, '/status')).body) as StatusDocument;
    assert.is(status.last_reload?.ok, false);
    const fresh = await openTls(ctx.tlsPort!, ctx.ca!.pem, 'site.test');
    assert.is(fresh.socket.getPeerCertificate().fingerprint256, inUse);
    assert.is(await fresh.request('/still'), 200);
    assert.is(await open.request('/still-open'), 200);
    fresh.socket.destroy();
    open.socket.destroy();
  },
);

operate('hot restart: the successor serves TLS on the handed-over socket; the old process drains', async (ctx) => {
  // Back to a matching pair (the previous test left a mismatched key), as an operator would fix it.
  const fixed = ctx.ca!.leaf('fixed', ['site.test']);
  copyFileSync(fixed.cert, join(ctx.ca!.dir, 'site.pem'));
  copyFileSync(fixed.key, join(ctx.ca!.dir, 'site.key'));
  const open = await openTls(ctx.tlsPort!, ctx.ca!.pem, 'site.test');
  assert.is(await open.request('/before-restart'), 200);
  const from = ctx.sluice!.pid;
  const mark = ctx.sluice!.lines.length;
  process.kill(from, 'SIGUSR2');
  const taken = await ctx.sluice!.waitForLog(
    (l) => l['event'] === 'pid_file.taken_over' && l['predecessor_pid'] === from,
    20_000,
    mark,
  );
  const to = taken['pid'] as number;
  try {
    const handedOver = ctx
      .sluice!.lines.slice(mark)
      .find((l) => l['pid'] === to && l['event'] === 'listeners.listening')!;
    assert.equal(handedOver['ports'], [ctx.tlsPort], 'the same port, handed over');
    assert.is(handedOver['handed_over'], true);
    const done = await ctx.sluice!.waitForLog((l) => l.msg === 'Shutdown complete' && l['pid'] === from, 20_000, mark);
    assert.is(done['exit_code'], 0);
    // The old process is gone: this handshake is the successor's, with the certificate it read.
    const fresh = await openTls(ctx.tlsPort!, ctx.ca!.pem, 'site.test');
    assert.is(
      fresh.socket.getPeerCertificate().fingerprint256,
      new X509Certificate(readFileSync(fixed.cert)).fingerprint256,
    );
    assert.is(await fresh.request('/after-restart'), 200);
    fresh.socket.destroy();
  } finally {
    open.socket.destroy();
    process.kill(to, 'SIGTERM');
    await ctx.sluice!.waitForLog((l) => l.msg === 'Shutdown complete' && l['pid'] === to, 15_000, mark);
  }
});

operate.run();
