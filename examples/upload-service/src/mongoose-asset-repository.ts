// The reference design (shared/reference/asset-versioning.md) as an existing
// app has it: the model of asset-model.ts (its (orderId, version) unique
// index, timestamps and hooks), highest + 1, and up to 5 retries on E11000
// after 5–15 ms.
import mongoose, { Connection, Model } from 'mongoose';
import { assetModel, IAsset } from './asset-model';
import type { AssetRepositoryPort } from './asset-repository';

const MAX_RETRIES = 5;

export class MongooseAssetRepository implements AssetRepositoryPort {
  private constructor(
    private readonly connection: Connection,
    readonly model: Model<IAsset>,
  ) {}

  static async connect(uri: string, dbName: string, collection: string): Promise<MongooseAssetRepository> {
    const connection = await mongoose.createConnection(uri, { dbName }).asPromise();
    const model = assetModel(connection, collection);
    await model.init();
    return new MongooseAssetRepository(connection, model);
  }

  async createWithAtomicVersion(data: Partial<IAsset>, retryCount = 0): Promise<IAsset> {
    try {
      const lastAsset = await this.model.findOne({ orderId: data.orderId }).sort({ version: -1 }).lean();
      const nextVersion = lastAsset ? lastAsset.version + 1 : 1;
      const saved = await new this.model({ ...data, version: nextVersion, versionLabel: `v${nextVersion}` }).save();
      return saved.toObject();
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
