/**
 * Takes the chunked framing off a response body for a client whose server
 * frames bodies itself (Node's ServerResponse: HTTP/1.1 re-chunks, HTTP/2
 * uses DATA frames). The core has checked the framing with ChunkedScanner
 * before the bytes get here, so this only has to follow it: sizes,
 * extensions skipped, data handed on without copying, trailers kept.
 */
import { hexValue } from '../http1/chunked.ts';

const Step = { Size: 0, Extension: 1, Data: 2, DataEnd: 3, Trailers: 4, Done: 5 } as const;
type Step = (typeof Step)[keyof typeof Step];

export class ChunkedDecoder {
  #step: Step = Step.Size;
  #size = 0;
  #remaining = 0;
  #trailerText = '';

  /** Hands each piece of data in `chunk` to `onData` (views of `chunk`). */
  decode(chunk: Buffer, onData: (data: Buffer) => void): void {
    let pos = 0;
    const length = chunk.length;
    while (pos < length) {
      const byte = chunk[pos]!;
      switch (this.#step) {
        case Step.Size:
          if (byte === 0x0a) this.#sizeLineEnd();
          else if (byte === 0x3b || byte === 0x20 || byte === 0x09) this.#step = Step.Extension;
          else if (byte !== 0x0d) this.#size = this.#size * 16 + hexValue(byte);
          pos++;
          break;
        case Step.Extension:
          if (byte === 0x0a) this.#sizeLineEnd();
          pos++;
          break;
        case Step.Data: {
          const end = Math.min(length, pos + this.#remaining);
          onData(chunk.subarray(pos, end));
          this.#remaining -= end - pos;
          pos = end;
          if (this.#remaining === 0) this.#step = Step.DataEnd;
          break;
        }
        case Step.DataEnd:
          if (byte === 0x0a) this.#step = Step.Size;
          pos++;
          break;
        case Step.Trailers:
          this.#trailerText += chunk.toString('latin1', pos, length);
          pos = length;
          if (this.#trailerText === '\r\n' || this.#trailerText === '\n' || /\r?\n\r?\n$/.test(this.#trailerText))
            this.#step = Step.Done;
          break;
        case Step.Done:
          return;
      }
    }
  }

  /** The trailer fields, lowercase names, once the body has ended. */
  trailers(): Record<string, string> {
    const fields: Record<string, string> = {};
    for (const line of this.#trailerText.split(/\r?\n/)) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      fields[name] = fields[name] === undefined ? value : `${fields[name]}, ${value}`;
    }
    return fields;
  }

  #sizeLineEnd(): void {
    if (this.#size === 0) {
      this.#step = Step.Trailers;
      return;
    }
    this.#remaining = this.#size;
    this.#size = 0;
    this.#step = Step.Data;
  }
}
