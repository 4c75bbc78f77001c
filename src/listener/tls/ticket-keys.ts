/**
 * The session-ticket keys of a listener thread, which every TLS context of
 * the thread (each listener's, each SNI certificate's) encrypts and
 * decrypts tickets with: the supervisor's keys, so that any thread of this
 * process or of its hot-restart successor resumes a session.
 *
 * Node's documented API holds one key per context (`ticketKeys`,
 * `setTicketKeys`): a rotation would then make every ticket issued before
 * it useless at once. Node also has a per-context ticket callback
 * (`enableTicketKeyCallback` and `onticketkeycallback`, in
 * src/crypto/crypto_context.cc, kept for its own regression test), which
 * lets the current key encrypt while the previous one still decrypts
 * (answering "renew", so the client gets a ticket under the current key).
 * It is used when present; without it each context falls back to the
 * current key alone, and tickets of the previous key make new sessions.
 *
 * Per handshake (never per request): one key-name comparison or two.
 */
import { randomBytes } from 'node:crypto';
import type { SecureContext } from 'node:tls';
import type { TicketKeys } from '../../protocol.ts';

/** What Node's callback answers (TicketKeyCallback): [result, hmac, aes, name?, iv?]. */
type TicketAnswer = [number, Uint8Array, Uint8Array, Uint8Array?, Uint8Array?];

/** The native context under a `tls.SecureContext`, with the parts of it used here. */
interface NativeContext {
  setTicketKeys(keys: Uint8Array): void;
  enableTicketKeyCallback?: () => void;
  onticketkeycallback?: (name: Buffer, iv: Buffer, encrypt: boolean) => TicketAnswer;
}

const NAME = 16;
/** OpenSSL's results: 1 use the key, 2 use it and issue a new ticket, 0 unknown key (a full handshake). */
const USE = 1;
const RENEW = 2;
const UNKNOWN = 0;
// Node reads an HMAC secret and an AES key even for "unknown": it must get 16 bytes of each.
const UNUSED = new Uint8Array(16);
const UNKNOWN_ANSWER: TicketAnswer = [UNKNOWN, UNUSED, UNUSED];

const nameOf = (key: Uint8Array) => key.subarray(0, NAME);
const hmacOf = (key: Uint8Array) => key.subarray(16, 32);
const aesOf = (key: Uint8Array) => key.subarray(32, 48);

function sameName(name: Uint8Array, key: Uint8Array): boolean {
  for (let i = 0; i < NAME; i++) if (name[i] !== key[i]) return false;
  return true;
}

export class TicketKeyRing {
  #keys: TicketKeys = { current: randomBytes(48), previous: null };
  /** Contexts on the one-key fallback: each gets the current key at every rotation. */
  readonly #oneKey = new Set<WeakRef<NativeContext>>();

  get keys(): TicketKeys {
    return this.#keys;
  }

  set(keys: TicketKeys): void {
    this.#keys = keys;
    for (const ref of this.#oneKey) {
      const context = ref.deref();
      if (context) context.setTicketKeys(keys.current);
      else this.#oneKey.delete(ref);
    }
  }

  /** Makes `context` encrypt and decrypt tickets with these keys. False: the one-key fallback is in use. */
  use(context: SecureContext): boolean {
    // `context` is typed `any` by @types/node: the native object, with the methods declared above.
    const native = context.context as NativeContext;
    if (typeof native.enableTicketKeyCallback !== 'function') {
      native.setTicketKeys(this.#keys.current);
      this.#oneKey.add(new WeakRef(native));
      return false;
    }
    native.enableTicketKeyCallback();
    native.onticketkeycallback = this.#answer;
    return true;
  }

  /** Node calls this on every ticket it issues (`encrypt`) and every ticket a client presents. */
  readonly #answer = (name: Buffer, _iv: Buffer, encrypt: boolean): TicketAnswer => {
    const { current, previous } = this.#keys;
    if (encrypt) return [USE, hmacOf(current), aesOf(current), nameOf(current), randomBytes(16)];
    if (sameName(name, current)) return [USE, hmacOf(current), aesOf(current)];
    if (previous && sameName(name, previous)) return [RENEW, hmacOf(previous), aesOf(previous)];
    return UNKNOWN_ANSWER;
  };
}

/** The thread's keys: set by the supervisor's start and rotation messages, read by every TlsFront. */
export const threadTicketKeys = new TicketKeyRing();
