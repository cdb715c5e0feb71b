// The HTTP face of the upload service: Express routes over AssetService.
// Everything a client can abuse is bounded here (see limits.ts).
import express, { NextFunction, Request, Response } from 'express';
import multer from 'multer';
import path from 'path';
import { pipeline } from 'stream/promises';
import type { Asset } from './asset-repository';
import { AssetService, InvalidIdError, isOutcomeUnknown, NotFoundError, UploadedFile, versionUrl } from './asset-service';
import { minimumBodyRate } from './body-rate';
import { setFileHeaders } from './file-response';
import { deadlineError, errorFields, errorHandler, HttpError, sendError } from './http-errors';
import { canonicalOrderId, fingerprint, idempotencyKey, keyId, uploadId } from './idempotency';
import { Slots, whenWorkEnds, workEnded } from './in-flight';
import { Limits, maxRequestBytes, withDefaults } from './limits';
import { pageHeaders } from './page-headers';
import { fileStoreStorage, StreamedFile } from './upload-storage';

export interface AppOptions extends Partial<Limits> {
  service: AssetService;
}

function positiveInt(value: unknown, name: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== 'string' || !/^[0-9]+$/.test(value) || n < 1 || n > max) {
    throw new HttpError(400, `${name} must be an integer from 1 to ${max}`, 'ERR_QUERY', undefined);
  }
  return n;
}

const OBJECT_ID = /^[0-9a-f]{24}$/i;

/** A version as the URL names it: `3` or `v3`, nothing else (no `0x3`, `3.0`, `+3`, `3e0`). */
function versionParam(value: string): number {
  const match = /^v?([1-9][0-9]{0,14})$/.exec(value);
  if (!match) throw new NotFoundError('no such version');
  return Number(match[1]);
}

/**
 * Runs the request's database work, answering 503 if it has not ended within
 * `ms`. The work goes on after that answer; its slot is held until it ends.
 */
async function withinDeadline(req: Request, res: Response, kind: 'upload' | 'read', ms: number, work: () => Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ms)));
  const running = work();
  try {
    if ((await Promise.race([running, late])) === 'late') {
      sendError(deadlineError(kind, ms), req, res);
      await running.catch(() => {}); // its outcome is the retry's to learn
    }
  } finally {
    clearTimeout(timer);
  }
}

