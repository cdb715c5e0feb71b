// Every bound the HTTP layer puts on a client, in one place, with the
// environment variable that changes it (see examples/upload-service/README.md).

export interface Limits {
  /** Largest accepted file, in bytes. */
  maxFileSize: number;
  /** Files in one request. */
  maxFiles: number;
  /** Text fields in one request (uploadedBy is the only one read). */
  maxFields: number;
  /** Bytes in one text field. */
  maxFieldSize: number;
  /** Characters in a file name, and in uploadedBy. */
  maxFileNameLength: number;
  maxUploadedByLength: number;
  /** Upload requests being received or stored at once, until their work ends; beyond it, 503 with Retry-After. */
  maxUploadsInFlight: number;
  /** The share of those one client address may hold; beyond it, 429. */
  maxUploadsPerClient: number;
  /** Listings and downloads being answered at once, and one client's share of them. */
  maxReadsInFlight: number;
  maxReadsPerClient: number;
  /** A body slower than this on average (bytes per second), past the grace, is cut off. */
  minBodyBytesPerSecond: number;
  bodyRateGraceMs: number;
  /** Longest wait for the database before a request is answered 503 (its work may go on, holding its slot). */
  answerTimeoutMs: number;
  /** Files no record names are removed once older than this; the sweep runs at start-up and this often. */
  orphanGraceMs: number;
  orphanSweepIntervalMs: number;
  /** Versions in one page of a listing, by default and at most. */
  pageSize: number;
  maxPageSize: number;
  /** Time to receive a request's headers, and the whole request. */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = {
  maxFileSize: 10 * 1024 * 1024,
  maxFiles: 20,
  maxFields: 10,
  maxFieldSize: 4096,
  maxFileNameLength: 255,
  maxUploadedByLength: 200,
  maxUploadsInFlight: 64,
  maxUploadsPerClient: 8,
  maxReadsInFlight: 64,
  maxReadsPerClient: 16,
  minBodyBytesPerSecond: 1024,
  bodyRateGraceMs: 5000,
  answerTimeoutMs: 10_000,
  orphanGraceMs: 24 * 3600_000,
  orphanSweepIntervalMs: 3600_000,
  pageSize: 50,
  maxPageSize: 500,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 120_000,
};

const ENV: Record<keyof Limits, string> = {
  maxFileSize: 'MAX_FILE_SIZE',
  maxFiles: 'MAX_FILES',
  maxFields: 'MAX_FIELDS',
  maxFieldSize: 'MAX_FIELD_SIZE',
  maxFileNameLength: 'MAX_FILE_NAME_LENGTH',
  maxUploadedByLength: 'MAX_UPLOADED_BY_LENGTH',
  maxUploadsInFlight: 'MAX_UPLOADS_IN_FLIGHT',
  maxUploadsPerClient: 'MAX_UPLOADS_PER_CLIENT',
  maxReadsInFlight: 'MAX_READS_IN_FLIGHT',
  maxReadsPerClient: 'MAX_READS_PER_CLIENT',
  minBodyBytesPerSecond: 'MIN_BODY_BYTES_PER_SECOND',
  bodyRateGraceMs: 'BODY_RATE_GRACE_MS',
  answerTimeoutMs: 'ANSWER_TIMEOUT_MS',
  orphanGraceMs: 'ORPHAN_GRACE_MS',
  orphanSweepIntervalMs: 'ORPHAN_SWEEP_INTERVAL_MS',
  pageSize: 'PAGE_SIZE',
  maxPageSize: 'MAX_PAGE_SIZE',
  headersTimeoutMs: 'HEADERS_TIMEOUT_MS',
  requestTimeoutMs: 'REQUEST_TIMEOUT_MS',
};

export function withDefaults(given: Partial<Limits>): Limits {
  const limits = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(ENV) as Array<keyof Limits>) if (given[key] !== undefined) limits[key] = given[key]!;
  return limits;
}

/** The limits the environment sets; a value that is not a positive integer is an error, not a silent default. */
export function limitsFromEnv(env: NodeJS.ProcessEnv): Limits {
  const given: Partial<Limits> = {};
  for (const [key, name] of Object.entries(ENV) as Array<[keyof Limits, string]>) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    const value = Number(raw);
    if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name}=${raw} is not a positive integer`);
    given[key] = value;
  }
  return withDefaults(given);
}

/**
 * The largest body a request can carry within the other limits (each file
 * and field with room for its part headers): a Content-Length above it is
 * refused before a byte of the body is read.
 */
export function maxRequestBytes(limits: Limits): number {
  const partOverhead = 1024;
  return limits.maxFiles * (limits.maxFileSize + partOverhead) + limits.maxFields * (limits.maxFieldSize + partOverhead) + partOverhead;
}
