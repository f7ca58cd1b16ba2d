// Live updates: the notification stream (server-sent events) of the signed-in
// user, authenticated by the session cookie. `EventSource` reconnects by
// itself and resumes with Last-Event-ID; each (re)connection also calls
// `onEvent(null)` so the app refreshes what it shows and misses nothing.
//
// Fallback: when the service has no stream endpoint (it answers 404), the
// app polls instead, calling `onEvent(null)` every 2 s, so it stays usable.
// Which of the two is in use is shown as `data-live` on <html> ("stream" or
// "polling"), for people and tests to see.

/** Follows `url`; returns a function that stops following. */
export function follow(url, onEvent) {
  let source = null;
  let timer = null;
  let stopped = false;
  const poll = () => {
    document.documentElement.dataset.live = "polling";
    timer = setInterval(() => onEvent(null), 2000);
  };

  const probe = new AbortController();
  fetch(url, { credentials: "same-origin", signal: probe.signal, headers: { Accept: "text/event-stream" } })
    .then((response) => {
      probe.abort();
      if (stopped) return;
      if (response.status === 404) {
        poll();
        return;
      }
      document.documentElement.dataset.live = "stream";
      source = new EventSource(url);
      source.addEventListener("open", () => onEvent(null));
      source.addEventListener("notification", (e) => {
        try {
          onEvent(JSON.parse(e.data));
        } catch {
          onEvent(null);
        }
      });
    })
    .catch(() => {
      if (!stopped && !source && !timer) poll();
    });

  return () => {
    stopped = true;
    delete document.documentElement.dataset.live;
    probe.abort();
    if (source) source.close();
    if (timer) clearInterval(timer);
  };
}
