// Reading a response body with a bound: a server's answer is read into memory only up to
// what the caller expects from it.

/**
 * Reads a body until its end or until more than limit bytes came, then cancels the rest.
 * bytes holds all that was read, up to a chunk past limit; complete says the end was reached.
 * The cancel is not awaited: a clone's (a tee's branch) settles only once the other branch
 * is cancelled too.
 * @param {ReadableStream<Uint8Array> | null} body
 * @param {number} limit
 * @returns {Promise<{ bytes: Uint8Array, complete: boolean }>}
 */
export async function readBounded(body, limit) {
  if (!body) return { bytes: new Uint8Array(0), complete: true };
  const reader = body.getReader();
  /** @type {Uint8Array[]} */
  const chunks = [];
  let size = 0;
  let complete = false;
  try {
    while (size <= limit) {
      const { done, value } = await reader.read();
      if (done) {
        complete = true;
        break;
      }
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    if (!complete) reader.cancel().catch(() => {});
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  return { bytes, complete };
}
