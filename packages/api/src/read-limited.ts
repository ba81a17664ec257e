/**
 * Reads a request body, stopping as soon as it passes `limit` bytes (the stream is cancelled), so a
 * huge or endless chunked upload costs at most `limit` bytes of memory.
 * @param tooLarge the error to throw past the limit (each caller answers in its own shape)
 * @example
 * const bytes = await readLimited(request, 64 * 1024, () => new HttpError(413, "PAYLOAD_TOO_LARGE", "too large"))
 */
export async function readLimited(request: Request, limit: number, tooLarge: () => Error): Promise<Uint8Array[]> {
  if (Number(request.headers.get("content-length")) > limit) throw tooLarge();
  if (!request.body) return [];
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return chunks;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(value);
  }
}