export function createApp({ service, ...given }: AppOptions): express.Express {
  const limits = withDefaults(given);
  const { files } = service;
  const upload = multer({
    storage: fileStoreStorage(files),
    defParamCharset: 'utf8', // browsers send UTF-8 names; multer's default reads them as Latin-1
    limits: {
      fileSize: limits.maxFileSize,
      files: limits.maxFiles,
      fields: limits.maxFields,
      fieldSize: limits.maxFieldSize,
      fieldNameSize: 100,
      parts: limits.maxFiles + limits.maxFields,
      headerPairs: 20,
    },
    fileFilter: (_req, file, cb) => {
      if ([...file.originalname].length > limits.maxFileNameLength) {
        cb(new HttpError(400, `a file name is longer than ${limits.maxFileNameLength} characters`, 'ERR_FILE_NAME_TOO_LONG'));
      } else cb(null, true);
    },
  });
  // Anything multer reports that is neither a limit nor the disk's (a system
  // call's error, ENOSPC say, which may reach multer through the file's stream) is a malformed body.
  //
  // multer reads the rest of a refused body to its end before it reports the
  // error (sparing the client an EPIPE); a 300 MiB body would be read for a
  // 413. Here the error is reported as soon as multer starts that drain (the
  // one 'readable' listener it adds), and the error handler closes the
  // connection after the answer instead.
  const receive = (req: Request, res: Response, next: NextFunction) => {
    let reported = false;
    const report = (err?: unknown) => {
      if (reported) return;
      reported = true;
      req.off('newListener', onListener);
      if (!err || err instanceof multer.MulterError || err instanceof HttpError || errorFields(err).syscall) return next(err);
      next(new HttpError(400, `malformed multipart body: ${errorFields(err).message}`, 'ERR_MALFORMED_BODY'));
    };
    const onListener = (event: string | symbol) => {
      if (event !== 'readable') return;
      req.off('newListener', onListener);
      setImmediate(() => {
        if (reported) return;
        const waiting = req.listeners('end').at(-1); // multer's "report once the body has ended"
        if (typeof waiting === 'function') waiting.call(req);
      });
    };
    req.on('newListener', onListener);
    upload.array('files', limits.maxFiles)(req, res, report);
  };

  const uploadSlots = new Slots('uploads', limits.maxUploadsInFlight, limits.maxUploadsPerClient);
  const readSlots = new Slots('reads', limits.maxReadsInFlight, limits.maxReadsPerClient);
  const largestBody = maxRequestBytes(limits);

  const app = express();
  app.disable('x-powered-by');
  app.locals.slots = { uploads: uploadSlots, reads: readSlots }; // for the tests and an operator's probe
  app.use(express.static(path.join(__dirname, '..', 'public'), { setHeaders: pageHeaders }));

  // What the URL and the headers already say is wrong is refused before any
  // byte of the body is read (the error handler closes the connection rather
  // than drain it): the order id, the Idempotency-Key, a Content-Length over
  // what the limits allow.
  const refuseEarly = (req: Request, _res: Response, next: NextFunction) => {
    try {
      if (!OBJECT_ID.test(req.params.orderId)) throw new InvalidIdError('orderId');
      idempotencyKey(req.get('Idempotency-Key'));
      const length = Number(req.get('Content-Length'));
      if (length > largestBody) throw new HttpError(413, `the request is larger than the limits allow (${largestBody} bytes)`, 'ERR_REQUEST_TOO_LARGE');
      next();
    } catch (err) {
      next(err);
    }
  };

  // A keyed request already being worked on here: the duplicate is 409 before its body is read.
  const holdKey = (req: Request, res: Response, next: NextFunction) => {
    try {
      const key = idempotencyKey(req.get('Idempotency-Key'));
      if (key !== undefined) whenWorkEnds(res, service.idempotency.hold(keyId(req.params.orderId, key)));
      next();
    } catch (err) {
      next(err);
    }
  };

  app.post(
    '/orders/:orderId/assets',
    refuseEarly,
    uploadSlots.middleware(),
    holdKey,
    minimumBodyRate(limits.minBodyBytesPerSecond, limits.bodyRateGraceMs),
    receive,
    (req: Request, res: Response, next: NextFunction) => {
      const streamed = (req.files as StreamedFile[] | undefined) ?? [];
      let handedOver = false; // once the service has the files, it removes what it must
      const work = async () => {
        try {
          if (streamed.length === 0) {
            throw new HttpError(400, 'no file uploaded: send multipart form-data with one or more "files" fields', 'ERR_NO_FILE');
          }
          const key = idempotencyKey(req.get('Idempotency-Key'));
          const by = req.body?.uploadedBy;
          if (by !== undefined && typeof by !== 'string') {
            throw new HttpError(400, 'uploadedBy must be sent once, as a plain field', 'ERR_UPLOADED_BY');
          }
          const uploadedBy = by !== '' ? by : undefined; // the uploader's user id, when given
          if (uploadedBy !== undefined && [...uploadedBy].length > limits.maxUploadedByLength) {
            throw new HttpError(400, `uploadedBy is longer than ${limits.maxUploadedByLength} characters`, 'ERR_UPLOADED_BY_TOO_LONG');
          }
          if (uploadedBy !== undefined && !OBJECT_ID.test(uploadedBy)) throw new InvalidIdError('uploadedBy');
          const orderId = canonicalOrderId(req.params.orderId);
          if (key !== undefined) await service.idempotency.claim(keyId(orderId, key), fingerprint(orderId, uploadedBy, streamed));
          const uploads: UploadedFile[] = streamed.map((f, i) => ({
            originalname: f.originalname,
            mimetype: f.mimetype,
            size: f.size,
            storageKey: f.storageKey,
            ...(key !== undefined ? { _id: uploadId(orderId, key, i) } : {}),
          }));
          handedOver = true;
          // Each file is its own upload with its own version, in the order sent.
          const results = await service.uploadAssets(uploads, orderId, uploadedBy);
          const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason);
          const created = results
            .filter((r): r is PromiseFulfilledResult<Asset> => r.status === 'fulfilled')
            .map((r) => ({ ...r.value, fileUrl: versionUrl(orderId, r.value.version) })); // where this service serves it
          // All failed: answer as the failure the client should act on, an unknown outcome first.
          if (created.length === 0) throw failures.find(isOutcomeUnknown) ?? failures[0];
          if (!res.headersSent) res.status(failures.length ? 207 : 201).json({ assets: created, errors: failures.map((e) => String(e.message)) });
        } catch (err) {
          if (!handedOver) await Promise.all(streamed.map((f) => files.remove(f.storageKey)));
          throw err;
        }
      };
      withinDeadline(req, res, 'upload', limits.answerTimeoutMs, work)
        .then(() => workEnded(res))
        .catch((err) => (res.headersSent ? workEnded(res) : next(err)));
    },
  );

  // Reads: their own cap, a deadline, and the service's maxTimeMS on the query.
  const read = (handle: (req: Request, res: Response) => Promise<void>) => (req: Request, res: Response, next: NextFunction) => {
    withinDeadline(req, res, 'read', limits.answerTimeoutMs, () => handle(req, res))
      .then(() => workEnded(res))
      .catch((err) => (res.headersSent ? (workEnded(res), res.destroy()) : next(err)));
  };

  app.get(
    '/orders/:orderId/assets',
    readSlots.middleware(),
    read(async (req, res) => {
      const limit = positiveInt(req.query.limit, 'limit', limits.maxPageSize) ?? limits.pageSize;
      const before = positiveInt(req.query.after, 'after');
      const assets = await service.listAssets(req.params.orderId, { limit, before });
      // `after` continues below the last version listed (newest first).
      if (!res.headersSent) res.json({ assets, next: assets.length === limit ? assets[assets.length - 1].version : null });
    }),
  );

  app.get('/orders/:orderId/assets/:version', readSlots.middleware(), (req: Request, res: Response, next: NextFunction) => {
    let found: Awaited<ReturnType<AssetService['openAssetFile']>> | undefined;
    // The deadline covers the lookup, not a slow client's download.
    withinDeadline(req, res, 'read', limits.answerTimeoutMs, async () => {
      found = await service.openAssetFile(req.params.orderId, versionParam(req.params.version));
    })
      .then(async () => {
        if (!found) return;
        if (res.headersSent) return void found.stream.destroy();
        setFileHeaders(res, found.asset, found.size);
        // Past the headers there is nothing left to answer: a client gone mid-download just ends it.
        await pipeline(found.stream, res).catch(() => res.destroy());
      })
      .then(() => workEnded(res))
      .catch((err) => (res.headersSent ? (workEnded(res), found?.stream.destroy()) : next(err)));
  });

  // Anything else: a 404 that does not echo what was asked for.
  app.use((_req: Request, _res: Response, next: NextFunction) => next(new NotFoundError('not found')));
  app.use(errorHandler);
  return app;
}
