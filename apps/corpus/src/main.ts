import { main } from '@xyp/bootstrap';
import { CorpusEnv, CorpusModule } from './corpus.module';

main({ name: 'corpus', env: CorpusEnv, module: (env) => CorpusModule.forRoot(env), httpPort: (env) => env.XYP_CORPUS_HTTP_PORT });
