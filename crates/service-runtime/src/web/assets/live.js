// Live updates: the notification stream (server-sent events) of the signed-in
// user, authenticated by the session cookie. `EventSource` reconnects by
// itself after a dropped connection and resumes with Last-Event-ID; each
// (re)connection also calls `onEvent(null)` so the app refreshes what it
// shows and misses nothing.
//
// A stream refused outright (EventSource gives up, e.g. on 429 when the user
// has too many open) is retried every 3 s. Fallback: when the service has no
// stream endpoint (it answers 404), the app polls instead, calling
// `onEvent(null)` every 2 s, so it stays usable. Which of the two is in use
// is shown as `data-live` on <html> ("stream" or "polling"), for people and
// tests to see.

/** Follows `url`; returns a function that stops following. */
export function follow(url, onEvent) {
  const root = document.documentElement;
  let source = null;
  let timer = null;
  let stopped = false;

  const poll = () => {
    root.dataset.live = "polling";
    timer = setInterval(() => onEvent(null), 2000);
  };

  // Why the stream was refused, without keeping one open: 404 means the
  // service has none.
  const refused = async () => {
    const probe = new AbortController();
    let status = 0;
    try {
      const response = await fetch(url, { credentials: "same-origin", signal: probe.signal });
      status = response.status;
    } catch {
      status = 0;
    } finally {
      probe.abort();
    }
    if (stopped) return;
    if (status === 404) poll();
    else timer = setTimeout(connect, 3000);
    onEvent(null);
  };

  const connect = () => {
    if (stopped) return;
    source = new EventSource(url);
    source.addEventListener("open", () => {
      root.dataset.live = "stream";
      onEvent(null);
    });
    source.addEventListener("notification", (e) => {
      try {
        onEvent(JSON.parse(e.data));
      } catch {
        onEvent(null);
      }
      // The services write a notification just before the booking change
      // it announces: look again shortly, so that change shows too.
      setTimeout(() => {
        if (!stopped) onEvent(null);
      }, 500);
    });
    source.addEventListener("error", () => {
      // CONNECTING: the browser retries by itself. CLOSED: it gave up.
      if (stopped || source.readyState !== EventSource.CLOSED) return;
      source = null;
      refused();
    });
  };
  connect();

  return () => {
    stopped = true;
    delete root.dataset.live;
    if (source) source.close();
    clearInterval(timer);
    clearTimeout(timer);
  };
}
