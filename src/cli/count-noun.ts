/** Returns `count` and the noun, singular when `count` is 1: "1 member", "3 members". */
export function countNoun(count: number, singular: string, plural = `${singular}s`): string {
  return `${count} ${count === 1 ? singular : plural}`;
}
