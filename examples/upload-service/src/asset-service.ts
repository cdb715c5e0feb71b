// The upload service as an existing app has it. It depends only on
// AssetRepositoryPort: swapping the Mongoose repository for
// atomic-asset-version changes nothing here.
import type { Collection } from 'mongodb';
import type { Asset, AssetRepositoryPort } from './asset-repository';
import type { FileStore } from './file-store';

export interface UploadedFile {
  originalname: string;
  mimetype: string;
  size: number;
  buffer: Buffer;
}

export class NotFoundError extends Error {}

export class AssetService {
  constructor(
    private readonly assetRepository: AssetRepositoryPort,
    private readonly files: FileStore,
    private readonly assets: Collection<Asset>,
  ) {}

  async uploadAsset(file: UploadedFile, orderId: string, uploadedBy: string): Promise<Asset> {
    const storageKey = await this.files.put(file.buffer);
    return this.record(file, storageKey, orderId, uploadedBy);
  }

  /**
   * Several files of one upload: the bytes are stored in parallel, then the
   * records are created in the order the files came, so their versions
   * follow that order.
   */
  async uploadAssets(files: UploadedFile[], orderId: string, uploadedBy: string): Promise<PromiseSettledResult<Asset>[]> {
    const stored = await Promise.allSettled(files.map((f) => this.files.put(f.buffer)));
    return Promise.allSettled(
      files.map((file, i) => {
        const s = stored[i];
        return s.status === 'fulfilled' ? this.record(file, s.value, orderId, uploadedBy) : Promise.reject(s.reason);
      }),
    );
  }

  private async record(file: UploadedFile, storageKey: string, orderId: string, uploadedBy: string): Promise<Asset> {
    try {
      return await this.assetRepository.createWithAtomicVersion({
        orderId,
        fileName: file.originalname,
        mimeType: file.mimetype,
        fileSize: file.size,
        storageKey,
        uploadedBy,
      });
    } catch (err) {
      await this.files.remove(storageKey); // no orphan bytes for a failed upload
      throw err;
    }
  }

  /** Versions of an order, newest first. */
  listAssets(orderId: string): Promise<Asset[]> {
    return this.assets.find({ orderId }).sort({ version: -1 }).toArray() as Promise<Asset[]>;
  }

  async getAssetFile(orderId: string, version: number): Promise<{ asset: Asset; bytes: Buffer }> {
    const asset = (await this.assets.findOne({ orderId, version })) as Asset | null;
    if (!asset) throw new NotFoundError(`order ${orderId} has no version ${version}`);
    return { asset, bytes: await this.files.get(asset.storageKey) };
  }
}
