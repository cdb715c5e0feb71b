// Errors to HTTP answers, in one place. A client's mistake is answered and
// not logged with a stack (one hostile client must not flood the log); the
// database's address never reaches a client.
import type { NextFunction, Request, Response } from 'express';
import multer from 'multer';
import { NotFoundError } from './asset-service';

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
  error: string;
  code?: unknown;
  field?: string;
  headers?: Record<string, string>;
}

export function answerFor(err: any): Answer {
  if (err instanceof HttpError) return { status: err.status, error: err.message, code: err.code, headers: err.headers };
  if (err instanceof multer.MulterError) return { status: TOO_LARGE.has(err.code) ? 413 : 400, error: err.message, code: err.code, field: err.field };
  if (err instanceof NotFoundError) return { status: 404, error: err.message };
  if (err?.code === 'ENOSPC' || err?.code === 'EDQUOT') {
    return { status: 507, error: 'the file store is full; nothing was stored, try again later', code: 'ERR_STORE_FULL', headers: { 'Retry-After': '60' } };
  }
  if (err?.code === 'ERR_ASSET_OUTCOME_UNKNOWN') {
    // 503, not 500: the service could not finish, and a retry will settle it.
    return {
      status: 503,
      error: 'the database did not confirm whether the upload was stored; send it again with the same Idempotency-Key to get its one version',
      code: err.code,
      headers: { 'Retry-After': '5' },
    };
  }
  // The model's connection never opened: model mode waited for it as Mongoose's
  // own buffering does, and gave up after bufferTimeoutMS. Nothing was sent.
  if (err?.name === 'MongooseError' && /buffering timed out/.test(err.message)) {
    return { status: 503, error: 'the database is unavailable; nothing was stored, try again later', code: 'ERR_DATABASE_UNAVAILABLE', headers: { 'Retry-After': '5' } };
  }
  switch (err?.name) {
    case 'ValidationError':
      return { status: 400, error: err.message, code: err.code, field: err.field };
    case 'VersionConflictError':
      return { status: 409, error: err.message, code: err.code, headers: { 'Retry-After': '1' } };
    case 'ConnectionError':
    case 'RepositoryClosedError':
    case 'MongoServerSelectionError':
    case 'MongoNetworkError':
    case 'MongoNetworkTimeoutError':
    case 'MongoNotConnectedError':
    case 'MongoTopologyClosedError':
      return { status: 503, error: 'the database is unavailable; nothing was stored, try again later', code: 'ERR_DATABASE_UNAVAILABLE', headers: { 'Retry-After': '5' } };
  }
  if (err?.code === 11000) return { status: 409, error: err.message, code: err.code, headers: { 'Retry-After': '1' } }; // the reference design's exhausted retries
  // Express's own client errors: a bad percent-encoding in the path (URIError), a body it refused.
  const status = err?.status ?? err?.statusCode;
  if (Number.isInteger(status) && status >= 400 && status < 500) return { status, error: status === 400 ? 'bad request: malformed URL or body' : err.message };
  return { status: 500, error: 'internal error' };
}

/** The client hung up mid-request: nobody to answer, nothing wrong with the service. */
function clientGone(err: any): boolean {
  return ['ECONNRESET', 'ECONNABORTED', 'EPIPE'].includes(err?.code) || /^Request (aborted|closed)$/.test(err?.message);
}

export function errorHandler(err: any, req: Request, res: Response, _next: NextFunction): void {
  if (clientGone(err)) {
    res.destroy();
    return;
  }
  const { status, error, code, field, headers } = answerFor(err);
  if (status === 500) console.error(err);
  // The database or the disk failing: one line for the operator. A client's
  // error, or the in-flight cap turning a flood away, is not logged at all.
  else if (status >= 500 && !(err instanceof HttpError)) console.warn(`${status} ${req.method} ${req.path}: ${err?.message}`);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (headers) res.set(headers);
  res.status(status).json({ error, code, field });
}
