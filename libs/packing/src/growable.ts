type NumericArray = Int32Array | Float64Array | Uint16Array;

/** A typed array that grows by doubling; `view()` is the filled prefix (valid until the next push). */
export class Growable<T extends NumericArray> {
  private data: T;
  length = 0;

  constructor(private readonly make: (n: number) => T) {
    this.data = make(1024);
  }

  push(value: number): void {
    if (this.length === this.data.length) {
      const bigger = this.make(this.data.length * 2);
      for (let i = 0; i < this.length; i++) bigger[i] = this.data[i];
      this.data = bigger;
    }
    this.data[this.length++] = value;
  }

  at(index: number): number {
    return this.data[index];
  }

  view(): T {
    return this.data.subarray(0, this.length) as T;
  }
}
