/**
 * Splits items, in order, into groups whose sizes add up to at most
 * `sizeMax`. An item larger than `sizeMax` gets a group of its own.
 */
export function splitBySize<T>(items: readonly T[], sizeOf: (item: T) => number, sizeMax: number): T[][] {
  const groups: T[][] = [];
  let group: T[] = [];
  let groupSize = 0;
  for (const item of items) {
    const size = sizeOf(item);
    if (group.length > 0 && groupSize + size > sizeMax) {
      groups.push(group);
      group = [];
      groupSize = 0;
    }
    group.push(item);
    groupSize += size;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}
