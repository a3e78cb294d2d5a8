import { describe, expect, it } from 'vitest';
import { createArtifactStore } from './create-artifact-store';
import { LocalDirectoryStore } from './local-directory-store';
import { S3ArtifactStore } from './s3-artifact-store';

describe('createArtifactStore', () => {
  it('builds the store the options name', () => {
    expect(createArtifactStore({ kind: 'local', root: '/tmp/xyp-store' })).toBeInstanceOf(LocalDirectoryStore);
    const s3 = createArtifactStore({
      kind: 's3',
      endPoint: 'minio.svc',
      port: 9000,
      useSSL: false,
      accessKey: 'a',
      secretKey: 'b',
      bucket: 'xuanyuan',
      region: 'us-east-1',
    });
    expect(s3).toBeInstanceOf(S3ArtifactStore);
    expect(s3.describe()).toBe('s3://xuanyuan@minio.svc:9000');
  });

  it('names the invalid option', () => {
    expect(() => createArtifactStore({ kind: 'local', root: '' })).toThrow('invalid artifact store options: root:');
    expect(() => createArtifactStore({ kind: 'gcs' } as never)).toThrow('invalid artifact store options: kind:');
    expect(() => createArtifactStore({ kind: 'local', root: '/x', bucket: 'y' } as never)).toThrow('bucket');
  });
});
