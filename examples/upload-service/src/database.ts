// The service's connections. Both get a short server selection timeout, so a
// database outage answers 503 in seconds rather than after libmongoc's and
// the driver's default 30 s; a timeout already in the URI is kept.

export const SERVER_SELECTION_TIMEOUT_MS = 3000;

export function withFastFailure(uri: string, timeoutMs = SERVER_SELECTION_TIMEOUT_MS): string {
  if (/[?&]serverSelectionTimeoutMS=/i.test(uri)) return uri;
  const [base, query] = uri.split('?', 2);
  const withPath = /^mongodb(\+srv)?:\/\/[^/]*$/.test(base) ? `${base}/` : base; // options need the '/' before '?'
  return `${withPath}?${query ? `${query}&` : ''}serverSelectionTimeoutMS=${timeoutMs}`;
}
