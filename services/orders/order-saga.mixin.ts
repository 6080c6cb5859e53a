/**
 * The order saga, top-down: reserve the stock → capture the payment → confirmed (the hold is marked
 * sold after the answer, in a batch: hold-commits.ts);
 * a shortage or a decline compensates (refund or void, release) → cancelled.
 *
 * Every step is idempotent per order id in the service that owns it (inventory's holds, payments'
 * one payment per order and its voids), so a step that fails or times out is simply tried again
 * later: a method answers where the order stands, and an unfinished order is the settle loop's.
 */
import type { Context, Errors, ServiceSchema } from "moleculer";
import { ErrorType, notFound, outOfStock, paymentDeclined, type ShortageData } from "../../lib/errors";
import { answerStatus, orderTotal, priceLines, toPublicOrder } from "../../lib/order-rules";
import type { OrderRefParams } from "../../lib/params";
import type { CancelReason, OrderItem, Payment, ProductPrice } from "../../lib/types";
import type { GetManyParams, HoldAnswer, ReserveParams } from "../inventory/inventory.service";
import type { CaptureParams } from "../payments/payments.service";
import type { StoredOrder } from "./orders.store";
import type { OrdersMethods, OrdersSettings, OrdersThis, OrdersVars, Outcome, SagaMethods } from "./orders.types";

const isType = (err: unknown, type: string) => (err as { type?: unknown } | null)?.type === type;
/** A retryable failure that was not a timeout: the callee (or the route to it) failed at once. */
const isFastRetryable = (err: unknown) => {
	const e = err as { retryable?: unknown; name?: unknown } | null;
	return e?.retryable === true && e.name !== "RequestTimeoutError";
};
/** For the log: what went wrong, in a few words (errors carry no params, so no card number). */
const nameOf = (err: unknown) => (err instanceof Error ? `${err.name}: ${err.message}` : String(err));

