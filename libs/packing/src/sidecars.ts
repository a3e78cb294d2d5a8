/** Decoders of the two sidecar files next to each Megatron dataset (layouts in `jobs.ts`). */

function copyAligned(bytes: Uint8Array, unit: number, name: string): ArrayBuffer {
  if (bytes.byteLength % unit !== 0) throw new Error(`${name}: ${bytes.byteLength} bytes is not a multiple of ${unit}`);
  const out = new Uint8Array(bytes.byteLength);
  out.set(bytes);
  return out.buffer;
}

/** Category index of every Megatron document (packed sequence). */
export function decodeCategorySidecar(bytes: Uint8Array): Uint16Array {
  return new Uint16Array(copyAligned(bytes, 2, 'category sidecar'));
}

export interface PieceOrigin {
  /** 1-based input line of the document. */
  line: number;
  /** Token offset of the piece within the document. */
  start: number;
}

/** Origin of every Megatron sequence (document piece). */
export function decodePieceSidecar(bytes: Uint8Array): PieceOrigin[] {
  const values = new BigInt64Array(copyAligned(bytes, 16, 'piece sidecar'));
  const origins: PieceOrigin[] = new Array(values.length / 2);
  for (let i = 0; i < origins.length; i++) origins[i] = { line: Number(values[2 * i]), start: Number(values[2 * i + 1]) };
  return origins;
}
