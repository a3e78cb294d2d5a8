import type { BoundInput, BoundInputs } from '@xyp/contracts';

/** The `BoundInputs` a stage builder reads, over store keys per slot; `owner` names the instance in errors. */
export function boundInputs(keys: Readonly<Record<string, readonly BoundInput[]>>, owner: string): BoundInputs {
  return {
    one: (slot) => {
      const bound = keys[slot];
      if (!bound || bound.length !== 1) throw new Error(`${owner}: input slot ${slot} is ${bound ? `bound ${bound.length} times` : 'not bound'}`);
      return bound[0].key;
    },
    maybe: (slot) => keys[slot]?.[0]?.key,
    all: (slot) => keys[slot] ?? [],
  };
}
