/** Injection token: the directory where corpus workers keep local copies of input corpora. */
export const CORPUS_CACHE_DIR = Symbol('CORPUS_CACHE_DIR');
