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

/** How long a confirmed order waits for others to share its commit. */
const GATHER_MS = 100;
/** After a failed batch, the next try. */
const RETRY_MS = 1000;
/** The most orders one call carries (inventory's limit). */
const BATCH = 500;
/** Beyond this many waiting (inventory unreachable for long), the oldest are let go. */
const MAX_WAITING = 100_000;

export class HoldCommits {
	private readonly waiting = new Set<string>();
	private timer: NodeJS.Timeout | null = null;
	private flushing: Promise<void> | null = null;
	private stopped = false;

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
		this.schedule(GATHER_MS);
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
			const orderIds = [...this.waiting].slice(0, BATCH);
			for (const id of orderIds) this.waiting.delete(id);
			try {
				await this.send(orderIds);
			} catch (err) {
				for (const id of orderIds) this.waiting.add(id);
				if (this.stopped) {
					this.logger.info(`Stock commits: ${orderIds.length} left held at stop (${(err as Error).message})`);
					this.waiting.clear();
				} else {
					this.logger.warn(`Stock commits: ${orderIds.length} not sent (${(err as Error).message}); trying again`);
					this.schedule(RETRY_MS);
				}
				return;
			}
		}
	}
}
