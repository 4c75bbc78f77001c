/**
 * The upstream response head, parsed as strictly as llhttp (the parser
 * behind undici and Node's http client) parses it, and the body framing of
 * RFC 9112 §6.3. An upstream whose head or framing is invalid is answered
 * 502 and its connection closed. test/http1-differential.test.ts compares
 * this parser with llhttp on generated responses: same verdict, same framing.
 */

export type Framing =
  | { type: 'none' }
  | { type: 'length'; length: number }
  | { type: 'chunked' }
  /** Read until the upstream closes (HTTP/1.0 style): the client connection closes after it. */
  | { type: 'close' };

export interface ResponseHead {
  status: number;
  reason: string;
  /** The version of the status line: `1.1`, `1.0`, or (llhttp accepts them, never reused) `0.9`, `2.0`. */
  version: string;
  rawHeaders: string[];
  /** Every Transfer-Encoding value, joined: what a body passed through as framed is announced with. */
  transferEncoding: string | undefined;
  framing: Framing;
  /** The upstream connection may carry another request after this response. */
  reusable: boolean;
  headLength: number;
}

export type ResponseParse =
  | { kind: 'incomplete' }
  | { kind: 'invalid'; reason: string }
  | { kind: 'ok'; head: ResponseHead };

const INCOMPLETE: ResponseParse = { kind: 'incomplete' };
const invalid = (reason: string): ResponseParse => ({ kind: 'invalid', reason });

const END_OF_HEAD = Buffer.from('\r\n\r\n');
/** llhttp accepts 0.9, 1.0, 1.1 and 2.0 here, and any byte but CR and LF in the reason phrase. */
const STATUS_LINE = /^HTTP\/(0\.9|1\.0|1\.1|2\.0) ([0-9]{3})(?: ([^\r\n]*))?$/;
/** llhttp: token ":" OWS value OWS, value may hold obs-text (0x80-0xff), no control characters. */
const HEADER_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*((?:[\x21-\x7e\x80-\xff](?:[\x20-\x7e\t\x80-\xff]*[\x21-\x7e\x80-\xff])?)?)[ \t]*$/;
const DIGITS = /^[0-9]{1,15}$/;

export function parseResponseHead(buffer: Buffer, maxHeadBytes: number, requestMethod: string): ResponseParse {
  const end = buffer.indexOf(END_OF_HEAD);
  if (end === -1) return buffer.length > maxHeadBytes ? invalid('response head too large') : INCOMPLETE;
  const lines = buffer.toString('latin1', 0, end).split('\r\n');
  const statusLine = STATUS_LINE.exec(lines[0]!);
  if (!statusLine) return invalid('status line');
  const version = statusLine[1]!;
  const status = Number(statusLine[2]);
  const rawHeaders: string[] = [];
  let contentLength = -1;
  let transferEncoding: string | undefined;
  let connectionClose = false;
  let connectionKeepAlive = false;
  for (let i = 1; i < lines.length; i++) {
    const header = HEADER_LINE.exec(lines[i]!);
    if (!header) return invalid('header line');
    const name = header[1]!;
    const value = header[2]!;
    switch (name.toLowerCase()) {
      case 'content-length':
        if (contentLength !== -1) return invalid('duplicate content-length');
        if (!DIGITS.test(value)) return invalid('content-length');
        contentLength = Number(value);
        break;
      case 'transfer-encoding':
        transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
        break;
      case 'connection':
        for (const token of value.toLowerCase().split(',')) {
          const option = token.trim();
          if (option === 'close') connectionClose = true;
          else if (option === 'keep-alive') connectionKeepAlive = true;
        }
        break;
    }
    rawHeaders.push(name, value);
  }
  if (transferEncoding !== undefined && contentLength !== -1) return invalid('content-length with transfer-encoding');
  const framing = framingOf(status, requestMethod, contentLength, transferEncoding);
  // llhttp's rule: 1.1 persists unless `close`; any other version only with `keep-alive` (then `close` is ignored).
  const keepAlive = version === '1.1' ? !connectionClose : connectionKeepAlive;
  return {
    kind: 'ok',
    head: { status, reason: statusLine[3] ?? '', version, rawHeaders, transferEncoding, framing, reusable: keepAlive && framing.type !== 'close', headLength: end + 4 },
  };
}

function framingOf(status: number, method: string, contentLength: number, transferEncoding: string | undefined): Framing {
  if (method === 'HEAD' || (status >= 100 && status < 200) || status === 204 || status === 304) return { type: 'none' };
  if (transferEncoding !== undefined) {
    const codings = transferEncoding.split(',');
    return codings[codings.length - 1]!.trim().toLowerCase() === 'chunked' ? { type: 'chunked' } : { type: 'close' };
  }
  if (contentLength !== -1) return { type: 'length', length: contentLength };
  return { type: 'close' };
}
