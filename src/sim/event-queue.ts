/** One scheduled event: a description for the trace and the work it does. */
export interface SimEvent {
  readonly time: number;
  readonly run: () => void;
}

interface QueuedEvent extends SimEvent {
  /** Random key that orders events of the same time, drawn from the run's seed. */
  readonly order: number;
  /** Insertion number, which breaks the rare tie of equal `order`. */
  readonly sequence: number;
}

function before(a: QueuedEvent, b: QueuedEvent): boolean {
  if (a.time !== b.time) return a.time < b.time;
  if (a.order !== b.order) return a.order < b.order;
  return a.sequence < b.sequence;
}

/** A binary min-heap of events by time, then by a seeded random order. */
export class EventQueue {
  private readonly heap: QueuedEvent[] = [];
  private sequence = 0;

  constructor(private readonly nextOrder: () => number) {}

  get size(): number {
    return this.heap.length;
  }

  schedule(time: number, run: () => void): void {
    const event: QueuedEvent = { time, run, order: this.nextOrder(), sequence: this.sequence };
    this.sequence += 1;
    this.heap.push(event);
    this.siftUp(this.heap.length - 1);
  }

  /** Returns the time of the earliest event, or undefined when empty. */
  peekTime(): number | undefined {
    return this.heap[0]?.time;
  }

  pop(): SimEvent | undefined {
    const top = this.heap[0];
    const last = this.heap.pop();
    if (top === undefined || last === undefined) return undefined;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private siftUp(start: number): void {
    let index = start;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!before(this.at(index), this.at(parent))) return;
      this.swap(index, parent);
      index = parent;
    }
  }

  private siftDown(start: number): void {
    let index = start;
    for (;;) {
      const left = 2 * index + 1;
      const right = left + 1;
      let smallest = index;
      if (left < this.heap.length && before(this.at(left), this.at(smallest))) smallest = left;
      if (right < this.heap.length && before(this.at(right), this.at(smallest))) smallest = right;
      if (smallest === index) return;
      this.swap(index, smallest);
      index = smallest;
    }
  }

  private at(index: number): QueuedEvent {
    return this.heap[index] as QueuedEvent;
  }

  private swap(a: number, b: number): void {
    const held = this.at(a);
    this.heap[a] = this.at(b);
    this.heap[b] = held;
  }
}
