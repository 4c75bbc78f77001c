/**
 * HTTP/2 frames sluice writes itself, beside Node's nghttp2 session.
 *
 * Why: once `session.goaway()` has sent a GOAWAY, nghttp2 ignores every new
 * stream silently (`session_allow_incoming_new_stream`), whatever
 * last-stream-id it carried. A drain's first GOAWAY (2^31-1: "finish what
 * you are sending") and its second one (the real last id) must not stop the
 * session from taking the streams the client sent before it saw them, so
 * both are written to the socket as bytes, between nghttp2's writes (it
 * writes whole frames per write, and JavaScript never runs in the middle of
 * one). nghttp2 never learns of them: it keeps serving every stream, and
 * sluice refuses the ones past the last id with REFUSED_STREAM.
 */

export const FRAME_GOAWAY = 0x7;
export const NO_ERROR = 0x0;
/** The largest stream id (2^31-1): a GOAWAY that announces a shutdown, nothing refused yet (RFC 9113 §6.8). */
export const MAX_STREAM_ID = 0x7fffffff;

/** A GOAWAY frame on stream 0: 9 bytes of frame header, then last-stream-id and error code. */
export function goawayFrame(lastStreamId: number, errorCode = NO_ERROR): Buffer {
  const frame = Buffer.alloc(9 + 8);
  frame.writeUIntBE(8, 0, 3);
  frame[3] = FRAME_GOAWAY;
  frame[4] = 0;
  frame.writeUInt32BE(0, 5);
  frame.writeUInt32BE(lastStreamId & MAX_STREAM_ID, 9);
  frame.writeUInt32BE(errorCode, 13);
  return frame;
}
