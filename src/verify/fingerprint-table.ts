// Finds valuesets that one member stores at two indexes without keeping the
// valuesets: an open-addressing hash table of 64-bit fingerprints in typed
// arrays, about 36 bytes per distinct (valueset, index) at most half full.
// A fingerprint match is only a candidate: the caller confirms it by reading
// the earlier message again, so a fingerprint collision is never reported.

/** Most members one table can tell apart (one bit each in a 32-bit mask). */
export const fingerprintMembersMax = 32;

/** A 64-bit fingerprint of a string as two 32-bit halves (FNV-1a and a second, seeded mix). */
export function fingerprint(text: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x9e3779b9 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  a ^= a >>> 16;
  b = Math.imul(b ^ (b >>> 13), 0xc2b2ae35);
  return [a >>> 0, (b ^ (b >>> 16)) >>> 0];
}

/** An earlier occurrence of the same fingerprint held by some of the same members. */
export interface EarlierOccurrence {
  readonly index: number;
  /** Bit k set: member k held the fingerprint at `index` and holds it again now. */
  readonly members: number;
}

export class FingerprintTable {
  private capacity: number;
  private size = 0;
  private hi: Uint32Array;
  private lo: Uint32Array;
  /** Log index of the entry; 0 marks an empty slot (stored messages start at 1). */
  private index: Float64Array;
  private members: Uint32Array;

  constructor(initialCapacity = 1 << 14) {
    this.capacity = 1 << Math.ceil(Math.log2(Math.max(16, initialCapacity)));
    this.hi = new Uint32Array(this.capacity);
    this.lo = new Uint32Array(this.capacity);
    this.index = new Float64Array(this.capacity);
    this.members = new Uint32Array(this.capacity);
  }

  /**
   * Records that the members in `memberMask` store a valueset with fingerprint
   * (`hi`, `lo`) at `index`. Returns the earlier indexes at which any of these
   * members stored the same fingerprint, or null when there are none.
   */
  visit(hi: number, lo: number, index: number, memberMask: number): EarlierOccurrence[] | null {
    if (!(index >= 1)) throw new RangeError(`index must be >= 1, got ${index}`);
    const mask = this.capacity - 1;
    let slot = (lo ^ Math.imul(hi, 0x27d4eb2d)) & mask;
    let earlier: EarlierOccurrence[] | null = null;
    let sameIndexSlot = -1;
    while (this.index[slot] !== 0) {
      if (this.hi[slot] === hi && this.lo[slot] === lo) {
        const slotIndex = this.index[slot]!;
        if (slotIndex === index) {
          sameIndexSlot = slot;
        } else {
          const common = this.members[slot]! & memberMask;
          if (common !== 0) (earlier ??= []).push({ index: slotIndex, members: common });
        }
      }
      slot = (slot + 1) & mask;
    }
    if (sameIndexSlot >= 0) {
      this.members[sameIndexSlot]! |= memberMask;
    } else {
      this.hi[slot] = hi;
      this.lo[slot] = lo;
      this.index[slot] = index;
      this.members[slot] = memberMask;
      this.size += 1;
      if (this.size * 2 > this.capacity) this.grow();
    }
    return earlier;
  }

  private grow(): void {
    const { hi, lo, index, members } = this;
    this.capacity *= 2;
    this.hi = new Uint32Array(this.capacity);
    this.lo = new Uint32Array(this.capacity);
    this.index = new Float64Array(this.capacity);
    this.members = new Uint32Array(this.capacity);
    const mask = this.capacity - 1;
    for (let old = 0; old < index.length; old++) {
      if (index[old] === 0) continue;
      let slot = (lo[old]! ^ Math.imul(hi[old]!, 0x27d4eb2d)) & mask;
      while (this.index[slot] !== 0) slot = (slot + 1) & mask;
      this.hi[slot] = hi[old]!;
      this.lo[slot] = lo[old]!;
      this.index[slot] = index[old]!;
      this.members[slot] = members[old]!;
    }
  }
}