const schema: ServiceSchema<OrdersSettings, OrdersMethods, OrdersVars> = {
	name: "order-saga",
	methods: {
		/** reserve → capture → confirmed (hold committed later, batched); stops where a step cannot be done now. */
		async advance(ctx: Context, given: StoredOrder, card: string): Promise<Outcome> {
			const stepOptions = { timeout: this.settings.stepTimeoutMs, retries: 0 };
			let order = given;
			let held: HoldAnswer;
			try {
				const items = order.items.map(({ productId, quantity }) => ({ productId, quantity }));
				held = await ctx.call<HoldAnswer, ReserveParams>("inventory.reserve", { orderId: order.id, items }, stepOptions);
			} catch (err) {
				if (isType(err, ErrorType.OUT_OF_STOCK)) {
					const cancelled = await this.compensate(ctx, order, "out_of_stock");
					const data = (err as Errors.MoleculerError).data as ShortageData;
					return { order: cancelled.order, error: cancelled.error ?? outOfStock({ ...data, orderId: order.id }) };
				}
				// Its stock was released meanwhile (given up elsewhere): take payments' final word.
				if (isType(err, ErrorType.INVALID_STATE)) return this.resolveWithoutCard(ctx, order);
				this.logger.warn(`Order ${order.id}: could not reserve stock yet (${nameOf(err)}); will retry`);
				return { order };
			}
			// Charged as priced when its stock was taken: the order is corrected first if it was written otherwise.
			// An inventory node of an earlier version answers no prices: one written from the price book is checked instead.
			this.priceBook.reserveAnswered(held.items !== undefined);
			if (held.items || this.priceBook.isUnchecked(order.id)) {
				try {
					order = await this.reprice(order, held.items ?? (await this.currentPrices(ctx, order)));
					this.priceBook.checked(order.id);
				} catch (err) {
					this.logger.warn(`Order ${order.id}: could not check its prices yet (${nameOf(err)}); will retry`);
					return { order };
				}
				// Finished elsewhere while it was repriced (the reprice found it no longer pending): nothing to charge here.
				if (order.status !== "pending") return { order };
			}

			let payment: Payment;
			try {
				payment = await this.capture(ctx, { orderId: order.id, userId: order.userId, amount: order.total, card });
			} catch (err) {
				// Voided meanwhile (given up by another node or cancelled): take payments' final word.
				if (isType(err, ErrorType.INVALID_STATE)) return this.resolveWithoutCard(ctx, order);
				this.logger.warn(`Order ${order.id}: payment outcome unknown (${nameOf(err)}); will retry`);
				return { order };
			}

			if (payment.status === "declined") {
				const cancelled = await this.compensate(ctx, order, "payment_declined");
				return { order: cancelled.order, error: cancelled.error ?? paymentDeclined({ orderId: order.id }) };
			}
			if (payment.status === "refunded") return this.compensate(ctx, order, "cancelled_by_user");
			return this.confirm(ctx, order);
		},

		/**
		 * payments.capture within PAYMENT_TIMEOUT_MS. A node that fails at once with a retryable error
		 * (a server error, a node gone) is not the last word: capture is idempotent per order, so what
		 * is left of the time goes to a second call, which the balancer sends elsewhere (the circuit
		 * breaker has counted the failure against that node). A timeout is not tried again: the time is up.
		 */
		async capture(ctx: Context, params: CaptureParams): Promise<Payment> {
			const started = Date.now();
			const budget = this.settings.paymentTimeoutMs;
			try {
				return await ctx.call<Payment, CaptureParams>("payments.capture", params, { timeout: budget, retries: 0 });
			} catch (err) {
				const left = budget - (Date.now() - started);
				if (!isFastRetryable(err) || left < 100) throw err;
				this.logger.warn(`Order ${params.orderId}: capture failed at once (${nameOf(err)}); trying another payments node`);
				return ctx.call<Payment, CaptureParams>("payments.capture", params, { timeout: left, retries: 0 });
			}
		},

		/**
		 * A paid order is confirmed; then its hold is marked sold, together with other orders' (hold-commits.ts).
		 * The hold's `committed` is inventory's bookkeeping: a paid order's units left the stock at its
		 * reservation, and nothing releases them unless a cancellation is claimed, which the
		 * confirmation refuses to override (the order's row decides). So the answer need not wait
		 * for it, and a hold left `held` (inventory unreachable, or this node died before sending
		 * it) breaks no invariant; a later cancel releases it as well.
		 */
		async confirm(ctx: Context, order: StoredOrder): Promise<Outcome> {
			const finished = await this.finish(order, "confirmed", null);
			if (finished.status === "confirmed") this.holdCommits.add(order.id);
			return { order: finished };
		},

		/** Settles an order whose card is gone (timeout, crash): payments' final word decides. */
		async resolveWithoutCard(ctx: Context, order: StoredOrder): Promise<Outcome> {
			let payment: Payment | null;
			try {
				payment = await ctx.call<Payment | null, OrderRefParams>(
					"payments.resolve",
					{ orderId: order.id },
					{ timeout: this.settings.stepTimeoutMs, retries: 0 }
				);
			} catch (err) {
				this.logger.warn(`Order ${order.id}: payments unreachable to settle it (${nameOf(err)}); will retry`);
				return { order };
			}
			if (payment?.status === "captured") return this.confirm(ctx, order);
			const reason: CancelReason = payment?.status === "declined" ? "payment_declined" : (order.cancelReason ?? "payment_failed");
			return this.compensate(ctx, order, reason);
		},

		/** Gives everything back (refund or void, release the stock), then records the cancellation. */
		async compensate(ctx: Context, order: StoredOrder, reason: CancelReason): Promise<Outcome> {
			const stepOptions = { timeout: this.settings.stepTimeoutMs, retries: 1 };
			try {
				// Only an order that may have been charged needs payments' part.
				if (reason !== "out_of_stock") await ctx.call<Payment | null, OrderRefParams>("payments.refund", { orderId: order.id }, stepOptions);
				await ctx.call<HoldAnswer, OrderRefParams>("inventory.release", { orderId: order.id }, stepOptions);
			} catch (err) {
				this.logger.warn(`Order ${order.id}: cancellation (${reason}) not finished (${nameOf(err)}); will retry`);
				return { order, error: err as Errors.MoleculerError };
			}
			return { order: await this.finish(order, "cancelled", reason) };
		},

		/**
		 * Writes the final status (once: the first writer wins), then announces it. When the request
		 * that created the order is still waiting in this process, its answer's status is recorded
		 * in the same statement (for Idempotency-Key replays).
		 */
		async finish(order: StoredOrder, status: "confirmed" | "cancelled", reason: CancelReason | null): Promise<StoredOrder> {
			this.priceBook.checked(order.id);
			const firstResponse = this.inFlight.has(order.id) ? answerStatus(status, reason) : null;
			const updatedAt = new Date().toISOString();
			if (!(await this.store.finish(order.id, { status, cancelReason: reason, firstResponse, updatedAt }))) {
				return this.reload(order); // settled meanwhile by someone else: theirs stands
			}
			const finished: StoredOrder = { ...order, status, cancelReason: reason, updatedAt, firstResponse: order.firstResponse ?? firstResponse };
			this.logger.info(`Order ${order.id} ${status}${reason ? ` (${reason})` : ""}`);
			// Announced after it is written; nobody waits for the listeners.
			void this.broker.emit(`order.${status}`, { order: toPublicOrder(finished) });
			return finished;
		},

		/**
		 * The order with its lines priced as its reservation took them (`items`, in any line order),
		 * written before the order goes on when they differ from what it was written with.
		 */
		async reprice(order: StoredOrder, items: OrderItem[]): Promise<StoredOrder> {
			this.priceBook.rememberItems(items);
			const byId = new Map(items.map(item => [item.productId, item]));
			const priced = order.items.map(item => {
				const held = byId.get(item.productId);
				return held ? { ...item, sku: held.sku, name: held.name, unitPrice: held.unitPrice } : item;
			});
			const same = priced.every(
				(item, i) => item.sku === order.items[i].sku && item.name === order.items[i].name && item.unitPrice === order.items[i].unitPrice
			);
			if (same) return order;
			const total = orderTotal(priced);
			this.logger.info(`Order ${order.id}: the catalogue changed since its prices were read; charged ${total} cents as reserved`);
			if (!(await this.store.reprice(order.id, priced, total))) return this.reload(order);
			return { ...order, items: priced, total };
		},

		/** The order's lines as the catalogue prices them now (for a reservation that answered no prices). */
		async currentPrices(ctx: Context, order: StoredOrder): Promise<OrderItem[]> {
			const ids = order.items.map(item => item.productId);
			const products = await ctx.call<ProductPrice[], GetManyParams>("inventory.getMany", { ids }, { timeout: this.settings.stepTimeoutMs, retries: 0 });
			const { items } = priceLines(order.items, products);
			// A product gone from the catalogue keeps the price it was written with.
			return items;
		},

		async reload(order: StoredOrder): Promise<StoredOrder> {
			const current = await this.store.find(order.id);
			if (!current) throw notFound("Order", { id: order.id });
			return current;
		}
	} satisfies SagaMethods & ThisType<OrdersThis>
};

// A mixin's `this` is the service that mixes it in; Moleculer's types cannot say so.
export const OrderSagaMixin = schema as unknown as Partial<ServiceSchema>;
