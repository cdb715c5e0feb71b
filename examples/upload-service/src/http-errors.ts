// Errors to HTTP answers, in one place. A client's mistake is answered and
// not logged with a stack (one hostile client must not flood the log); the
// database's address never reaches a client.
import type { NextFunction, Request, Response } from 'express';
import multer from 'multer';
import { NotFoundError } from './asset-service';
import { workEnded } from './in-flight';

/** An error the HTTP layer raises itself, with the answer it deserves. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

/** multer's limits a request can exceed as a whole, rather than by one bad field. */
const TOO_LARGE = new Set(['LIMIT_FILE_SIZE', 'LIMIT_FILE_COUNT', 'LIMIT_PART_COUNT', 'LIMIT_FIELD_COUNT']);

interface Answer {
  status: number;
  error?: string;
  code?: unknown;
  field?: string;
  headers?: Record<string, string>;
}

/**
 * What the answers read from an error, whatever threw it (Node, the driver,
 * Mongoose, multer, Express, the addon): any of it may be missing.
 */
export function errorFields(err: unknown): {
  name?: string;
  message?: string;
  code?: unknown;
  codeName?: string;
  field?: string;
  status?: unknown;
  statusCode?: unknown;
  syscall?: string;
} {
  return typeof err === 'object' && err !== null ? err : {};
}

export function answerFor(err: unknown): Answer {
  if (err instanceof HttpError) return { status: err.status, error: err.message, code: err.code, headers: err.headers };
  if (err instanceof multer.MulterError) return { status: TOO_LARGE.has(err.code) ? 413 : 400, error: err.message, code: err.code, field: err.field };
  if (err instanceof NotFoundError) return { status: 404, error: err.message };
  const e = errorFields(err);
  if (e.code === 'ENOSPC' || e.code === 'EDQUOT') {
    return { status: 507, error: 'the file store is full; nothing was stored, try again later', code: 'ERR_STORE_FULL', headers: { 'Retry-After': '60' } };
  }
  if (e.code === 'ERR_ASSET_OUTCOME_UNKNOWN') {
    // 503, not 500: the service could not finish, and a retry will settle it.
    return { status: 503, error: `the database did not confirm whether the upload was stored; ${HOW_TO_SETTLE}`, code: e.code, headers: { 'Retry-After': '5' } };
  }
  // The model's connection never opened: model mode waited for it as Mongoose's
  // own buffering does, and gave up after bufferTimeoutMS. Nothing was sent.
  if (e.name === 'MongooseError' && /buffering timed out/.test(e.message ?? '')) {
    return { status: 503, error: 'the database is unavailable; nothing was stored, try again later', code: 'ERR_DATABASE_UNAVAILABLE', headers: { 'Retry-After': '5' } };
  }
  switch (e.name) {
    case 'ValidationError':
      return { status: 400, error: e.message, code: e.code, field: e.field };
    case 'VersionConflictError':
      return { status: 409, error: e.message, code: e.code, headers: { 'Retry-After': '1' } };
    case 'ConnectionError':
    case 'RepositoryClosedError':
    case 'MongoServerSelectionError':
    case 'MongoNetworkError':
    case 'MongoNetworkTimeoutError':
    case 'MongoNotConnectedError':
    case 'MongoTopologyClosedError':
    case 'MongoWaitQueueTimeoutError':
    case 'MongoPoolClearedError':
    case 'PoolClearedOnNetworkError':
      return { status: 503, error: 'the database is unavailable; nothing was stored, try again later', code: 'ERR_DATABASE_UNAVAILABLE', headers: { 'Retry-After': '5' } };
  }
  // The server's InternalError: FerretDB's answer while the PostgreSQL under it is down or restarting.
  // The addon reports it as certainly not stored.
  if (e.name === 'ServerError' && e.code === 1) {
    return { status: 503, error: 'the database failed; nothing was stored, try again later', code: 'ERR_DATABASE_UNAVAILABLE', headers: { 'Retry-After': '5' } };
  }
  if (e.code === 50 || e.codeName === 'MaxTimeMSExpired') {
    return { status: 503, error: 'the database did not answer in time; nothing was changed, try again later', code: 'ERR_DATABASE_TIMEOUT', headers: { 'Retry-After': '5' } };
  }
  if (e.code === 11000) return { status: 409, error: e.message, code: e.code, headers: { 'Retry-After': '1' } }; // the reference design's exhausted retries
  // Express's own client errors: a bad percent-encoding in the path (URIError), a body it refused.
  const status = e.status ?? e.statusCode;
  if (typeof status === 'number' && Number.isInteger(status) && status >= 400 && status < 500)
    return { status, error: status === 400 ? 'bad request: malformed URL or body' : e.message };
  return { status: 500, error: 'internal error' };
}

