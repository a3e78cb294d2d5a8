import { CATEGORY_MIXING, DEFAULT_BUCKET_LENGTHS, PackConfig, type CategoryMixing, type PackConfigInput } from '@xyp/contracts';

export { CATEGORY_MIXING, DEFAULT_BUCKET_LENGTHS, PackConfig, type CategoryMixing, type PackConfigInput };

/** Parses a config, turning zod issues into one readable line. */
export function parsePackConfig(input: PackConfigInput): PackConfig {
  const parsed = PackConfig.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`invalid packing config: ${issue.path.join('.') || 'config'} ${issue.message}`);
  }
  return parsed.data;
}

/** Megatron token dtype for a vocabulary: uint16 below 65,500 entries, else int32 (`DType.optimal_dtype`). */
export type TokenDtype = 'uint16' | 'int32';
export function tokenDtypeFor(vocabSize: number): TokenDtype {
  return vocabSize < 65500 ? 'uint16' : 'int32';
}
