/** A member's `GET /status` body. */
export interface MemberStatus {
  readonly id: string;
  readonly role: string;
  readonly term: number;
  readonly leaderId: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastLogIndex: number;
  readonly snapshotIndex: number;
  readonly messageCount: number;
  readonly digest: string;
  readonly peers: readonly unknown[];
}

/** The outcome of asking one member for its status. */
export type MemberProbe =
  | { readonly address: string; readonly status: MemberStatus }
  | { readonly address: string; readonly error: string };

/**
 * Comparison of a member with the member that has applied the most entries.
 * `yes`: same applied index, message count and digest. `behind`: a lower
 * applied index. `differs`: same applied index, another count or digest.
 * `down`: the status request failed. `sameId`: another address returned
 * the same member id, so the addresses belong to different clusters or name
 * one member twice, and a comparison of them means nothing. `listedTwice`:
 * the same address is given twice.
 */
export type SyncState =
  | { readonly kind: 'yes' }
  | { readonly kind: 'behind'; readonly entries: number }
  | { readonly kind: 'differs' }
  | { readonly kind: 'down' }
  | { readonly kind: 'sameId'; readonly address: string }
  | { readonly kind: 'listedTwice' };

/** Digest characters shown in the table, as many as `replog verify` shows. */
const digestPrefixLength = 16;

/**
 * Compare every member with the highest applied index among the reachable
 * ones, leaving out members whose id another address also returned. When
 * members at that index disagree on count or digest, none of them
 * can be trusted as the reference, so all of them are `differs`.
 */
export function assessSync(probes: readonly MemberProbe[]): SyncState[] {
  const sameIdAddresses = probes.map((probe) => {
    if (!('status' in probe)) return undefined;
    return probes.find((other) => other !== probe && 'status' in other && other.status.id === probe.status.id)?.address;
  });
  // A member whose id another address also returned cannot be the reference.
  const statuses = probes.flatMap((probe, position) =>
    'status' in probe && sameIdAddresses[position] === undefined ? [probe.status] : [],
  );
  const appliedMax = Math.max(...statuses.map((status) => status.appliedIndex));
  const membersAtMax = statuses.filter((status) => status.appliedIndex === appliedMax);
  const agree = membersAtMax.every(
    (status) => status.messageCount === membersAtMax[0]?.messageCount && status.digest === membersAtMax[0]?.digest,
  );
  return probes.map((probe, position): SyncState => {
    if (!('status' in probe)) return { kind: 'down' };
    const address = sameIdAddresses[position];
    if (address === probe.address) return { kind: 'listedTwice' };
    if (address !== undefined) return { kind: 'sameId', address };
    const behind = appliedMax - probe.status.appliedIndex;
    if (behind > 0) return { kind: 'behind', entries: behind };
    return agree ? { kind: 'yes' } : { kind: 'differs' };
  });
}

/** True when every member returned its status and is in sync with the others. */
export function allInSync(states: readonly SyncState[]): boolean {
  return states.length > 0 && states.every((state) => state.kind === 'yes');
}

export function formatSyncState(state: SyncState): string {
  switch (state.kind) {
    case 'yes':
      return 'yes';
    case 'behind':
      return `behind ${state.entries}`;
    case 'differs':
      return 'DIFFERS';
    case 'down':
      return 'down';
    case 'sameId':
      return `SAME ID as ${state.address}`;
    case 'listedTwice':
      return 'LISTED TWICE';
  }
}

const tableHeader = [
  'address', 'id', 'role', 'term', 'commit', 'applied', 'lastLog', 'snapshot', 'messages', 'digest', 'in sync',
] as const;

/** Columns aligned to the right (the numbers). */
const numericColumns = new Set(['term', 'commit', 'applied', 'lastLog', 'snapshot', 'messages']);

/** Render one table row per member, then one line per unreachable member. */
export function formatStatusTable(probes: readonly MemberProbe[], states: readonly SyncState[]): string {
  const rows = probes.map((probe, position) => tableRow(probe, states[position] ?? { kind: 'down' }));
  const widths = tableHeader.map((name, column) =>
    Math.max(name.length, ...rows.map((row) => row[column]?.length ?? 0)),
  );
  const render = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => {
        const width = widths[column] ?? 0;
        return numericColumns.has(tableHeader[column] ?? '') ? cell.padStart(width) : cell.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  const errors = probes.flatMap((probe) => ('error' in probe ? [`${probe.address}: ${probe.error}`] : []));
  return [render(tableHeader), ...rows.map(render), ...errors].join('\n') + '\n';
}

function tableRow(probe: MemberProbe, state: SyncState): string[] {
  if (!('status' in probe)) {
    return [probe.address, '-', '-', '-', '-', '-', '-', '-', '-', '-', formatSyncState(state)];
  }
  const status = probe.status;
  return [
    probe.address,
    status.id,
    status.role,
    String(status.term),
    String(status.commitIndex),
    String(status.appliedIndex),
    String(status.lastLogIndex),
    String(status.snapshotIndex),
    String(status.messageCount),
    status.digest.slice(0, digestPrefixLength),
    formatSyncState(state),
  ];
}

const numberFields = [
  'term', 'commitIndex', 'appliedIndex', 'lastLogIndex', 'snapshotIndex', 'messageCount',
] as const;

/**
 * Check that a parsed `/status` body has the documented fields and types;
 * returns it typed, or throws an Error naming the first bad field.
 */
export function parseMemberStatus(body: unknown): MemberStatus {
  if (typeof body !== 'object' || body === null) throw new Error('status body is not a JSON object');
  const record = body as Record<string, unknown>;
  for (const field of ['id', 'role', 'digest'] as const) {
    if (typeof record[field] !== 'string') throw new Error(`status field "${field}" is missing or not a string`);
  }
  for (const field of numberFields) {
    if (typeof record[field] !== 'number') throw new Error(`status field "${field}" is missing or not a number`);
  }
  if (record['leaderId'] !== null && typeof record['leaderId'] !== 'string') {
    throw new Error('status field "leaderId" is neither a string nor null');
  }
  if (!Array.isArray(record['peers'])) throw new Error('status field "peers" is missing or not an array');
  return record as unknown as MemberStatus;
}
