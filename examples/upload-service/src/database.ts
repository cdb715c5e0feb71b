// The service's connections, with every database wait bounded so that a
// request is answered within answerTimeoutMs (limits.ts) even when the
// database hangs: a short server selection timeout (an outage answers 503 in
// seconds rather than after libmongoc's and the driver's default 30 s), a
// socket timeout (a frozen server's missing reply; the addon's own default is
// 30 s), a recovery budget for a lost reply (the addon's default is 60 s), a
// maxTimeMS on every read, and a bounded wait for a pooled connection. A
// value already in the URI is kept.

export const SERVER_SELECTION_TIMEOUT_MS = 3000;

export const DATABASE_BOUNDS = {
  serverSelectionTimeoutMS: SERVER_SELECTION_TIMEOUT_MS,
  socketTimeoutMS: 4000,
  /** The addon's recoveryTimeMS: how long a lost reply may take to settle before OutcomeUnknownError. */
  recoveryTimeMS: 3000,
  /** Server-side bound on reads and key lookups. */
  maxTimeMS: 3000,
  /** The driver's pool for reads, and how long a read waits for one of its connections. */
  maxPoolSize: 20,
  waitQueueTimeoutMS: 2000,
} as const;

function withOption(uri: string, name: string, value: number): string {
  if (new RegExp(`[?&]${name}=`, 'i').test(uri)) return uri;
  const [base, query] = uri.split('?', 2);
  const withPath = /^mongodb(\+srv)?:\/\/[^/]*$/.test(base) ? `${base}/` : base; // options need the '/' before '?'
  return `${withPath}?${query ? `${query}&` : ''}${name}=${value}`;
}

export function withFastFailure(uri: string, timeoutMs = SERVER_SELECTION_TIMEOUT_MS): string {
  return withOption(uri, 'serverSelectionTimeoutMS', timeoutMs);
}

/** withFastFailure, and a socket timeout: what both the addon and the driver read from the URI. */
export function withBounds(uri: string): string {
  return withOption(withFastFailure(uri, DATABASE_BOUNDS.serverSelectionTimeoutMS), 'socketTimeoutMS', DATABASE_BOUNDS.socketTimeoutMS);
}
