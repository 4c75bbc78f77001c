/**
 * The header lines of a request or response head, scanned byte by byte:
 * `name ":" OWS value OWS CRLF` until the blank line. Each header's place in
 * the buffer is recorded (bytes.ts, SPAN numbers each), never copied into a
 * string. The value rule is the caller's (requests and responses differ),
 * given as byte classes (bytes.ts).
 */
import {
  COLON,
  CR,
  END_OF_LINE,
  HTAB,
  KIND,
  LF,
  LINE_END,
  NAME_END,
  NAME_START,
  SP,
  SPAN,
  TOKEN,
  VALUE_BYTE,
  VALUE_END,
  VALUE_START,
  WHITESPACE,
  headerKind,
} from './bytes.ts';

export const INCOMPLETE = -1;
export const INVALID = -2;

export class HeaderLines {
  /** Reused by every scan of the thread; `take()` copies out what one head needs. */
  #spans = new Int32Array(SPAN * 32);
  count = 0;
  /** Why the last scan returned INVALID. */
  error = '';

  /**
   * Scans from `pos` (the start of the first header line) to the blank line.
   * Returns the offset just past the blank line, INCOMPLETE when the buffer
   * ends first, or INVALID (with `error`) for a line the rule refuses or
   * more than `maxHeaders` lines.
   */
  scan(buffer: Uint8Array, pos: number, valueClasses: Uint8Array, maxHeaders: number): number {
    const length = buffer.length;
    this.count = 0;
    for (;;) {
      if (pos >= length) return INCOMPLETE;
      let b = buffer[pos]!;
      if (b === CR) {
        if (pos + 1 >= length) return INCOMPLETE;
        return buffer[pos + 1] === LF ? pos + 2 : this.#invalid('bare CR');
      }
      const nameStart = pos;
      while (TOKEN[b] === 1) {
        if (++pos >= length) return INCOMPLETE;
        b = buffer[pos]!;
      }
      if (pos === nameStart || b !== COLON) return this.#invalid('header line');
      const nameEnd = pos;
      do {
        if (++pos >= length) return INCOMPLETE;
        b = buffer[pos]!;
      } while (b === SP || b === HTAB);
      const valueStart = pos;
      let valueEnd = pos;
      for (;;) {
        const kind = valueClasses[b]!;
        if (kind === VALUE_BYTE) valueEnd = ++pos;
        else if (kind === WHITESPACE) ++pos;
        else if (kind === END_OF_LINE) break;
        else return this.#invalid('header value');
        if (pos >= length) return INCOMPLETE;
        b = buffer[pos]!;
      }
      if (pos + 1 >= length) return INCOMPLETE;
      if (buffer[pos + 1] !== LF) return this.#invalid('bare CR');
      if (this.count === maxHeaders) return this.#invalid('too many headers');
      this.#record(nameStart, nameEnd, valueStart, valueEnd, pos, headerKind(buffer, nameStart, nameEnd));
      pos += 2;
    }
  }

  #invalid(reason: string): number {
    this.error = reason;
    return INVALID;
  }

  #record(
    nameStart: number,
    nameEnd: number,
    valueStart: number,
    valueEnd: number,
    lineEnd: number,
    kind: number,
  ): void {
    let spans = this.#spans;
    const at = this.count * SPAN;
    if (at + SPAN > spans.length) {
      const bigger = new Int32Array(spans.length * 2);
      bigger.set(spans);
      this.#spans = spans = bigger;
    }
    spans[at + NAME_START] = nameStart;
    spans[at + NAME_END] = nameEnd;
    spans[at + VALUE_START] = valueStart;
    spans[at + VALUE_END] = valueEnd;
    spans[at + LINE_END] = lineEnd;
    spans[at + KIND] = kind;
    this.count++;
  }

  /**
   * The spans of the last scan, in an array of their own: a plain array (on
   * V8's heap), as a typed array of its own costs an allocation outside it.
   */
  take(): number[] {
    const spans = this.#spans;
    const out = new Array<number>(this.count * SPAN);
    for (let i = 0; i < out.length; i++) out[i] = spans[i]!;
    return out;
  }

  spans(): Int32Array {
    return this.#spans;
  }
}
