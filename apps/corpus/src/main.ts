import { main, PlatformModule } from '@xyp/bootstrap';
import { SERVICE_ENVS } from '@xyp/config';
import { CorpusInspectWorker } from './corpus-inspect.worker';

/** The corpus service: workers of the corpus stages. */
main({
  name: 'corpus',
  env: SERVICE_ENVS.corpus,
  module: (env) => PlatformModule.forRoot(env, { workers: ['corpus.inspect'], providers: [CorpusInspectWorker] }),
  httpPort: (env) => env.XYP_CORPUS_HTTP_PORT,
});
