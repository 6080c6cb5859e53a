/**
 * orders: the order life cycle, orchestrated.
 *
 *   create: store the order `pending` → the saga (order-saga.mixin.ts): reserve every line
 *           (inventory) → capture (payments) → `confirmed`; its stock hold is marked sold after
 *           the answer, many orders per call (hold-commits.ts).
 *   A shortage or a decline cancels it (stock released, nothing charged). When payments does not
 *   answer within PAYMENT_TIMEOUT_MS, the client gets 202 with the pending order and the settle
 *   loop (settle.mixin.ts) keeps trying in the background.
 *
 * Crash safety: the order row is written before any step, and every step is idempotent per order
 * id in the service that owns it. The card number lives only in this process's memory while a
 * capture is retried; an order whose card is gone is settled by asking payments for the final word.
 */
import { randomUUID } from "node:crypto";
import type { Context, ServiceSchema } from "moleculer";
import { isValidCardNumber } from "../../lib/cards";
import { shopConfig } from "../../lib/config";
import { invalidState, notFound, outOfStock, paymentDeclined, validationError } from "../../lib/errors";
import { answerStatus, mergeLines, orderTotal, priceLines, toPublicOrder } from "../../lib/order-rules";
import { idRule, pageParams, pageWindow, toPage, type IdParams, type PageParams } from "../../lib/params";
import type { CancelReason, Order, OrderStatus, Page, ProductPrice, ShopMeta, StockLine } from "../../lib/types";
import { createDbMixin } from "../../mixins/db.mixin";
import type { CommitManyParams, GetManyParams } from "../inventory/inventory.service";
import { ExportMixin } from "./export.mixin";
import { InFlightOrders } from "./in-flight";
import { OrderSagaMixin } from "./order-saga.mixin";
import { migrations } from "./orders.migrations";
import { OrdersStore, type StoredOrder } from "./orders.store";
import { HoldCommits } from "./hold-commits";
import { PriceBook } from "./price-book";
import type { OrderMethods, OrdersMethods, OrdersSettings, OrdersThis, OrdersVars, Outcome } from "./orders.types";
import { SettleMixin } from "./settle.mixin";

// --- Params -------------------------------------------------------------------------------------

export interface CreateOrderParams {
	items: StockLine[];
	payment: { card: string };
}
export interface ListOrdersParams extends PageParams {
	status?: OrderStatus;
	cancelReason?: CancelReason;
}

/** What `GET /orders` answers an admin: each order also names the node attending it (who holds the card of a pending one). */
export type AdminOrder = Order & { ownerNode: string };

const ORDER_STATUSES: OrderStatus[] = ["pending", "confirmed", "cancelled"];
const CANCEL_REASONS: CancelReason[] = ["out_of_stock", "payment_declined", "payment_failed", "cancelled_by_user"];

/** How long a replay waits for the first attempt (maybe on another node) to record its answer. */
const REPLAY_WAIT_MS = 4000;

// --- Service ------------------------------------------------------------------------------------

