// The reference design (shared/reference/asset-versioning.md) as an existing
// app has it: a Mongoose model with the (orderId, version) unique index and
// timestamps, highest + 1, and up to 5 retries on E11000 after 5–15 ms.
import mongoose, { Connection, Model, Schema } from 'mongoose';
import type { Asset, AssetRepositoryPort, NewAsset } from './asset-repository';

export const assetSchema = new Schema(
  {
    orderId: { type: String, required: true, index: true },
    fileName: { type: String, required: true },
    mimeType: { type: String, required: true },
    fileSize: { type: Number, required: true, min: 0 },
    storageKey: { type: String, required: true },
    uploadedBy: { type: String, required: true },
    version: { type: Number, required: true, min: 1 },
    versionLabel: { type: String, required: true },
  },
  { timestamps: true },
);
assetSchema.index({ orderId: 1, version: 1 }, { unique: true });

export function assetModel(connection: Connection, collection: string): Model<Asset> {
  return connection.model<Asset>(`Asset_${collection}`, assetSchema, collection);
}

const MAX_RETRIES = 5;

export class MongooseAssetRepository implements AssetRepositoryPort {
  private constructor(
    private readonly connection: Connection,
    readonly model: Model<Asset>,
  ) {}

  static async connect(uri: string, dbName: string, collection: string): Promise<MongooseAssetRepository> {
    const connection = await mongoose.createConnection(uri, { dbName }).asPromise();
    const model = assetModel(connection, collection);
    await model.init();
    return new MongooseAssetRepository(connection, model);
  }

  async createWithAtomicVersion(data: NewAsset, retryCount = 0): Promise<Asset> {
    try {
      const lastAsset = await this.model.findOne({ orderId: data.orderId }).sort({ version: -1 }).lean();
      const nextVersion = lastAsset ? lastAsset.version + 1 : 1;
      const saved = await new this.model({ ...data, version: nextVersion, versionLabel: `v${nextVersion}` }).save();
      return saved.toObject() as Asset;
    } catch (error: unknown) {
      if ((error as { code?: number }).code === 11000 && retryCount < MAX_RETRIES) {
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 + 5));
        return this.createWithAtomicVersion(data, retryCount + 1);
      }
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}
