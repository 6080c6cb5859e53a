/**
 * Nothing is left pending for good: the settle loop, every `settleIntervalMs` and at start.
 *
 * - Card retries: an order answered 202 keeps its card in this process's memory (never stored) and
 *   its capture is retried with back-off (up to 5 s apart) for `cardRetryLimitMs`, then given up.
 * - Orphans: an unfinished order that no live process is working on (its node died, or this node
 *   restarted and lost the card) is settled without the card: payments' final word, then confirmed (its hold
 *   committed) or cancelled (its stock released). A node "attends" the orders it works on, so that other orders nodes leave them alone.
 */
import type { ServiceSchema } from "moleculer";
import { isSettled } from "../../lib/order-rules";
import type { StoredOrder } from "./orders.store";
import type { OrdersMethods, OrdersSettings, OrdersThis, OrdersVars, SettleMethods } from "./orders.types";

interface CardRetry {
	card: string;
	attempts: number;
	nextAttemptAt: number;
	firstAttemptAt: number;
}

/** How many unfinished orders one pass looks at. */
const PASS_SIZE = 200;
/** After start, other nodes get this long to be discovered before their orders count as orphans. */
const DISCOVERY_GRACE_MS = 5000;

interface SettleVars {
	cardRetries: Map<string, CardRetry>;
	settleTimer: NodeJS.Timeout | null;
	settling: boolean;
	/** The service is stopping: no new pass, and a pass under way ends after the order it is on. */
	settleStopped: boolean;
	startedAt: number;
}

type SettleThis = OrdersThis & SettleVars;

/** True when no live process is working on this order. */
function isOrphan(service: SettleThis, order: StoredOrder): boolean {
	if (Date.now() - Date.parse(order.attendedAt) > service.settings.orphanAfterMs) return true;
	// Our own order without its card in memory: left by this node's previous life.
	if (order.ownerNode === service.broker.nodeID) return true;
	if (Date.now() - service.startedAt < DISCOVERY_GRACE_MS) return false;
	const owner = service.broker.registry.nodes.get(order.ownerNode);
	return !owner || !owner.available;
}

async function retryWithCard(service: SettleThis, orderId: string, retry: CardRetry): Promise<void> {
	const order = await service.store.find(orderId);
	if (!order || order.status !== "pending") {
		service.cardRetries.delete(orderId);
		return;
	}
	const ctx = service.broker.ContextFactory.create(service.broker);
	if (order.cancelReason) {
		// Its owner cancelled it: finish that instead of charging.
		service.cardRetries.delete(orderId);
		await service.compensate(ctx, order, order.cancelReason);
		return;
	}
	if (Date.now() - retry.firstAttemptAt > service.settings.cardRetryLimitMs) {
		service.logger.warn(`Order ${orderId}: payment still unknown after ${service.settings.cardRetryLimitMs} ms; giving up`);
		service.cardRetries.delete(orderId);
		await service.resolveWithoutCard(ctx, order);
		return;
	}
	const outcome = await service.advance(ctx, order, retry.card);
	if (outcome.order.status === "pending") {
		retry.attempts += 1;
		retry.nextAttemptAt = Date.now() + Math.min(5000, 250 * 2 ** retry.attempts);
		// Touch the order: other orders nodes see that its card holder is alive and leave it alone.
		await service.store.attend(orderId, service.broker.nodeID);
	} else {
		service.cardRetries.delete(orderId);
	}
}

const schema: ServiceSchema<OrdersSettings, OrdersMethods, OrdersVars & SettleVars> = {
	name: "order-settle",
	methods: {
		keepCardForRetries(orderId: string, card: string): void {
			const now = Date.now();
			if (!this.cardRetries.has(orderId)) this.cardRetries.set(orderId, { card, attempts: 0, nextAttemptAt: now + 500, firstAttemptAt: now });
		},

		forgetCard(orderId: string): void {
			this.cardRetries.delete(orderId);
		},

		/** One pass: card retries that are due, then orphaned unfinished orders. */
		async settleUnfinished(): Promise<void> {
			if (this.settling || this.settleStopped) return;
			this.settling = true;
			try {
				const now = Date.now();
				for (const [orderId, retry] of this.cardRetries) {
					if (this.settleStopped) return;
					if (retry.nextAttemptAt <= now && !this.inFlight.has(orderId)) await retryWithCard(this, orderId, retry);
				}
				if (this.settleStopped) return;
				for (const order of await this.store.unfinished(PASS_SIZE)) {
					if (this.settleStopped) return;
					if (this.inFlight.has(order.id) || this.cardRetries.has(order.id) || !isOrphan(this, order)) continue;
					const ctx = this.broker.ContextFactory.create(this.broker);
					const outcome = order.cancelReason ? await this.compensate(ctx, order, order.cancelReason) : await this.resolveWithoutCard(ctx, order);
					// Not settled yet: touch it, so it waits its turn behind the others.
					if (!isSettled(outcome.order)) await this.store.attend(order.id, this.broker.nodeID);
				}
			} catch (err) {
				this.logger.error("Settle loop pass failed:", err);
			} finally {
				this.settling = false;
			}
		}
	} satisfies SettleMethods & ThisType<SettleThis>,

	created() {
		this.cardRetries = new Map();
		this.settleTimer = null;
		this.settling = false;
		this.settleStopped = false;
	},

	async started() {
		this.startedAt = Date.now();
		// At once, for what a previous life of this node left unfinished, then every interval.
		void this.settleUnfinished();
		this.settleTimer = setInterval(() => void this.settleUnfinished(), this.settings.settleIntervalMs);
		this.settleTimer.unref();
	},

	/** Before the database closes (mixins/db.mixin.ts): what is left unfinished is the next start's. */
	async stopped() {
		this.settleStopped = true;
		if (this.settleTimer) clearInterval(this.settleTimer);
		while (this.settling) await new Promise(resolve => setTimeout(resolve, 20));
	}
};

// A mixin's `this` is the service that mixes it in; Moleculer's types cannot say so.
export const SettleMixin = schema as unknown as Partial<ServiceSchema>;
