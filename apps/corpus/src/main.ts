import { main, PlatformModule } from '@xyp/bootstrap';
import { SERVICE_ENVS } from '@xyp/config';
import { CorpusBucketWorker } from './corpus-bucket.worker';
import { CorpusCompareWorker } from './corpus-compare.worker';
import { CorpusInspectWorker } from './corpus-inspect.worker';
import { CorpusMixWorker } from './corpus-mix.worker';

/** The corpus service: workers of the corpus stages. */
main({
  name: 'corpus',
  env: SERVICE_ENVS.corpus,
  module: (env) =>
    PlatformModule.forRoot(env, {
      workers: ['corpus.inspect', 'corpus.bucket', 'corpus.mix', 'corpus.compare'],
      providers: [CorpusInspectWorker, CorpusBucketWorker, CorpusMixWorker, CorpusCompareWorker],
    }),
  httpPort: (env) => env.XYP_CORPUS_HTTP_PORT,
});
