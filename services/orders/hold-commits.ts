/**
 * Confirmed orders whose stock holds are still to be marked sold: gathered for a short while and
 * sent to inventory together (`inventory.commitMany`: one call and one statement for many orders),
 * instead of one `inventory.commit` per order on the way to its answer.
 *
 * Bookkeeping only (order-saga.mixin.ts, `confirm`): a confirmed order's units left the stock at its
 * reservation, and nothing releases them unless a cancellation is claimed. So a batch that fails is
 * tried again a little later, and one lost with its process leaves those holds `held`, which every
 * invariant allows (and a cancel releases all the same).
 */
import type { Logger } from "moleculer";
import { COMMIT_MANY_MAX } from "../../lib/params";

/** How long a confirmed order waits for others to share its commit. */
const GATHER_MS = 100;
/** After a failed batch, the next try. */
const RETRY_MS = 1000;
/** Beyond this many waiting (inventory unreachable for long), the oldest are let go. */
const MAX_WAITING = 100_000;

export class HoldCommits {
	private readonly waiting = new Set<string>();
	private timer: NodeJS.Timeout | null = null;
	private flushing: Promise<void> | null = null;
	private stopped = false;
	/** Until when a failed send holds the next one back (0: none failed since the last success). */
	private retryAt = 0;

	constructor(
		private readonly send: (orderIds: string[]) => Promise<unknown>,
		private readonly logger: Logger
	) {}

	add(orderId: string): void {
		if (this.waiting.size >= MAX_WAITING) {
			const oldest = this.waiting.values().next().value as string;
			this.waiting.delete(oldest);
			this.logger.warn(`Stock commits: more than ${MAX_WAITING} waiting; order ${oldest}'s hold stays held`);
		}
		this.waiting.add(orderId);
		// New orders do not bring a retry forward: while inventory fails, one try a RETRY_MS.
		this.schedule(Math.max(GATHER_MS, this.retryAt - Date.now()));
	}

	/** Sends what is waiting now (and waits for a send under way). */
	flush(): Promise<void> {
		this.flushing ??= this.sendAll().finally(() => (this.flushing = null));
		return this.flushing;
	}

	/** A last send, then no more. */
	async stop(): Promise<void> {
		this.stopped = true;
		if (this.timer) clearTimeout(this.timer);
		this.timer = null;
		await this.flush();
	}

	private schedule(delayMs: number): void {
		if (this.timer || this.stopped) return;
		this.timer = setTimeout(() => {
			this.timer = null;
			void this.flush();
		}, delayMs);
		this.timer.unref();
	}

	private async sendAll(): Promise<void> {
		while (this.waiting.size > 0) {
			const orderIds = [...this.waiting].slice(0, COMMIT_MANY_MAX);
			for (const id of orderIds) this.waiting.delete(id);
			try {
				await this.send(orderIds);
				this.retryAt = 0;
			} catch (err) {
				for (const id of orderIds) this.waiting.add(id);
				if (this.stopped) {
					this.logger.info(`Stock commits: ${orderIds.length} left held at stop (${(err as Error).message})`);
					this.waiting.clear();
				} else {
					this.logger.warn(`Stock commits: ${orderIds.length} not sent (${(err as Error).message}); trying again`);
					// A gather timer set by an add() during the send would retry at once: this one replaces it.
					if (this.timer) clearTimeout(this.timer);
					this.timer = null;
					this.retryAt = Date.now() + RETRY_MS;
					this.schedule(RETRY_MS);
				}
				return;
			}
		}
	}
}
