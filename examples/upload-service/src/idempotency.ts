// Idempotent HTTP retries. A client that sends `Idempotency-Key` and retries
// after a timeout must get the first result, never a second version. The key
// (one per request), the order and the file's position in the request name
// the upload's _id deterministically, and the repository stores one upload
// once per _id: a retry resolves with the document the first attempt stored.
//
// A key names one request: its fingerprint (the order, the files' names,
// sizes and content hashes, the uploader) is stored with the key the first
// time, and another request under the same key is refused with 422, as the
// IETF idempotency-key draft says. A duplicate arriving while the first is
// still being worked on in this process gets 409; across processes both go
// on, and the _id makes them one upload.
import { createHash } from 'crypto';
import { ObjectId } from 'bson';
import type { Collection } from 'mongodb';
import { HttpError } from './http-errors';

export const HEADER = 'Idempotency-Key';
const KEY = /^[\x21-\x7e]{1,255}$/;

/** The header's value, or undefined when absent; a malformed key is the client's error. */
export function idempotencyKey(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!KEY.test(value)) throw new HttpError(400, `${HEADER} must be 1 to 255 visible ASCII characters`, 'ERR_IDEMPOTENCY_KEY');
  return value;
}

/** Order ids are accepted in either hex case; everything derived from one uses this form. */
export const canonicalOrderId = (orderId: string): string => orderId.toLowerCase();

const sha256 = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest();

/** The _id of the file at `position` (0-based) of a request to `orderId` sent with `key`. */
export function uploadId(orderId: string, key: string, position: number): ObjectId {
  return new ObjectId(sha256([canonicalOrderId(orderId), key, position]).subarray(0, 12));
}

/** What a key is stored under: one per order and key. */
export const keyId = (orderId: string, key: string): string => sha256([canonicalOrderId(orderId), key]).toString('hex');

export interface RequestFiles {
  originalname: string;
  size: number;
  sha256: string;
}

/** The request a key was first used for, as a hash: the canonical order, the uploader, each file's name, size and content. */
export function fingerprint(orderId: string, uploadedBy: string | undefined, files: RequestFiles[]): string {
  return sha256([canonicalOrderId(orderId), uploadedBy?.toLowerCase() ?? null, files.map((f) => [f.originalname, f.size, f.sha256])]).toString('hex');
}

export interface KeyRecord {
  _id: string;
  fingerprint: string;
  createdAt: Date;
}

/** The keys seen, with their requests' fingerprints, in a collection beside the assets. */
export class IdempotencyKeys {
  /** Keys whose request is being worked on in this process. */
  private readonly busy = new Set<string>();

  constructor(
    private readonly keys: Collection<KeyRecord> | undefined,
    private readonly maxTimeMS?: number,
  ) {}

  /** Marks the key busy until release() is called; a duplicate already in progress here is 409. */
  hold(id: string): () => void {
    if (this.busy.has(id)) {
      throw new HttpError(409, `a request with this ${HEADER} is still in progress; retry once it has been answered`, 'ERR_IDEMPOTENCY_KEY_IN_USE', { 'Retry-After': '1' });
    }
    this.busy.add(id);
    return () => this.busy.delete(id);
  }

  /**
   * Stores the key with the request's fingerprint, or checks it against the
   * one stored: the same request goes on (a retry), another is 422.
   */
  async claim(id: string, print: string): Promise<void> {
    if (!this.keys) return; // a service built without a key collection (a unit test's)
    try {
      await this.keys.insertOne({ _id: id, fingerprint: print, createdAt: new Date() }, { maxTimeMS: this.maxTimeMS } as object);
      return;
    } catch (err) {
      if ((err as { code?: unknown } | null)?.code !== 11000) throw err;
    }
    const first = await this.keys.findOne({ _id: id }, { maxTimeMS: this.maxTimeMS });
    // A duplicate key whose document cannot be read yet: another process's claim still committing.
    if (!first)
      throw new HttpError(409, `a request with this ${HEADER} is still in progress; retry once it has been answered`, 'ERR_IDEMPOTENCY_KEY_IN_USE', { 'Retry-After': '1' });
    if (first.fingerprint !== print) {
      throw new HttpError(422, `this ${HEADER} was used for a different request (other files, names or order); use a new key for a new request`, 'ERR_IDEMPOTENCY_KEY_REUSED');
    }
  }
}
