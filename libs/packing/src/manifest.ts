export { BucketManifest, WrittenFileSchema } from '@xyp/contracts';
