// The API client both apps use: JSON over fetch, same origin, authenticated
// by the HttpOnly session cookie (scripts never see the token). A failure
// becomes an ApiProblem whose message is the problem document's `detail`.

/** An error answered by the API as an RFC 9457 problem document. */
export class ApiProblem extends Error {
  constructor(status, doc) {
    super(doc && typeof doc.detail === "string" ? doc.detail : `The server answered ${status}.`);
    this.status = status;
    this.code = doc && doc.code;
    this.errors = (doc && doc.errors) || [];
  }
}

/** Listeners told when the session is gone (401): the app shows the login form. */
const sessionEndedListeners = [];
export function onSessionEnded(listener) {
  sessionEndedListeners.push(listener);
}

/**
 * A client for `/api/{prefix}`: `get`, `post`, `put`, `del` resolve to the
 * parsed JSON body (or null for 204) and reject with an ApiProblem.
 */
export function apiClient(prefix) {
  const base = `/api/${prefix}`;
  async function request(method, path, body, headers = {}) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(base + path, init);
    } catch {
      throw new ApiProblem(0, { detail: "The server cannot be reached; check your connection and retry." });
    }
    const text = await response.text();
    let doc = null;
    if (text) {
      try {
        doc = JSON.parse(text);
      } catch {
        doc = null;
      }
    }
    if (!response.ok) {
      const problem = new ApiProblem(response.status, doc);
      if (response.status === 401 && path !== "/login") {
        sessionEndedListeners.forEach((l) => l(problem));
      }
      throw problem;
    }
    return doc;
  }
  return {
    base,
    get: (path) => request("GET", path),
    post: (path, body, headers) => request("POST", path, body, headers),
    put: (path, body) => request("PUT", path, body),
    del: (path) => request("DELETE", path),
  };
}
