'use strict';

// The reference design (shared/reference/asset-versioning.md), in plain
// JavaScript on the official driver: find the highest version, insert
// highest + 1 under the unique (orderId, version) index, and on E11000 wait
// 5–15 ms at random and try again, at most 5 times.
const MAX_RETRIES = 5;

class ReferenceRepository {
  constructor(collection) {
    this.collection = collection;
    this.retries = 0;
  }

  async createWithAtomicVersion(data, retryCount = 0) {
    try {
      const last = await this.collection.findOne({ orderId: data.orderId }, { sort: { version: -1 }, projection: { version: 1 } });
      const nextVersion = last ? last.version + 1 : 1;
      const now = new Date();
      const asset = { ...data, version: nextVersion, versionLabel: `v${nextVersion}`, createdAt: now, updatedAt: now };
      const { insertedId } = await this.collection.insertOne(asset);
      return { ...asset, _id: insertedId };
    } catch (error) {
      if (error.code === 11000 && retryCount < MAX_RETRIES) {
        this.retries++;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 + 5));
        return this.createWithAtomicVersion(data, retryCount + 1);
      }
      throw error;
    }
  }
}

module.exports = { ReferenceRepository, MAX_RETRIES };
