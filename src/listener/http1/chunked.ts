/**
 * Finds where a chunked body ends without copying it: the fast path passes
 * the chunks to the client as the upstream wrote them (extensions and
 * trailers included) and only needs to know where the message stops and
 * that its framing is valid. Incremental: bytes arrive in any split.
 */

const State = {
  Size: 0,
  ExtensionName: 1,
  SizeLF: 2,
  ExtensionNameMore: 12,
  ExtensionValueStart: 13,
  ExtensionToken: 14,
  ExtensionQuoted: 15,
  ExtensionQuotedPair: 16,
  ExtensionAfterQuoted: 17,
  Data: 3,
  DataCR: 4,
  DataLF: 5,
  TrailerStart: 6,
  TrailerName: 7,
  TrailerValue: 8,
  TrailerLF: 9,
  EndLF: 10,
  Done: 11,
} as const;
type State = (typeof State)[keyof typeof State];

/** RFC 9110 token characters, for trailer field names. */
const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
  TOKEN[c.charCodeAt(0)] = 1;

const MAX_SIZE_DIGITS = 12;

/** The value of a hex digit, or -1. */
export function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x37;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x57;
  return -1;
}

/** Bytes allowed in a chunk extension or trailer line: visible ASCII, space, tab, obs-text. */
const lineByte = (byte: number) => byte === 0x09 || (byte >= 0x20 && byte !== 0x7f);

export class ChunkedScanner {
  #state: State = State.Size;
  #digits = 0;
  #remaining = 0;
  #trailerBytes = 0;
  error: string | undefined;

  get done(): boolean {
    return this.#state === State.Done;
  }

  /**
   * Scans `chunk` from `start`; returns the offset just past the end of the
   * body when it ends inside `chunk`, -1 when more is needed, -2 on invalid
   * framing (`error` says why).
   */
  scan(chunk: Buffer, start = 0): number {
    let i = start;
    while (i < chunk.length) {
      const byte = chunk[i]!;
      switch (this.#state) {
        case State.Size: {
          const value = hexValue(byte);
          if (value !== -1) {
            if (++this.#digits > MAX_SIZE_DIGITS) return this.#fail('chunk size too large');
            this.#remaining = this.#remaining * 16 + value;
          } else if (this.#digits === 0) {
            return this.#fail('chunk size');
          } else if (byte === 0x3b) {
            this.#state = State.ExtensionName;
          } else if (byte === 0x0d) {
            this.#state = State.SizeLF;
          } else {
            return this.#fail('chunk size');
          }
          i++;
          break;
        }
        // chunk-ext = *( ";" token [ "=" ( token / quoted-string ) ] ), no whitespace: as llhttp.
        case State.ExtensionName:
          if (!TOKEN[byte]) return this.#fail('chunk extension');
          this.#state = State.ExtensionNameMore;
          i++;
          break;
        case State.ExtensionNameMore:
        case State.ExtensionToken:
          if (byte === 0x0d) this.#state = State.SizeLF;
          else if (byte === 0x3b) this.#state = State.ExtensionName;
          else if (byte === 0x3d && this.#state === State.ExtensionNameMore) this.#state = State.ExtensionValueStart;
          else if (!TOKEN[byte]) return this.#fail('chunk extension');
          i++;
          break;
        case State.ExtensionValueStart:
          if (byte === 0x0d) this.#state = State.SizeLF;
          else if (byte === 0x3b) this.#state = State.ExtensionName;
          else if (byte === 0x22) this.#state = State.ExtensionQuoted;
          else if (TOKEN[byte]) this.#state = State.ExtensionToken;
          else return this.#fail('chunk extension value');
          i++;
          break;
        case State.ExtensionQuoted:
          if (byte === 0x22) this.#state = State.ExtensionAfterQuoted;
          else if (byte === 0x5c) this.#state = State.ExtensionQuotedPair;
          else if (!lineByte(byte)) return this.#fail('chunk extension value');
          i++;
          break;
        case State.ExtensionQuotedPair:
          if (!lineByte(byte)) return this.#fail('chunk extension value');
          this.#state = State.ExtensionQuoted;
          i++;
          break;
        case State.ExtensionAfterQuoted:
          if (byte === 0x0d) this.#state = State.SizeLF;
          else if (byte === 0x3b) this.#state = State.ExtensionName;
          else return this.#fail('chunk extension');
          i++;
          break;
        case State.SizeLF:
          if (byte !== 0x0a) return this.#fail('chunk size line');
          this.#digits = 0;
          this.#state = this.#remaining === 0 ? State.TrailerStart : State.Data;
          i++;
          break;
        case State.Data: {
          const take = Math.min(this.#remaining, chunk.length - i);
          this.#remaining -= take;
          i += take;
          if (this.#remaining === 0) this.#state = State.DataCR;
          break;
        }
        case State.DataCR:
          if (byte !== 0x0d) return this.#fail('chunk data not followed by CRLF');
          this.#state = State.DataLF;
          i++;
          break;
        case State.DataLF:
          if (byte !== 0x0a) return this.#fail('chunk data not followed by CRLF');
          this.#state = State.Size;
          i++;
          break;
        case State.TrailerStart:
          if (byte === 0x0d) this.#state = State.EndLF;
          else if (TOKEN[byte]) this.#state = State.TrailerName;
          else return this.#fail('trailer');
          i++;
          break;
        case State.TrailerName:
          if (++this.#trailerBytes > 16_384) return this.#fail('trailers too large');
          if (byte === 0x3a) this.#state = State.TrailerValue;
          else if (!TOKEN[byte]) return this.#fail('trailer name');
          i++;
          break;
        case State.TrailerValue:
          if (++this.#trailerBytes > 16_384) return this.#fail('trailers too large');
          if (byte === 0x0d) this.#state = State.TrailerLF;
          else if (!lineByte(byte)) return this.#fail('trailer value');
          i++;
          break;
        case State.TrailerLF:
          if (byte !== 0x0a) return this.#fail('trailer line');
          this.#state = State.TrailerStart;
          i++;
          break;
        case State.EndLF:
          if (byte !== 0x0a) return this.#fail('last chunk');
          this.#state = State.Done;
          return i + 1;
        case State.Done:
          return i;
      }
    }
    return -1;
  }

  #fail(reason: string): number {
    this.error = reason;
    return -2;
  }
}
