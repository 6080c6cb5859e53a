/**
 * orders: the order life cycle, orchestrated.
 *
 *   create: store the order `pending` → reserve every line (inventory) → capture (payments)
 *           → commit the stock → `confirmed`.
 *   A shortage or a decline cancels it (stock released, nothing charged). When payments does not
 *   answer within PAYMENT_TIMEOUT_MS, the client gets 202 with the pending order and this service
 *   keeps trying in the background.
 *
 * Crash safety: the order row is written before any step, and every step is idempotent per order
 * id in the service that owns it (inventory's holds, payments' one-payment-per-order and voids).
 * The card number lives only in this process's memory while a capture is retried; an order whose
 * card is gone (its node died) is settled by asking payments for the final word (`resolve`), then
 * committing or releasing its stock. The settle loop runs every second and at start.
 */
import { randomUUID } from "node:crypto";
import type { Context, Errors, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { DataTypes, Model, Op, type Sequelize } from "sequelize";
import { isValidCardNumber } from "../lib/cards";
import { shopConfig } from "../lib/config";
import { answerStatus, mergeLines, orderTotal, priceLines } from "../lib/order-rules";
import type { CancelReason, Order, OrderItem, OrderStatus, Page, Payment, ProductPrice, ShopMeta, StockLine } from "../lib/types";
import { isUniqueViolation } from "../lib/database";
import { idRule, pageParams, pageWindow, toPage, type PageParams } from "../lib/params";
import { createDbMixin, type DbVars } from "../mixins/db.mixin";
import { ErrorType, invalidState, notFound, outOfStock, paymentDeclined, validationError, type ShortageData } from "../mixins/errors";

// --- Data ---------------------------------------------------------------------------------------

class OrderRow extends Model {
	declare id: string;
	declare userId: string;
	declare status: OrderStatus;
	declare items: OrderItem[];
	declare total: number;
	/** Set when a cancellation is decided (and, for a user's cancel, before its compensation runs). */
	declare cancelReason: CancelReason | null;
	declare idempotencyKey: string | null;
	/** The HTTP status the creating request was answered with, for Idempotency-Key replays. */
	declare firstResponse: number | null;
	/** The node that holds the card for retries; others leave the order alone while it lives. */
	declare ownerNode: string;
	/** When a node last worked on this unfinished order (a heartbeat; not shown to clients). */
	declare attendedAt: Date;
	declare createdAt: Date;
	declare updatedAt: Date;
}

function defineModels(sequelize: Sequelize) {
	OrderRow.init(
		{
			id: { type: DataTypes.STRING(36), primaryKey: true },
			userId: { type: DataTypes.STRING(36), allowNull: false },
			status: { type: DataTypes.STRING(16), allowNull: false },
			items: { type: DataTypes.JSON, allowNull: false },
			total: { type: DataTypes.BIGINT, allowNull: false },
			cancelReason: { type: DataTypes.STRING(32), allowNull: true },
			idempotencyKey: { type: DataTypes.STRING(64), allowNull: true },
			firstResponse: { type: DataTypes.INTEGER, allowNull: true },
			ownerNode: { type: DataTypes.STRING(200), allowNull: false },
			attendedAt: { type: DataTypes.DATE, allowNull: false }
		},
		{
			sequelize,
			tableName: "orders",
			underscored: true,
			indexes: [
				// One order per key and user: two concurrent requests with one key make one order.
				{ unique: true, fields: ["user_id", "idempotency_key"] },
				{ fields: ["user_id", "created_at"] },
				{ fields: ["status"] }
			]
		}
	);
	return { Order: OrderRow };
}

type Models = ReturnType<typeof defineModels>;

const toOrder = (row: OrderRow): Order => ({
	id: row.id,
	userId: row.userId,
	status: row.status,
	items: row.items,
	total: Number(row.total),
	currency: "USD",
	// A cancellation in progress is not visible until it is done.
	cancelReason: row.status === "cancelled" ? row.cancelReason : null,
	createdAt: row.createdAt.toISOString(),
	updatedAt: row.updatedAt.toISOString()
});

// --- Params -------------------------------------------------------------------------------------

export interface CreateOrderParams {
	items: StockLine[];
	payment: { card: string };
}
export type ListOrdersParams = PageParams;
export interface OrderIdParams {
	id: string;
}


/** Where an attempt to move an order forward left it. */
type Outcome = { row: OrderRow; error?: Errors.MoleculerError };

interface CardRetry {
	card: string;
	attempts: number;
	nextAttemptAt: number;
	firstAttemptAt: number;
}

// --- Service ------------------------------------------------------------------------------------

interface OrdersSettings extends ServiceSettingSchema {
	rest: string;
	/** How often the settle loop looks for unfinished orders. */
	settleIntervalMs: number;
	/** How long a capture is retried with the card before the order is given up (payment_failed). */
	cardRetryLimitMs: number;
	/** An unfinished order nobody has touched for this long is settled by any orders node. */
	orphanAfterMs: number;
	/** Timeouts for calls made while a client waits. */
	stepTimeoutMs: number;
}

interface OrdersVars extends DbVars<Models> {
	/** Orders being created by this process right now, and the promise of their first outcome. */
	inFlight: Map<string, Promise<Outcome>>;
	/** Cards of pending orders whose capture is retried (memory only, never stored). */
	cardRetries: Map<string, CardRetry>;
	settleTimer: NodeJS.Timeout | null;
	settling: boolean;
	startedAt: number;
}

interface OrdersMethods {
	findVisible(id: string, ctx: Context<unknown, ShopMeta>): Promise<OrderRow>;
	advance(ctx: Context, row: OrderRow, card: string): Promise<Outcome>;
	resolveWithoutCard(ctx: Context, row: OrderRow): Promise<Outcome>;
	confirm(ctx: Context, row: OrderRow): Promise<Outcome>;
	compensate(ctx: Context, row: OrderRow, reason: CancelReason): Promise<Outcome>;
	claimCancellation(orderId: string, reason: CancelReason): Promise<boolean>;
	finish(row: OrderRow, status: "confirmed" | "cancelled", reason: CancelReason | null): Promise<OrderRow>;
	recordFirstResponse(row: OrderRow, status: number): Promise<void>;
	reload(row: OrderRow): Promise<OrderRow>;
	replay(ctx: Context<unknown, ShopMeta>, row: OrderRow): Promise<Order>;
	answer(ctx: Context<unknown, ShopMeta>, outcome: Outcome, card: string): Promise<Order>;
	settleUnfinished(): Promise<void>;
	retryWithCard(orderId: string, retry: CardRetry): Promise<void>;
	isOrphan(row: OrderRow): boolean;
	attend(orderId: string): Promise<void>;
}


const isType = (err: unknown, type: string) => (err as { type?: unknown } | null)?.type === type;

const OrdersService: ServiceSchema<OrdersSettings, OrdersMethods, OrdersVars> = {
	name: "orders",
	mixins: [createDbMixin("orders", defineModels)],

	settings: {
		rest: "/orders",
		settleIntervalMs: 1000,
		cardRetryLimitMs: 10 * 60 * 1000,
		orphanAfterMs: 30 * 1000,
		stepTimeoutMs: 1500
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
				const idempotencyKey = ctx.meta.idempotencyKey;
				if (idempotencyKey !== undefined && (idempotencyKey.length < 1 || idempotencyKey.length > 64)) {
					throw validationError("Idempotency-Key", "The Idempotency-Key header must be 1 to 64 characters long");
				}
				const card = ctx.params.payment.card;
				if (!isValidCardNumber(card)) {
					throw validationError("payment.card", "The card number must be 12 to 19 digits and pass the Luhn check", "card");
				}

				if (idempotencyKey) {
					const earlier = await this.models.Order.findOne({ where: { userId: user.id, idempotencyKey } });
					if (earlier) return this.replay(ctx, earlier);
				}

				const lines = mergeLines(ctx.params.items);
				const products = await ctx.call<ProductPrice[], { ids: string[] }>(
					"inventory.getMany",
					{ ids: lines.map(line => line.productId) },
					{ timeout: this.settings.stepTimeoutMs }
				);
				const { items, missing } = priceLines(lines, products);
				if (missing.length > 0) throw notFound(missing.length === 1 ? "Product" : "Products", { productIds: missing });

				// In flight from before its row exists: the settle loop must never take over (void and
				// cancel) an order whose request is still creating it in this process.
				const orderId = randomUUID();
				let attemptStarted: (attempt: Promise<Outcome>) => void = () => undefined;
				const placeholder = new Promise<Outcome>(resolve => (attemptStarted = resolve));
				placeholder.catch(() => undefined); // its waiters handle a failure; nobody else must see it as unhandled
				this.inFlight.set(orderId, placeholder);
				const now = new Date();
				const values = {
					id: orderId,
					userId: user.id,
					status: "pending",
					items,
					total: orderTotal(items),
					cancelReason: null,
					idempotencyKey: idempotencyKey ?? null,
					firstResponse: null,
					ownerNode: this.broker.nodeID,
					attendedAt: now,
					createdAt: now,
					updatedAt: now
				};
				try {
					// The hot path: one plain INSERT (the model's create costs ten times the statement).
					await this.db.write(tx =>
						this.db.execute(
							`INSERT INTO orders (id, user_id, status, items, total, cancel_reason, idempotency_key, first_response, owner_node, attended_at, created_at, updated_at)
							 VALUES (:id, :userId, :status, :items, :total, :cancelReason, :idempotencyKey, :firstResponse, :ownerNode, :attendedAt, :createdAt, :updatedAt)`,
							values,
							tx
						)
					);
				} catch (err) {
					this.inFlight.delete(orderId);
					attemptStarted(Promise.reject(err));
					// The same key raced in at the same moment: answer what that request answers.
					if (isUniqueViolation(err) && idempotencyKey) {
						const earlier = await this.models.Order.findOne({ where: { userId: user.id, idempotencyKey } });
						if (earlier) return this.replay(ctx, earlier);
					}
					throw err;
				}

				const row = this.models.Order.build(values, { isNewRecord: false, raw: true });
				const attempt = this.advance(ctx, row, card);
				// A cancel or replay that found the order meanwhile now waits for the attempt itself.
				attemptStarted(attempt.catch(() => ({ row })));
				this.inFlight.set(row.id, attempt);
				try {
					return await this.answer(ctx, await attempt, card);
				} finally {
					this.inFlight.delete(row.id);
				}
			}
		},

		list: {
			rest: "GET /",
			auth: "user",
			params: {
				...pageParams,
				$$strict: "remove"
			},
			async handler(ctx: Context<ListOrdersParams, ShopMeta>): Promise<Page<Order>> {
				const user = ctx.meta.user!;
				const { rows, count } = await this.models.Order.findAndCountAll({
					where: user.role === "admin" ? {} : { userId: user.id },
					order: [["created_at", "DESC"], ["id", "DESC"]],
					...pageWindow(ctx.params)
				});
				return toPage(rows.map(toOrder), count, ctx.params);
			}
		},

		get: {
			rest: "GET /:id",
			auth: "user",
			params: { id: idRule },
			async handler(ctx: Context<OrderIdParams, ShopMeta>): Promise<Order> {
				return toOrder(await this.findVisible(ctx.params.id, ctx));
			}
		},

		cancel: {
			rest: "POST /:id/cancel",
			auth: "user",
			retryPolicy: { enabled: false },
			timeout: 10_000,
			params: { id: idRule },
			async handler(ctx: Context<OrderIdParams, ShopMeta>): Promise<Order> {
				const found = await this.findVisible(ctx.params.id, ctx);
				// Let a create still running in this process finish first: cancel what it produced.
				await this.inFlight.get(found.id)?.catch(() => undefined);
				// One request wins the cancellation, on any orders node; the others answer 409 as if they
				// had come after it.
				if (!(await this.claimCancellation(found.id, "cancelled_by_user"))) {
					throw invalidState("The order is already cancelled", { id: found.id });
				}
				this.cardRetries.delete(found.id);
				const outcome = await this.compensate(ctx, await this.reload(found), "cancelled_by_user");
				if (outcome.error) throw outcome.error;
				return toOrder(outcome.row);
			}
		}
	},

	methods: {
		/** The order, if the caller owns it or is an admin; 404 otherwise (never reveal another's order). */
		async findVisible(id: string, ctx: Context<unknown, ShopMeta>): Promise<OrderRow> {
			const user = ctx.meta.user!;
			const row = await this.models.Order.findByPk(id);
			if (!row || (user.role !== "admin" && row.userId !== user.id)) throw notFound("Order", { id });
			return row;
		},

		/** reserve → capture → commit → confirmed, each step idempotent; stops where a step cannot be done now. */
		async advance(ctx: Context, row: OrderRow, card: string): Promise<Outcome> {
			const stepOptions = { timeout: this.settings.stepTimeoutMs, retries: 0 };
			const lines: StockLine[] = row.items.map(({ productId, quantity }) => ({ productId, quantity }));

			try {
				await ctx.call("inventory.reserve", { orderId: row.id, items: lines }, stepOptions);
			} catch (err) {
				if (isType(err, ErrorType.OUT_OF_STOCK)) {
					const cancelled = await this.compensate(ctx, row, "out_of_stock");
					const data = (err as Errors.MoleculerError).data as ShortageData;
					return { row: cancelled.row, error: cancelled.error ?? outOfStock({ ...data, orderId: row.id }) };
				}
				// Its stock was released meanwhile (given up elsewhere): take payments' final word.
				if (isType(err, ErrorType.INVALID_STATE)) return this.resolveWithoutCard(ctx, row);
				this.logger.warn(`Order ${row.id}: could not reserve stock yet (${(err as Error).name}); will retry`);
				return { row };
			}

			let payment: Payment;
			try {
				payment = await ctx.call<Payment, { orderId: string; userId: string; amount: number; card: string }>(
					"payments.capture",
					{ orderId: row.id, userId: row.userId, amount: Number(row.total), card },
					{ timeout: shopConfig().paymentTimeoutMs, retries: 0 }
				);
			} catch (err) {
				// Voided meanwhile (given up by another node or cancelled): take payments' final word.
				if (isType(err, ErrorType.INVALID_STATE)) return this.resolveWithoutCard(ctx, row);
				this.logger.warn(`Order ${row.id}: payment outcome unknown (${(err as Error).name}); will retry`);
				return { row };
			}

			if (payment.status === "declined") {
				const cancelled = await this.compensate(ctx, row, "payment_declined");
				return { row: cancelled.row, error: cancelled.error ?? paymentDeclined({ orderId: row.id }) };
			}
			if (payment.status === "refunded") return this.compensate(ctx, row, "cancelled_by_user");

			return this.confirm(ctx, row);
		},

		/** A paid order: its stock becomes sold, then it is confirmed. */
		async confirm(ctx: Context, row: OrderRow): Promise<Outcome> {
			try {
				await ctx.call("inventory.commit", { orderId: row.id }, { timeout: this.settings.stepTimeoutMs, retries: 0 });
			} catch (err) {
				this.logger.warn(`Order ${row.id}: paid, stock commit pending (${(err as Error).name}); will retry`);
				return { row };
			}
			return { row: await this.finish(row, "confirmed", null) };
		},

		/** Settles an order whose card is gone: payments' final word decides. */
		async resolveWithoutCard(ctx: Context, row: OrderRow): Promise<Outcome> {
			const stepOptions = { timeout: this.settings.stepTimeoutMs, retries: 0 };
			let payment: Payment | null;
			try {
				payment = await ctx.call<Payment | null, { orderId: string }>("payments.resolve", { orderId: row.id }, stepOptions);
			} catch (err) {
				this.logger.warn(`Order ${row.id}: payments unreachable to settle it (${(err as Error).name}); will retry`);
				return { row };
			}
			if (payment?.status === "captured") return this.confirm(ctx, row);
			const reason: CancelReason = payment?.status === "declined" ? "payment_declined" : row.cancelReason ?? "payment_failed";
			return this.compensate(ctx, row, reason);
		},

		/** Gives everything back (refund or void, release the stock), then records the cancellation. */
		async compensate(ctx: Context, row: OrderRow, reason: CancelReason): Promise<Outcome> {
			const stepOptions = { timeout: this.settings.stepTimeoutMs, retries: 1 };
			try {
				// Only an order that may have been charged needs payments' part.
				if (reason !== "out_of_stock") await ctx.call("payments.refund", { orderId: row.id }, stepOptions);
				await ctx.call("inventory.release", { orderId: row.id }, stepOptions);
			} catch (err) {
				this.logger.warn(`Order ${row.id}: cancellation (${reason}) not finished (${(err as Error).name}); will retry`);
				return { row, error: err as Errors.MoleculerError };
			}
			return { row: await this.finish(row, "cancelled", reason) };
		},

		/**
		 * Records the decision to cancel before anything is given back, so a crash cannot forget it.
		 * True for the one caller that records it; false when the order is cancelled or being cancelled.
		 */
		async claimCancellation(orderId: string, reason: CancelReason): Promise<boolean> {
			const claimed = await this.db.write(tx =>
				this.db.execute(
					`UPDATE orders SET cancel_reason = :reason, owner_node = :node, attended_at = :now
					 WHERE id = :orderId AND status <> 'cancelled' AND cancel_reason IS NULL`,
					{ orderId, reason, node: this.broker.nodeID, now: new Date() },
					tx
				)
			);
			return claimed === 1;
		},

		/**
		 * Writes the final status (once: the first writer wins), then announces it. When the request
		 * that created the order is still waiting in this process, its answer's status is recorded
		 * in the same statement (for Idempotency-Key replays).
		 */
		async finish(row: OrderRow, status: "confirmed" | "cancelled", reason: CancelReason | null): Promise<OrderRow> {
			// A confirmed order may still be cancelled by its owner; a cancelled one is final.
			const from: OrderStatus[] = status === "confirmed" ? ["pending"] : ["pending", "confirmed"];
			const firstResponse = this.inFlight.has(row.id) ? answerStatus(status, reason) : null;
			const updatedAt = new Date();
			const changed = await this.db.write(tx =>
				this.db.execute(
					`UPDATE orders SET status = :status, cancel_reason = :reason, updated_at = :updatedAt, first_response = COALESCE(first_response, :firstResponse)
					 WHERE id = :id AND status IN (${from.map(state => `'${state}'`).join(", ")})${status === "confirmed" ? " AND cancel_reason IS NULL" : ""}`,
					{ id: row.id, status, reason, updatedAt, firstResponse },
					tx
				)
			);
			this.cardRetries.delete(row.id);
			if (changed === 0) return this.reload(row); // settled meanwhile by someone else: theirs stands
			row.set({ status, cancelReason: reason, updatedAt, firstResponse: row.firstResponse ?? firstResponse }, { raw: true });
			this.logger.info(`Order ${row.id} ${status}${reason ? ` (${reason})` : ""}`);
			this.broker.emit(`order.${status}`, { order: toOrder(row) });
			return row;
		},

		async recordFirstResponse(row: OrderRow, status: number): Promise<void> {
			await this.db.write(tx =>
				// silent: bookkeeping only, the client's order did not change (its updatedAt must not either).
				this.models.Order.update({ firstResponse: status }, { where: { id: row.id, firstResponse: null }, silent: true, ...tx })
			);
		},

		async reload(row: OrderRow): Promise<OrderRow> {
			const current = await this.models.Order.findByPk(row.id);
			if (!current) throw notFound("Order", { id: row.id });
			return current;
		},

		/**
		 * Answers the request that created the order: 201 confirmed, 202 pending (its card kept in memory
		 * for the retries), or the error that cancelled it.
		 */
		async answer(ctx: Context<unknown, ShopMeta>, outcome: Outcome, card: string): Promise<Order> {
			const { row } = outcome;
			const status = answerStatus(row.status, row.cancelReason);
			// A final outcome recorded its status in `finish`; a pending one is recorded here.
			if (row.firstResponse == null) await this.recordFirstResponse(row, status);
			if (row.status === "pending") {
				const now = Date.now();
				if (!this.cardRetries.has(row.id)) this.cardRetries.set(row.id, { card, attempts: 0, nextAttemptAt: now + 500, firstAttemptAt: now });
			}
			if (row.status === "cancelled") {
				throw outcome.error && (outcome.error.code === 409 || outcome.error.code === 402)
					? outcome.error
					: invalidState("The order was cancelled", { orderId: row.id, cancelReason: row.cancelReason });
			}
			ctx.meta.$statusCode = status;
			ctx.meta.$location = `/api/orders/${row.id}`;
			return toOrder(row);
		},

		/** An Idempotency-Key seen before: the first attempt's order and status code, nothing charged again. */
		async replay(ctx: Context<unknown, ShopMeta>, row: OrderRow): Promise<Order> {
			await this.inFlight.get(row.id)?.catch(() => undefined);
			let current = await this.reload(row);
			// The first attempt may be running on another node: wait for its answer to be recorded.
			for (let waited = 0; current.firstResponse == null && waited < 4000; waited += 100) {
				await new Promise(resolve => setTimeout(resolve, 100));
				current = await this.reload(current);
			}
			const status = current.firstResponse ?? 202;
			if (status === 409 && current.cancelReason === "out_of_stock") {
				throw outOfStock({ products: [], orderId: current.id });
			}
			if (status === 402) throw paymentDeclined({ orderId: current.id });
			if (status >= 400) throw invalidState("The order was cancelled", { orderId: current.id, cancelReason: current.cancelReason });
			ctx.meta.$statusCode = status;
			ctx.meta.$location = `/api/orders/${current.id}`;
			return toOrder(current);
		},

		/** One pass of the settle loop: card retries that are due, then orphaned unfinished orders. */
		async settleUnfinished(): Promise<void> {
			if (this.settling) return;
			this.settling = true;
			try {
				const now = Date.now();
				for (const [orderId, retry] of this.cardRetries) {
					if (retry.nextAttemptAt <= now && !this.inFlight.has(orderId)) await this.retryWithCard(orderId, retry);
				}
				const unfinished = await this.models.Order.findAll({
					where: { [Op.or]: [{ status: "pending" }, { status: "confirmed", cancelReason: { [Op.ne]: null } }] },
					order: [["attended_at", "ASC"]],
					limit: 200
				});
				for (const row of unfinished) {
					if (this.inFlight.has(row.id) || this.cardRetries.has(row.id) || !this.isOrphan(row)) continue;
					const ctx = this.broker.ContextFactory.create(this.broker);
					const outcome = row.cancelReason ? await this.compensate(ctx, row, row.cancelReason) : await this.resolveWithoutCard(ctx, row);
					const settled = outcome.row.status === "cancelled" || (outcome.row.status === "confirmed" && !outcome.row.cancelReason);
					if (!settled) {
						// Not settled yet: touch it, so it waits its turn behind the others.
						await this.attend(row.id);
					}
				}
			} catch (err) {
				this.logger.error("Settle loop pass failed:", err);
			} finally {
				this.settling = false;
			}
		},

		async retryWithCard(orderId: string, retry: CardRetry): Promise<void> {
			const row = await this.models.Order.findByPk(orderId);
			if (!row || row.status !== "pending") {
				this.cardRetries.delete(orderId);
				return;
			}
			const ctx = this.broker.ContextFactory.create(this.broker);
			if (row.cancelReason) {
				// Its owner cancelled it: finish that instead of charging.
				this.cardRetries.delete(orderId);
				await this.compensate(ctx, row, row.cancelReason);
				return;
			}
			if (Date.now() - retry.firstAttemptAt > this.settings.cardRetryLimitMs) {
				this.logger.warn(`Order ${orderId}: payment still unknown after ${this.settings.cardRetryLimitMs} ms; giving up`);
				this.cardRetries.delete(orderId);
				await this.resolveWithoutCard(ctx, row);
				return;
			}
			const outcome = await this.advance(ctx, row, retry.card);
			if (outcome.row.status === "pending") {
				retry.attempts += 1;
				retry.nextAttemptAt = Date.now() + Math.min(5000, 250 * 2 ** retry.attempts);
				// Touch the order: other orders nodes see that its card holder is alive and leave it alone.
				await this.attend(orderId);
			} else {
				this.cardRetries.delete(orderId);
			}
		},

		/** Marks an unfinished order as worked on by this node, so that other orders nodes leave it alone. */
		async attend(orderId: string): Promise<void> {
			await this.db.write(tx =>
				this.models.Order.update({ ownerNode: this.broker.nodeID, attendedAt: new Date() }, { where: { id: orderId }, silent: true, ...tx })
			);
		},

		/** True when no live process is working on this order. */
		isOrphan(row: OrderRow): boolean {
			if (Date.now() - row.attendedAt.getTime() > this.settings.orphanAfterMs) return true;
			// Our own order without its card in memory: left by this node's previous life.
			if (row.ownerNode === this.broker.nodeID) return true;
			// Give discovery a moment after start before judging other nodes dead.
			if (Date.now() - this.startedAt < 5000) return false;
			const owner = this.broker.registry.nodes.get(row.ownerNode);
			return !owner || !owner.available;
		}
	},

	created() {
		this.inFlight = new Map();
		this.cardRetries = new Map();
		this.settleTimer = null;
		this.settling = false;
	},

	async started() {
		this.startedAt = Date.now();
		// At once, for what a previous life of this node left unfinished, then every second.
		void this.settleUnfinished();
		this.settleTimer = setInterval(() => void this.settleUnfinished(), this.settings.settleIntervalMs);
		this.settleTimer.unref();
	},

	async stopped() {
		if (this.settleTimer) clearInterval(this.settleTimer);
		while (this.settling) await new Promise(resolve => setTimeout(resolve, 20));
	}
};

export default OrdersService;
