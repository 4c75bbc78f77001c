/**
 * The session-ticket keys, owned by the supervisor: one set for every TLS
 * listener of every listener thread, so a ticket issued by one thread
 * resumes on any other. Every TICKET_KEY_ROTATION_MS a new key starts
 * encrypting; the one it replaces still decrypts until the next rotation
 * (a ticket lives between one and two periods), and the one before that is
 * dropped, as nginx's first and second `ssl_session_ticket_key` do.
 *
 * A hot restart hands the keys and the time the current one was made to
 * the successor (ticket-key-handover.ts): its clients resume, and frequent
 * restarts cannot postpone a rotation forever.
 */
import { randomBytes } from 'node:crypto';
import { systemClock, type Clock } from '../clock.ts';
import type { TicketKeys } from '../protocol.ts';

export const TICKET_KEY_ROTATION_MS = 12 * 60 * 60 * 1000;

/** Node's `ticketKeys` size: name, HMAC secret and AES key, 16 bytes each. */
export const TICKET_KEY_BYTES = 48;

/** What crosses to a hot restart's successor. */
export interface HandedOverKeys extends TicketKeys {
  /** When `current` was made (ms since the epoch): the next rotation is one period later. */
  createdAt: number;
}

export class TicketKeyRotation {
  readonly #clock: Clock;
  readonly #rotated: (keys: TicketKeys) => void;
  readonly #newKey: () => Uint8Array;
  #keys: HandedOverKeys;
  #timer: unknown;

  /**
   * `rotated`: the new keys, for every listener thread. `inherited`: the
   * predecessor's keys in a hot restart's successor (else a new key now).
   */
  constructor(
    rotated: (keys: TicketKeys) => void,
    inherited?: HandedOverKeys,
    clock: Clock = systemClock,
    newKey: () => Uint8Array = () => randomBytes(TICKET_KEY_BYTES),
  ) {
    this.#clock = clock;
    this.#rotated = rotated;
    this.#newKey = newKey;
    this.#keys = inherited ?? { current: newKey(), previous: null, createdAt: clock.now() };
  }

  /** What the listener threads use. */
  get keys(): TicketKeys {
    return { current: this.#keys.current, previous: this.#keys.previous };
  }

  /** What a successor starts from. */
  get handover(): HandedOverKeys {
    return { ...this.#keys };
  }

  /** Schedules the next rotation: one period after the current key was made (at once if that is past). */
  start(): void {
    this.stop();
    const due = Math.max(0, this.#keys.createdAt + TICKET_KEY_ROTATION_MS - this.#clock.now());
    this.#timer = this.#clock.setTimeout(() => this.#rotate(), due);
  }

  stop(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #rotate(): void {
    this.#keys = { current: this.#newKey(), previous: this.#keys.current, createdAt: this.#clock.now() };
    this.#rotated(this.keys);
    this.start();
  }
}
