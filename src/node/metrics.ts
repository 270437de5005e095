import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one member; each member has its own registry. */
export class MemberMetrics {
  readonly registry = new Registry();

  constructor() {
    // Process and Node.js series (process_resident_memory_bytes,
    // nodejs_heap_size_used_bytes, nodejs_eventloop_lag_seconds, GC time), so
    // memory and event loop stalls can be watched like etcd's go_* series.
    collectDefaultMetrics({ register: this.registry });
    // Series of the labels a member can report start at 0, so a dashboard or a
    // rate() has them before the first event.
    for (const code of ['UNAVAILABLE', 'RESOURCE_EXHAUSTED']) this.proposalsFailed.labels({ code }).inc(0);
    for (const result of ['ok', 'failed']) {
      this.snapshotsSent.labels({ result }).inc(0);
      this.snapshotsReceived.labels({ result }).inc(0);
    }
  }

  readonly role = new Gauge({
    name: 'replog_role',
    help: 'Current role: 1 for the label that applies, 0 for the others',
    labelNames: ['role'] as const,
    registers: [this.registry],
  });
  readonly term = this.gauge('replog_term', 'Current Raft term');
  readonly commitIndex = this.gauge('replog_commit_index', 'Highest log index known to be committed');
  readonly appliedIndex = this.gauge('replog_applied_index', 'Highest log index applied to the message store');
  readonly lastLogIndex = this.gauge('replog_last_log_index', 'Index of the last entry in the log');
  readonly snapshotIndex = this.gauge('replog_snapshot_index', 'Index of the newest snapshot, 0 when none');
  readonly messageCount = this.gauge('replog_messages', 'Messages stored in the message store');
  readonly pendingAppends = this.gauge('replog_pending_appends', 'Appends accepted and not yet replied to');
  readonly pendingBytes = this.gauge('replog_pending_bytes', 'UTF-8 bytes of the valuesets of the appends accepted and not yet replied to');

  readonly proposalsCommitted = this.counter('replog_proposals_committed_total', 'Appends this member proposed that committed and applied');
  readonly proposalsFailed = this.counter('replog_proposals_failed_total', 'Appends that failed, by gRPC status code name', ['code']);
  readonly duplicates = this.counter('replog_duplicates_total', 'Appends replied to as duplicates of a stored valueset');
  readonly leaderChanges = this.counter('replog_leader_changes_total', 'Times this member saw the leader change');
  readonly snapshotsTaken = this.counter('replog_snapshots_total', 'Snapshots this member took: the state database made durable, then the log compacted');
  readonly snapshotsSent = this.counter('replog_install_snapshot_sent_total', 'Snapshots sent to followers, by result', ['result']);
  readonly snapshotsReceived = this.counter('replog_install_snapshot_received_total', 'Snapshots received from the leader, by result', ['result']);
  readonly snapshotBytes = this.gauge('replog_snapshot_bytes', 'Size of the newest snapshot file in bytes');

  readonly persistSeconds = new Histogram({
    name: 'replog_log_persist_seconds',
    help: 'Time to write and fsync one batch of log entries and hard state',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers: [this.registry],
  });
  readonly applySeconds = new Histogram({
    name: 'replog_apply_seconds',
    help: 'Time to apply one batch of committed entries to SQLite',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers: [this.registry],
  });
  readonly appendSeconds = new Histogram({
    name: 'replog_append_latency_seconds',
    help: 'Time from accepting an append on the leader to applying it',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
    registers: [this.registry],
  });
  readonly proposalBatchAppends = new Histogram({
    name: 'replog_proposal_batch_appends',
    help: 'Appends the leader proposed together, which share one log write, fsync and replication round',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096],
    registers: [this.registry],
  });
  readonly snapshotSeconds = new Histogram({
    name: 'replog_snapshot_seconds',
    help: 'Time to take one snapshot: fsync of the state database, then log compaction',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  private readonly peerMessagesReceived = this.counter(
    'replog_peer_messages_received_total',
    'Raft messages received from other members, by type',
    ['type'],
  );
  private readonly peerMessagesByType = new Map<string, { inc(): void }>();

  /** Counts one Raft message received from a peer. The labelled child is looked up once per type. */
  peerMessageReceived(type: string): void {
    let child = this.peerMessagesByType.get(type);
    if (child === undefined) {
      child = this.peerMessagesReceived.labels({ type });
      this.peerMessagesByType.set(type, child);
    }
    child.inc();
  }

  /** Reports the bytes that `budget` has reserved as replog_receive_bytes_reserved, read at each scrape. */
  watchReceiveBudget(budget: { readonly reservedBytes: number }): void {
    new Gauge({
      name: 'replog_receive_bytes_reserved',
      help: 'Bytes of partly received Append and AppendStream request messages, counted against --receive-bytes-max',
      registers: [this.registry],
      collect() {
        this.set(budget.reservedBytes);
      },
    });
  }

  private gauge(name: string, help: string): Gauge {
    return new Gauge({ name, help, registers: [this.registry] });
  }

  private counter<T extends string>(name: string, help: string, labelNames: readonly T[] = []): Counter<T> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }
}
