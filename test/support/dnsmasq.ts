/**
 * A real DNS server on loopback for the discovery tests: Debian's dnsmasq,
 * serving a hosts file (A and AAAA) and SRV records for one local domain,
 * so that any other name in it is NXDOMAIN. `setHosts` rewrites the file and
 * sends SIGHUP; dnsmasq says on stderr when it has read it again.
 *
 * Without dnsmasq the tests that need it are skipped, unless
 * SLUICE_REQUIRE_DNSMASQ=1 (.ci/run sets it after installing dnsmasq).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { existsSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { tempDir } from './config-file.ts';
import { freePort } from './http.ts';

export const DNSMASQ = '/usr/sbin/dnsmasq';
/** The domain dnsmasq answers for itself: names in it that it does not know are NXDOMAIN. */
export const DOMAIN = 'test';

export function dnsmasqAvailable(): boolean {
  if (existsSync(DNSMASQ)) return true;
  if (process.env['SLUICE_REQUIRE_DNSMASQ'] === '1') {
    throw new Error(`${DNSMASQ} is required (SLUICE_REQUIRE_DNSMASQ=1)`);
  }
  console.log(`  (skipped: ${DNSMASQ} is not installed; apt-get install dnsmasq-base)`);
  return false;
}

export interface Dnsmasq {
  port: number;
  /** For `dns.servers`: `127.0.0.1:port`. */
  server: string;
  /** Replaces the hosts file (`address name` lines) and waits until dnsmasq has read it. */
  setHosts(hosts: string): Promise<void>;
  stop(): Promise<void>;
}

export interface DnsmasqOptions {
  /** `address name` lines. */
  hosts: string;
  /** `--srv-host` values: `_service._proto.name,target,port,priority,weight`. */
  srv?: string[];
  /** The TTL of every answer, seconds. */
  ttl?: number;
}

const READY_NAME = `dnsmasq-ready.${DOMAIN}`;

export async function startDnsmasq(options: DnsmasqOptions): Promise<Dnsmasq> {
  const dir = tempDir('sluice-dns-');
  const hostsFile = join(dir, 'hosts');
  const write = (hosts: string) => writeFileSync(hostsFile, `127.0.0.1 ${READY_NAME}\n${hosts}\n`);
  write(options.hosts);
  // A port free a moment ago may be taken by the time dnsmasq binds it: try a few.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const started = await launch(port, hostsFile, options);
    if (started) return control(started, port, write);
  }
  throw new Error('dnsmasq did not start on any of 5 ports');
}

interface Started {
  child: ChildProcess;
  stderr: () => string;
  /** How often dnsmasq said it read the hosts file. */
  reads: () => number;
}

async function launch(port: number, hostsFile: string, options: DnsmasqOptions): Promise<Started | undefined> {
  const args = [
    '--no-daemon',
    `--port=${port}`,
    '--listen-address=127.0.0.1',
    '--bind-interfaces',
    '--no-resolv',
    '--no-hosts',
    `--addn-hosts=${hostsFile}`,
    `--local=/${DOMAIN}/`,
    `--local-ttl=${options.ttl ?? 1}`,
    '--conf-file=/dev/null',
    '--pid-file=',
    // Stay the user the tests run as (root here): dropping to `nobody` is not what a test needs.
    `--user=${userInfo().username}`,
    ...(options.srv ?? []).map((srv) => `--srv-host=${srv}`),
  ];
  const child = spawn(DNSMASQ, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const reads = () => text.split(`read ${hostsFile}`).length - 1;
  // It reads the hosts file once its sockets are bound (a taken port ends it before that).
  const readOnce = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 5_000);
    const onData = () => {
      if (reads() === 0) return;
      clearTimeout(timer);
      resolve(true);
    };
    child.stderr.on('data', onData);
    void exited.then(() => resolve(false));
  });
  if (!(await readOnce)) {
    child.kill('SIGKILL');
    if (text.includes('Address already in use')) return undefined;
    throw new Error(`dnsmasq did not start: ${text}`);
  }
  // And answers: one query through Node's resolver, as the code under test asks.
  const resolver = new Resolver({ timeout: 500, tries: 2 });
  resolver.setServers([`127.0.0.1:${port}`]);
  await resolver.resolve4(READY_NAME);
  return { child, stderr: () => text, reads };
}

function control(started: Started, port: number, write: (hosts: string) => void): Dnsmasq {
  const { child } = started;
  return {
    port,
    server: `127.0.0.1:${port}`,
    async setHosts(hosts) {
      const before = started.reads();
      const reread = new Promise<void>((resolve, reject) => {
        const failed = () => reject(new Error(`dnsmasq did not read the hosts file again: ${started.stderr()}`));
        const timer = setTimeout(failed, 5_000);
        const onData = () => {
          if (started.reads() === before) return;
          clearTimeout(timer);
          child.stderr!.off('data', onData);
          resolve();
        };
        child.stderr!.on('data', onData);
      });
      write(hosts);
      child.kill('SIGHUP');
      await reread;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** A UDP "server" on loopback that never answers: every query to it times out. */
export async function silentDnsServer(): Promise<{ server: string; close(): void }> {
  const socket: Socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  return { server: `127.0.0.1:${socket.address().port}`, close: () => socket.close() };
}
