import { createHash } from 'node:crypto';
import type { Client } from 'minio';
import type { ArtifactBody } from './artifact-store';
import { bodyChunks } from './store-support';

export interface PartUploadOptions {
  /** Bytes held before a part goes out (S3: at least 5 MiB for every part but the last). */
  partSize: number;
  contentType: string;
  /** Sees every chunk of the body, in order (a digest, a byte count). */
  onChunk?: (chunk: Buffer) => void;
}

interface MultipartUpload {
  uploadId: string;
  parts: { part: number; etag: string }[];
}

/**
 * Streams `body` to `bucket/key`, holding at most one part in memory: a body that ends within one
 * part goes out as a single PUT, a longer one as a multipart upload of `partSize` parts.
 *
 * Not `Client.putObject` for streams: given a stream of unknown length it always starts a multipart
 * upload, first calling ListMultipartUploads to resume an older one (which s3rver lacks), and sizes
 * parts for a 5 TiB object (over 500 MiB held in memory per part). A failed multipart upload is
 * aborted (best effort: s3rver refuses the abort, so its parts stay in its directory).
 */
export async function uploadInParts(client: Client, bucket: string, key: string, body: ArtifactBody, options: PartUploadOptions): Promise<void> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let upload: MultipartUpload | undefined;
  const sendPart = async (payload: Buffer): Promise<void> => {
    upload ??= { uploadId: await client.initiateNewMultipartUpload(bucket, key, { 'Content-Type': options.contentType }), parts: [] };
    const part = upload.parts.length + 1;
    const { etag } = await client.uploadPart(
      { bucketName: bucket, objectName: key, uploadID: upload.uploadId, partNumber: part, headers: { 'Content-MD5': createHash('md5').update(payload).digest('base64') } },
      payload,
    );
    upload.parts.push({ part, etag });
  };
  try {
    for await (const chunk of bodyChunks(body)) {
      options.onChunk?.(chunk);
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= options.partSize) {
        await sendPart(Buffer.concat(pending, pendingBytes));
        pending = [];
        pendingBytes = 0;
      }
    }
    if (upload === undefined) {
      await client.putObject(bucket, key, Buffer.concat(pending, pendingBytes), pendingBytes, { 'Content-Type': options.contentType });
      return;
    }
    if (pendingBytes > 0) await sendPart(Buffer.concat(pending, pendingBytes));
    const done: MultipartUpload = upload;
    await client.completeMultipartUpload(bucket, key, done.uploadId, done.parts);
  } catch (error) {
    const started: MultipartUpload | undefined = upload;
    if (started !== undefined) await client.abortMultipartUpload(bucket, key, started.uploadId).catch(() => undefined);
    throw error;
  }
}
