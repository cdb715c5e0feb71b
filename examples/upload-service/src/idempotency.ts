// Idempotent HTTP retries. A client that sends `Idempotency-Key` and retries
// after a timeout must get the first result, never a second version. The key
// (one per request) and the file's position in the request name the upload's
// _id deterministically, and the repository stores one upload once per _id:
// a retry resolves with the document the first attempt stored.
import { createHash } from 'crypto';
import { ObjectId } from 'bson';
import { HttpError } from './http-errors';

export const HEADER = 'Idempotency-Key';
const KEY = /^[\x21-\x7e]{1,255}$/;

/** The header's value, or undefined when absent; a malformed key is the client's error. */
export function idempotencyKey(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!KEY.test(value)) throw new HttpError(400, `${HEADER} must be 1 to 255 visible ASCII characters`, 'ERR_IDEMPOTENCY_KEY');
  return value;
}

/** The _id of the file at `position` (0-based) of a request to `orderId` sent with `key`. */
export function uploadId(orderId: string, key: string, position: number): ObjectId {
  const digest = createHash('sha256').update(JSON.stringify([orderId, key, position])).digest();
  return new ObjectId(digest.subarray(0, 12));
}
