// Compiled by test/typescript.test.js with tsc --strict --noEmit: the
// reference design's repository signature, as the seed writes it, with an
// IAsset as a typical Mongoose service declares it, is satisfied by this
// package in model mode. The line marked as an expected error must fail.
import { Schema, model, Types } from 'mongoose';
import { AssetRepository, VersionConflictError } from 'atomic-asset-version';

export interface IAsset {
  _id: Types.ObjectId;
  orderId: Types.ObjectId;
  uploadedBy: Types.ObjectId;
  fileName: string;
  fileUrl: string;
  fileSize?: number;
  mimeType?: string;
  status: 'active' | 'archived';
  description?: string;
  version: number;
  versionLabel: string;
  createdAt: Date;
  updatedAt: Date;
}

const assetSchema = new Schema<IAsset>(
  {
    orderId: { type: Schema.Types.ObjectId, ref: 'Order', required: true },
    uploadedBy: { type: Schema.Types.ObjectId, ref: 'User', required: true },
    fileName: { type: String, required: true },
    fileUrl: { type: String, required: true },
    fileSize: Number,
    mimeType: String,
    status: { type: String, enum: ['active', 'archived'], default: 'active' },
    description: String,
    version: { type: Number, required: true },
    versionLabel: { type: String, required: true },
  },
  { timestamps: true },
);
const Asset = model<IAsset>('Asset', assetSchema);

// The seed's repository, as the service depends on it.
interface IAssetRepository {
  createWithAtomicVersion(data: Partial<IAsset>, retryCount?: number): Promise<IAsset>;
}

export async function service(orderId: string, uploadedBy: string): Promise<IAsset> {
  const assetRepository: IAssetRepository = new AssetRepository<IAsset>({ model: Asset });
  const repo = new AssetRepository<IAsset>({ model: Asset, maxRetries: 5 });
  const data: Partial<IAsset> = {
    orderId: new Types.ObjectId(orderId),
    uploadedBy: new Types.ObjectId(uploadedBy),
    fileName: 'proof.pdf',
    fileUrl: '/files/proof.pdf',
  };
  const asset: IAsset = await repo.createWithAtomicVersion(data);
  const again: IAsset = await repo.createWithAtomicVersion({ ...data, _id: asset._id }, 0);
  const when: Date = again.createdAt;
  const many: IAsset[] = await repo.createManyWithAtomicVersion(orderId, [{ fileName: 'a.pdf', fileUrl: '/a' }]);
  void [when, many];
  try {
    await assetRepository.createWithAtomicVersion(data);
  } catch (err) {
    if (err instanceof VersionConflictError) void [err.code === 11000, err.index, err.keyPattern.version, err.keyValue.orderId];
  }
  // @ts-expect-error a field of the wrong type is still caught
  await repo.createWithAtomicVersion({ fileName: 42 });
  return asset;
}
