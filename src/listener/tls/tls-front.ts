/**
 * One TLS listener of a listener thread: a `tls.Server` whose decrypted
 * sockets go to the same connection handling as plain ones (the fast path's
 * ClientConnection or Node's HTTP server). Certificates come as PEM text
 * from the main thread; the SNI contexts are built once per certificate
 * set, never per handshake, and swapped whole on a reload: a handshake
 * after it gets the new certificates, an established connection keeps its
 * session. Session tickets are issued and read with the thread's ticket
 * keys (ticket-keys.ts), the same in every thread and across hot restarts.
 */
import { constants } from 'node:crypto';
import type { Socket } from 'node:net';
import {
  createSecureContext,
  createServer,
  type SecureContext,
  type SecureContextOptions,
  type Server,
  type TLSSocket,
} from 'node:tls';
import type { ListenerTls, PemPair } from '../../protocol.ts';
import { pickByName, sniTable, type SniTable } from './sni.ts';
import { threadTicketKeys, type TicketKeyRing } from './ticket-keys.ts';

/** ALPN without `http2`: HTTP/1.1 only (a client offering only h2 gets a handshake alert). */
const ALPN = ['http/1.1'];

/**
 * One session id context for every context of every thread and process: a
 * session is only resumed where it matches, and Node's default is derived
 * from process.argv, which a thread or a successor need not share.
 */
const SESSION_ID_CONTEXT = 'sluice';

function contextOptions(pair: PemPair, tls: ListenerTls): SecureContextOptions {
  return {
    cert: pair.cert,
    key: pair.key,
    minVersion: tls.min_version,
    secureOptions: tls.session_tickets ? 0 : constants.SSL_OP_NO_TICKET,
    sessionIdContext: SESSION_ID_CONTEXT,
  };
}

export interface Contexts {
  main: SecureContextOptions;
  sni: SniTable<SecureContext>;
  sessionTickets: boolean;
}

/** Every context of a certificate set, built before any is used: one that OpenSSL refuses throws here. */
export function buildContexts(tls: ListenerTls): Contexts {
  const entries = tls.sni.map(({ server_names, pair }) => ({
    server_names,
    value: createSecureContext(contextOptions(pair, tls)),
  }));
  const main = contextOptions(tls.default, tls);
  createSecureContext(main);
  return { main, sni: sniTable(entries), sessionTickets: tls.session_tickets };
}

export class TlsFront {
  readonly server: Server;
  #sni: SniTable<SecureContext>;
  readonly #ticketKeys: TicketKeyRing;

  /**
   * `onRaw`: each TCP connection as accepted (admission counts it before its
   * handshake); `onSecure`: each socket once its handshake is done.
   */
  constructor(
    tls: ListenerTls,
    handshakeTimeoutMs: number,
    onRaw: (raw: Socket) => void,
    onSecure: (socket: TLSSocket) => void,
    alpn: string[] = ALPN,
    ticketKeys: TicketKeyRing = threadTicketKeys,
  ) {
    const contexts = buildContexts(tls);
    this.#sni = contexts.sni;
    this.#ticketKeys = ticketKeys;
    this.server = createServer({
      ...contexts.main,
      ALPNProtocols: alpn,
      handshakeTimeout: handshakeTimeoutMs,
      // As Node's http server does (and nginx's tcp_nodelay): tls.Server alone leaves Nagle on, and a
      // response written after the handshake then waits for the client's delayed ACK (40 ms here).
      noDelay: true,
      SNICallback: (servername, callback) => callback(null, pickByName(this.#sni, servername)),
    });
    // After tls.Server's own listener: the raw socket is already wrapped, and destroying it ends both.
    this.server.on('connection', onRaw);
    this.server.on('secureConnection', onSecure);
    // A failed handshake (a scanner, a client that does not trust us): nothing was requested.
    this.server.on('tlsClientError', (_error, socket) => socket.destroy());
    this.#useTicketKeys(contexts);
  }

  /** New certificates (built by `buildContexts`) for new handshakes; established sessions keep theirs. */
  apply(contexts: Contexts): void {
    this.server.setSecureContext(contexts.main);
    this.#sni = contexts.sni;
    this.#useTicketKeys(contexts);
  }

  /**
   * Every context a handshake can end on takes the shared keys: OpenSSL
   * asks the listener's context, and Node then reads the keys of the one
   * SNI chose.
   */
  #useTicketKeys(contexts: Contexts): void {
    if (!contexts.sessionTickets) return;
    // The server's own context: made by Node from `contexts.main`, and made anew by setSecureContext.
    const main = (this.server as Server & { _sharedCreds: SecureContext })._sharedCreds;
    const sni = new Set([...contexts.sni.exact.values(), ...contexts.sni.wildcards.map(([, context]) => context)]);
    for (const context of [main, ...sni]) this.#ticketKeys.use(context);
  }
}