/** What an unknown outcome asks of the client, in every answer that reports one. */
export const HOW_TO_SETTLE = "send it again with the same Idempotency-Key to get its one version (a request sent without one: list the order's versions before sending it again)";

/** The answer for a request whose database work outlived answerTimeoutMs; the work goes on, holding its slot. */
export function deadlineError(kind: 'upload' | 'read', ms: number): HttpError {
  return kind === 'upload'
    ? new HttpError(503, `the database did not answer within ${ms} ms, so whether the upload was stored is not known yet; ${HOW_TO_SETTLE}`, 'ERR_ASSET_OUTCOME_UNKNOWN', {
        'Retry-After': '5',
      })
    : new HttpError(503, `the database did not answer within ${ms} ms; nothing was changed, try again later`, 'ERR_DATABASE_TIMEOUT', { 'Retry-After': '5' });
}

/**
 * One line per database outage, not one per request: the first 5xx of a
 * kind is logged, the rest are counted and reported at most once a minute.
 */
const quiet = new Map<string, { since: number; suppressed: number }>();
function logOnce(kind: string, line: string): void {
  const now = Date.now();
  const seen = quiet.get(kind);
  if (seen && now - seen.since < 60_000) {
    seen.suppressed += 1;
    return;
  }
  const more = seen?.suppressed ? ` (and ${seen.suppressed} more like it in the last minute)` : '';
  quiet.set(kind, { since: now, suppressed: 0 });
  console.warn(`${line}${more}`);
}

/** The client hung up mid-request: nobody to answer, nothing wrong with the service. */
function clientGone(err: unknown): boolean {
  const { code, message } = errorFields(err);
  return (typeof code === 'string' && ['ECONNRESET', 'ECONNABORTED', 'EPIPE'].includes(code)) || /^Request (aborted|closed)$/.test(message ?? '');
}

/**
 * The body is not read to its end: the connection closes after the answer.
 * Closing a socket with unread bytes sends a reset, which can destroy the
 * answer before the client reads it, so the close lingers: the service's side
 * is shut, what still arrives is discarded for up to a second, then it goes.
 */
function closeWithoutDraining(req: Request, res: Response): void {
  res.set('Connection', 'close');
  const socket = req.socket as typeof req.socket & { destroySoon?: () => void };
  socket.destroySoon = function lingeringClose(this: typeof socket) {
    this.end();
    this.resume();
    setTimeout(() => this.destroy(), 1000).unref();
  };
}

/** Answers err; an unread body is not drained: the connection closes after the answer. */
export function sendError(err: unknown, req: Request, res: Response): void {
  if (clientGone(err)) {
    res.destroy();
    return;
  }
  const { status, error, code, field, headers } = answerFor(err);
  if (status === 500) console.error(err);
  // The database or the disk failing: one line for the operator. A client's
  // error, or the in-flight cap turning a flood away, is not logged at all.
  else if (status >= 500 && !(err instanceof HttpError)) logOnce(`${status} ${code ?? errorFields(err).name}`, `${status} ${req.method} ${req.path}: ${errorFields(err).message}`);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (headers) res.set(headers);
  if (!req.complete) closeWithoutDraining(req, res);
  res.status(status).json({ error, code, field });
}

/** Express's last handler: whatever reached it, the request's work is over. */
export function errorHandler(err: unknown, req: Request, res: Response, _next: NextFunction): void {
  workEnded(res);
  sendError(err, req, res);
}