const OrdersService: ServiceSchema<OrdersSettings, OrdersMethods, OrdersVars> = {
	name: "orders",
	// Moleculer starts the last mixin first: the database is ready before the settle loop's first pass.
	mixins: [ExportMixin, OrderSagaMixin, SettleMixin, createDbMixin({ migrations, createStore: db => new OrdersStore(db) })],

	settings: {
		db: shopConfig().dbUrl("orders"),
		rest: "/orders",
		paymentTimeoutMs: shopConfig().paymentTimeoutMs,
		stepTimeoutMs: 1500,
		settleIntervalMs: 1000,
		cardRetryLimitMs: 10 * 60 * 1000,
		orphanAfterMs: 30 * 1000
	},

	actions: {
		create: {
			rest: "POST /",
			auth: "user",
			// Not retried by the broker: a retry after a lost answer would make a second order.
			// Clients that retry send an Idempotency-Key.
			retryPolicy: { enabled: false },
			// Room for every step's own timeout (1.5 s each, payments 1 s) and a compensation.
			timeout: 12_000,
			params: {
				items: {
					type: "array",
					min: 1,
					max: 50,
					items: {
						type: "object",
						strict: "remove",
						props: { productId: idRule, quantity: { type: "number", integer: true, min: 1, max: 100 } }
					}
				},
				payment: { type: "object", strict: "remove", props: { card: { type: "string", min: 1, max: 64 } } },
				$$strict: "remove"
			},
			async handler(ctx: Context<CreateOrderParams, ShopMeta>): Promise<Order> {
				const user = ctx.meta.user!;
				const key = ctx.meta.idempotencyKey;
				if (key !== undefined && (key.length < 1 || key.length > 64)) {
					throw validationError("Idempotency-Key", "The Idempotency-Key header must be 1 to 64 characters long");
				}
				const card = ctx.params.payment.card;
				if (!isValidCardNumber(card)) throw validationError("payment.card", "The card number must be 12 to 19 digits and pass the Luhn check", "card");

				const lines = mergeLines(ctx.params.items);
				// Products this node has seen are written with the prices it saw (the reservation corrects
				// them: price-book.ts); others are asked for, while a key is looked up (a replay drops them).
				const known = this.priceBook.pricesOf(lines);
				const [earlier, prices] = await Promise.all([
					key ? this.store.findByIdempotencyKey(user.id, key) : undefined,
					known
						? { products: known }
						: ctx
								.call<ProductPrice[], GetManyParams>("inventory.getMany", { ids: lines.map(line => line.productId) }, { timeout: this.settings.stepTimeoutMs })
								.then(
									products => ({ products }),
									(error: unknown) => ({ error })
								)
				]);
				if (earlier) return toPublicOrder(await this.replay(ctx, earlier));
				if ("error" in prices) throw prices.error;
				if (!known) this.priceBook.remember(prices.products);
				const { items, missing } = priceLines(lines, prices.products);
				if (missing.length > 0) throw notFound(missing.length === 1 ? "Product" : "Products", { productIds: missing });

				const now = new Date().toISOString();
				const order: StoredOrder = {
					id: randomUUID(),
					userId: user.id,
					status: "pending",
					items,
					total: orderTotal(items),
					cancelReason: null,
					idempotencyKey: key ?? null,
					firstResponse: null,
					ownerNode: this.broker.nodeID,
					attendedAt: now,
					createdAt: now,
					updatedAt: now
				};
				// In flight from before its row exists: the settle loop must never take over an order its request is still creating.
				const done = this.inFlight.begin(order.id);
				try {
					if (!(await this.store.insert(order))) {
						// The same key raced in at the same moment (the only row it can clash with): answer what that request answers.
						const winner = key ? await this.store.findByIdempotencyKey(user.id, key) : undefined;
						if (!winner) throw new Error(`Order ${order.id} was refused by the database without an Idempotency-Key clash`);
						return toPublicOrder(await this.replay(ctx, winner));
					}
					if (known) this.priceBook.written(order.id);
					return toPublicOrder(await this.answer(ctx, await this.advance(ctx, order, card), card));
				} finally {
					done();
				}
			}
		},

		list: {
			rest: "GET /",
			auth: "user",
			params: {
				...pageParams,
				status: { type: "enum", values: ORDER_STATUSES, optional: true },
				cancelReason: { type: "enum", values: CANCEL_REASONS, optional: true },
				$$strict: "remove"
			},
			async handler(ctx: Context<ListOrdersParams, ShopMeta>): Promise<Page<Order | AdminOrder>> {
				const user = ctx.meta.user!;
				const admin = user.role === "admin";
				const { status, cancelReason } = ctx.params;
				const { rows, total } = await this.store.list({ userId: admin ? undefined : user.id, status, cancelReason, ...pageWindow(ctx.params) });
				return toPage(
					rows.map(order => (admin ? { ...toPublicOrder(order), ownerNode: order.ownerNode } : toPublicOrder(order))),
					total,
					ctx.params
				);
			}
		},

		get: {
			rest: "GET /:id",
			auth: "user",
			params: { id: idRule },
			async handler(ctx: Context<IdParams, ShopMeta>): Promise<Order> {
				return toPublicOrder(await this.findVisible(ctx.params.id, ctx));
			}
		},

		cancel: {
			rest: "POST /:id/cancel",
			auth: "user",
			retryPolicy: { enabled: false },
			timeout: 10_000,
			params: { id: idRule },
			async handler(ctx: Context<IdParams, ShopMeta>): Promise<Order> {
				const found = await this.findVisible(ctx.params.id, ctx);
				// Let a create still running in this process finish first: cancel what it produced.
				await this.inFlight.finished(found.id);
				// One request wins the cancellation, on any orders node; the others answer 409 as if they had come after it.
				if (!(await this.store.claimCancellation(found.id, "cancelled_by_user", this.broker.nodeID))) {
					throw invalidState("The order is already cancelled", { id: found.id });
				}
				this.forgetCard(found.id);
				const outcome = await this.compensate(ctx, await this.reload(found), "cancelled_by_user");
				if (outcome.error) throw outcome.error;
				return toPublicOrder(outcome.order);
			}
		}
	},

	methods: {
		/** The order, if the caller owns it or is an admin; 404 otherwise (never reveal another's order). */
		async findVisible(id: string, ctx: Context<unknown, ShopMeta>): Promise<StoredOrder> {
			const user = ctx.meta.user!;
			const order = await this.store.find(id);
			if (!order || (user.role !== "admin" && order.userId !== user.id)) throw notFound("Order", { id });
			return order;
		},

		/**
		 * Answers the request that created the order: 201 confirmed, 202 pending (its card kept in memory
		 * for the retries), or the error that cancelled it.
		 */
		async answer(ctx: Context<unknown, ShopMeta>, outcome: Outcome, card: string): Promise<StoredOrder> {
			const { order } = outcome;
			const status = answerStatus(order.status, order.cancelReason);
			// A final outcome recorded its status in `finish`; a pending one is recorded here.
			if (order.firstResponse == null) await this.store.recordFirstResponse(order.id, status);
			if (order.status === "pending") this.keepCardForRetries(order.id, card);
			if (order.status === "cancelled") {
				throw outcome.error && (outcome.error.code === 409 || outcome.error.code === 402)
					? outcome.error
					: invalidState("The order was cancelled", { orderId: order.id, cancelReason: order.cancelReason });
			}
			ctx.meta.$statusCode = status;
			ctx.meta.$location = `${this.settings.rest}/${order.id}`;
			return order;
		},

		/** An Idempotency-Key seen before: the first attempt's order and status code, nothing charged again. */
		async replay(ctx: Context<unknown, ShopMeta>, earlier: StoredOrder): Promise<StoredOrder> {
			await this.inFlight.finished(earlier.id);
			let order = await this.reload(earlier);
			// The first attempt may be running on another node: wait for its answer to be recorded.
			for (let waited = 0; order.firstResponse == null && waited < REPLAY_WAIT_MS; waited += 100) {
				await new Promise(resolve => setTimeout(resolve, 100));
				order = await this.reload(order);
			}
			const status = order.firstResponse ?? 202;
			if (status === 409 && order.cancelReason === "out_of_stock") throw outOfStock({ products: [], orderId: order.id });
			if (status === 402) throw paymentDeclined({ orderId: order.id });
			if (status >= 400) throw invalidState("The order was cancelled", { orderId: order.id, cancelReason: order.cancelReason });
			ctx.meta.$statusCode = status;
			ctx.meta.$location = `${this.settings.rest}/${order.id}`;
			return order;
		}
	} satisfies OrderMethods & ThisType<OrdersThis>,

	created() {
		this.inFlight = new InFlightOrders();
		this.priceBook = new PriceBook();
		this.holdCommits = new HoldCommits(
			orderIds => this.broker.call<unknown, CommitManyParams>("inventory.commitMany", { orderIds }, { timeout: this.settings.stepTimeoutMs, retries: 1 }),
			this.logger
		);
	},

	/** What is waiting to be marked sold goes now (a node that stops does not wait for the interval). */
	async stopped() {
		await this.holdCommits.stop();
	}
};

export default OrdersService;
