/**
 * The last events of a simulated world, kept in a bounded ring so a failing seed can show what
 * led up to the violation. Recording must be cheap (it happens for every message), so an event
 * stores a thunk or a string and is only formatted when the log is dumped.
 */

/** Events kept for the failure report. */
export const EVENT_LOG_CAPACITY = 400;

export interface SimEvent {
  tick: number;
  subject: string;
  describe: string | (() => string);
}

export class EventLog {
  private readonly events: (SimEvent | undefined)[];
  private next = 0;
  private count = 0;

  constructor(private readonly capacity: number = EVENT_LOG_CAPACITY) {
    this.events = new Array<SimEvent | undefined>(capacity);
  }

  record(tick: number, subject: string, describe: string | (() => string)): void {
    this.events[this.next] = { tick, subject, describe };
    this.next = (this.next + 1) % this.capacity;
    this.count = Math.min(this.count + 1, this.capacity);
  }

  /** The most recent `limit` events, oldest first, one per line. */
  dump(limit: number = this.capacity): string {
    const shown = Math.min(limit, this.count);
    const lines: string[] = [];
    for (let offset = shown; offset > 0; offset--) {
      const event = this.events[(this.next - offset + this.capacity) % this.capacity];
      if (event === undefined) continue;
      const text = typeof event.describe === 'string' ? event.describe : event.describe();
      lines.push(`  t=${event.tick} ${event.subject}: ${text}`);
    }
    return lines.join('\n');
  }
}
