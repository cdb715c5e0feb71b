'use strict';

// What one native batch answered, read per upload. The addon hands a batch's
// results over as three values, not an object per upload (src/napi/insert_batch.c):
// the main thread pays for every object made there. A stored upload's
// document is rebuilt here from the caller's own values when that is exact
// (see `document`), and read from the stored bytes otherwise.
const { BSON, ObjectId } = require('bson');
const native = require('./native');
const { DEFAULT_FIELDS } = require('./asset_input');
const { sharedError } = require('./errors');

const L = native.batchLayout;

class BatchResults {
  #items;
  #docs;
  #errors;

  /** From insertBatch's { items, docs, errors }. */
  constructor({ items, docs, errors }) {
    this.#items = items;
    this.#docs = docs;
    this.#errors = errors;
  }

  /** `count` uploads that all end with their own error from `errorAt(i)`, none sent. */
  static failed(count, errorAt) {
    return new BatchResults({ items: new Float64Array(count * L.fields), docs: Buffer.alloc(0), errors: Array.from({ length: count }, (_, i) => sharedError(errorAt(i))) });
  }

  /** The AssetError of upload i, or undefined when it is stored. */
  error(i) {
    return this.#errors === undefined ? undefined : this.#errors[i];
  }

  /** Any upload's error for which `test(error)` holds. */
  findError(test) {
    return this.#errors === undefined ? undefined : this.#errors.find((e) => e !== undefined && test(e));
  }

  retries(i) {
    return this.#items[i * L.fields + L.retries];
  }

  /**
   * The stored document of upload i. With `view` (asset_input.js: the
   * caller's top-level values as serialized, _id first, when each is one
   * that BSON gives back unchanged and none is a field the addon owns) and a
   * document this batch built, the view itself becomes the document: its
   * _id (from the stored bytes when the addon made it), then the four fields
   * the addon owns, appended in stored order. That is what decoding the
   * stored bytes would give, for less work on the main thread. Anything else
   * is decoded from the stored bytes.
   */
  document(i, view, fields = DEFAULT_FIELDS) {
    const at = i * L.fields;
    const start = i === 0 ? 0 : this.#items[at - L.fields + L.docEnd];
    if (view !== null && this.#items[at + L.built] === 1 && (view._id !== undefined || this.#setObjectId(view, start))) {
      const version = this.#items[at + L.version];
      const createdMs = this.#items[at + L.createdMs];
      view[fields.version] = version;
      if (fields.versionLabel !== null) view[fields.versionLabel] = `v${version}`;
      view.createdAt = new Date(createdMs);
      view.updatedAt = new Date(createdMs);
      return view;
    }
    return BSON.deserialize(this.#docs.subarray(start, this.#items[at + L.docEnd]));
  }

  /** Sets view._id to the ObjectId the addon made, the first field of its stored document; false if it is not one. */
  #setObjectId(view, start) {
    const d = this.#docs;
    // int32 length, then type 0x07 (ObjectId) and the key "_id\0".
    if (d[start + 4] !== 0x07 || d[start + 5] !== 0x5f || d[start + 6] !== 0x69 || d[start + 7] !== 0x64 || d[start + 8] !== 0) return false;
    const bytes = Buffer.allocUnsafe(12);
    d.copy(bytes, 0, start + 9, start + 21);
    view._id = new ObjectId(bytes);
    return true;
  }
}

module.exports = { BatchResults };
