/**
 * The WebSocket wire format of browser mode, shared by the server and the page. A request is one JSON
 * text frame; a request longer than one frame allows (an export of thousands of selected rows) goes as
 * numbered parts, `#1/3\n...`, `#2/3\n...`, `#3/3\n...`, that the server joins before parsing. Every
 * request the contract allows fits in MAX_REQUEST_BYTES (electron/core/web/wire.test.ts checks the
 * largest), so the contract and the transport agree.
 */

/** The server refuses (closes with 1009) any frame larger than this. */
export const FRAME_BYTES = 64 * 1024;

/** The most a request may take once its parts are joined. */
export const MAX_REQUEST_BYTES = 16 * 1024 * 1024;

/**
 * UTF-16 units a part carries: at most 3 UTF-8 bytes each (a surrogate pair is 2 units, 4 bytes), so a
 * part and its header stay below FRAME_BYTES.
 */
export const PART_UNITS = 16 * 1024;

/** The subprotocol the page asks for; the token goes as a second one, `token.<token>`, never in the URL. */
export const WS_PROTOCOL = 'icmpcap';
export const WS_TOKEN_PREFIX = 'token.';

/** Splits a request's JSON into frames (one frame when it fits). */
export function encodeRequest(text: string): string[] {
  if (text.length <= PART_UNITS) return [text];
  const pieces: string[] = [];
  for (let at = 0; at < text.length;) {
    let end = Math.min(text.length, at + PART_UNITS);
    const last = text.charCodeAt(end - 1);
    // Never split a surrogate pair: each part must be valid UTF-16 on its own.
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
    pieces.push(text.slice(at, end));
    at = end;
  }
  return pieces.map((piece, i) => `#${i + 1}/${pieces.length}\n${piece}`);
}
