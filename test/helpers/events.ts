// Server-sent events as the web UI reads them (GET /api/events): one reader of the stream's frames
// for every test and benchmark that follows it.

/**
 * Reads the event stream at `url` until it ends or `signal` aborts, calling `onOpen` once it answered
 * and `onEvent` for each event: its type ("message" when unnamed) and its data lines joined. Events
 * without data (comments, keep-alives) are skipped. Throws when the stream cannot be opened.
 */
export async function readEvents(
  url: string,
  headers: Record<string, string>,
  signal: AbortSignal,
  onEvent: (type: string, data: string) => void,
  onOpen: () => void = () => undefined,
): Promise<void> {
  const r = await fetch(url, { headers, signal });
  if (!r.ok || !r.body) throw new Error(`event stream: HTTP ${r.status}`);
  onOpen();
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let type = 'message';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) type = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (data) onEvent(type, data);
    }
  }
}
