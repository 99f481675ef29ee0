// Follows an event's live stream (GET /events/:id/stream, server-sent events) with fetch,
// so that the token goes in the Authorization header, never in a URL. Reconnects with
// backoff (1 s doubling to 15 s) and says whether it is live or reconnecting.
import { expire, token } from './auth.js';

const MAX_DELAY_MS = 15000;

/** Calls `onSeats(snapshot)` for each `event:seats`, `onStatus('live' | 'reconnecting')`,
 * `onGone(message)` when the event is deleted or no longer visible. Returns a stop function. */
export function follow(eventId, { onSeats, onStatus, onGone }) {
  let stopped = false;
  let ctrl = null;
  let delay = 1000;

  const dispatch = (name, data) => {
    let value;
    try {
      value = JSON.parse(data);
    } catch {
      return;
    }
    if (name === 'seats') onSeats(value);
    else if (name === 'deleted') {
      stopped = true;
      onGone('This event was deleted.');
    } else if (name === 'error') {
      if (/token/.test(value.error || '')) expire(`Your sign-in ended (${value.error}). Sign in again to continue.`);
      else if (/not found/.test(value.error || '')) {
        stopped = true;
        onGone(`This event is no longer available to you (${value.error}).`);
      }
    }
  };

  async function read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let name = 'message';
    let data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop();
      for (const line of lines) {
        if (line === '') {
          if (data.length) dispatch(name, data.join('\n'));
          name = 'message';
          data = [];
        } else if (line.startsWith(':')) {
          // a keep-alive comment
        } else {
          const i = line.indexOf(':');
          const field = i < 0 ? line : line.slice(0, i);
          const v = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
          if (field === 'event') name = v;
          else if (field === 'data') data.push(v);
        }
      }
    }
  }

  (async () => {
    while (!stopped) {
      ctrl = new AbortController();
      try {
        const res = await fetch(`/events/${encodeURIComponent(eventId)}/stream`, {
          headers: { authorization: `Bearer ${token()}`, accept: 'text/event-stream' },
          signal: ctrl.signal,
          cache: 'no-store',
        });
        if (res.status === 401) {
          const body = await res.json().catch(() => ({}));
          expire(`The server did not accept your sign-in (${body.error || 'unauthorized'}). Sign in again to continue.`);
          return;
        }
        if (res.status === 404) {
          onGone('This event no longer exists, or is not visible to you.');
          return;
        }
        if (res.ok && res.body) {
          onStatus('live');
          delay = 1000;
          await read(res.body);
        }
      } catch {
        // a dropped connection: reconnect below
      }
      if (stopped) return;
      onStatus('reconnecting');
      await new Promise((r) => setTimeout(r, delay * (0.75 + Math.random() / 2)));
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
  })();

  return () => {
    stopped = true;
    ctrl?.abort();
  };
}
