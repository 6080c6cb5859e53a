/**
 * payments: captures and refunds, by the sandbox's test-card rules (lib/cards.ts).
 *
 * Owns `payments.sqlite`. One payment per order at most, enforced by a unique index, so a retried
 * capture finds the first one instead of charging twice. `resolve` settles an order whose capture
 * outcome its caller does not know: it answers the payment if there is one, or else records the
 * order as voided, so that a capture still on its way can never charge it later.
 * Card numbers never reach the database or the log: only their last four digits.
 */
import { randomUUID } from "node:crypto";
import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { DataTypes, Model, type Sequelize } from "sequelize";
import { decideCharge, isValidCardNumber, lastFour } from "../lib/cards";
import type { TxOptions } from "../lib/database";
import type { Payment, PaymentStatus, ShopMeta } from "../lib/types";
import { idRule } from "../lib/params";
import { createDbMixin, type DbVars } from "../mixins/db.mixin";
import { invalidState, validationError } from "../mixins/errors";

// --- Data ---------------------------------------------------------------------------------------

class PaymentRow extends Model {
	declare id: string;
	declare orderId: string;
	declare userId: string;
	declare amount: number;
	declare status: PaymentStatus;
	declare cardLast4: string;
	declare createdAt: Date;
}

/** Orders that must never be charged any more (their order was given up before a capture arrived). */
class VoidedOrderRow extends Model {
	declare orderId: string;
}

function defineModels(sequelize: Sequelize) {
	PaymentRow.init(
		{
			id: { type: DataTypes.STRING(36), primaryKey: true },
			orderId: { type: DataTypes.STRING(36), allowNull: false, unique: true },
			userId: { type: DataTypes.STRING(36), allowNull: false },
			amount: { type: DataTypes.BIGINT, allowNull: false },
			status: { type: DataTypes.STRING(16), allowNull: false },
			cardLast4: { type: DataTypes.STRING(4), allowNull: false }
		},
		{ sequelize, tableName: "payments", underscored: true, indexes: [{ fields: ["user_id"] }] }
	);
	VoidedOrderRow.init(
		{ orderId: { type: DataTypes.STRING(36), primaryKey: true } },
		{ sequelize, tableName: "voided_orders", underscored: true, updatedAt: false }
	);
	return { Payment: PaymentRow, VoidedOrder: VoidedOrderRow };
}

type Models = ReturnType<typeof defineModels>;


/** A payment as a SELECT answers it. */
const COLUMNS = "id, order_id, amount, status, card_last4, created_at";
interface PaymentRecord {
	id: string;
	order_id: string;
	amount: number | string;
	status: PaymentStatus;
	card_last4: string;
	created_at: string | Date;
}

const fromRecord = (record: PaymentRecord): Payment => ({
	id: record.id,
	orderId: record.order_id,
	amount: Number(record.amount),
	currency: "USD",
	status: record.status,
	cardLast4: record.card_last4,
	createdAt: new Date(record.created_at).toISOString()
});

// --- Params -------------------------------------------------------------------------------------

export interface CaptureParams {
	orderId: string;
	userId: string;
	amount: number;
	card: string;
}
export interface OrderIdParams {
	orderId: string;
}


// --- Service ------------------------------------------------------------------------------------

interface PaymentsMethods {
	findPayment(orderId: string, tx?: TxOptions): Promise<Payment | null>;
	paymentOrVoid(orderId: string, tx: TxOptions): Promise<Payment | null>;
}


interface PaymentsSettings extends ServiceSettingSchema {
	rest: string;
}

const PaymentsService: ServiceSchema<PaymentsSettings, PaymentsMethods, DbVars<Models>> = {
	name: "payments",
	mixins: [createDbMixin("payments", defineModels)],

	settings: {
		rest: "/payments"
	},

	actions: {
		/** The payments of one order, for its owner or an admin; 404 for anyone else (orders decides who owns it). */
		list: {
			rest: "GET /",
			auth: "user",
			params: { orderId: idRule, $$strict: "remove" },
			async handler(ctx: Context<OrderIdParams, ShopMeta>): Promise<{ rows: Payment[] }> {
				const { orderId } = ctx.params;
				if (ctx.meta.user!.role !== "admin") await ctx.call("orders.get", { id: orderId });
				const records = await this.db.select<PaymentRecord>(`SELECT ${COLUMNS} FROM payments WHERE order_id = :orderId ORDER BY created_at`, { orderId });
				return { rows: records.map(fromRecord) };
			}
		},

		/**
		 * Charges an order's card once. Answers the payment, `captured` or `declined`; a repeated call
		 * answers the first one's payment and charges nothing more.
		 */
		capture: {
			visibility: "public",
			params: {
				orderId: idRule,
				userId: idRule,
				amount: { type: "number", integer: true, min: 0 },
				card: { type: "string", min: 12, max: 19 }
			},
			async handler(ctx: Context<CaptureParams>): Promise<Payment> {
				const { orderId, userId, amount, card } = ctx.params;
				if (!isValidCardNumber(card)) throw validationError("payment.card", "The card number must be 12 to 19 digits and pass the Luhn check");
				const status: PaymentStatus = decideCharge(card) === "approved" ? "captured" : "declined";
				const payment = await this.db.transaction(async tx => {
					await this.db.serializeOn(`payment:${orderId}`, tx);
					// A payment appears only if the order has none yet and was not voided.
					await this.db.execute(
						`INSERT INTO payments (id, order_id, user_id, amount, status, card_last4, created_at, updated_at)
						 SELECT :id, :orderId, :userId, :amount, :status, :cardLast4, :now, :now
						 WHERE NOT EXISTS (SELECT 1 FROM voided_orders WHERE order_id = :orderId)
						 ON CONFLICT (order_id) DO NOTHING`,
						{ id: randomUUID(), orderId, userId, amount, status, cardLast4: lastFour(card), now: new Date() },
						tx
					);
					return this.findPayment(orderId, tx);
				});
				if (!payment) throw invalidState("This order was voided and cannot be charged", { orderId });
				this.logger.info(`Payment ${payment.status} for order ${orderId}: ${payment.amount} cents, card ending ${payment.cardLast4}`);
				return payment;
			}
		},

		/** Gives the money of an order back (or makes sure none is ever taken). Idempotent. */
		refund: {
			visibility: "public",
			params: { orderId: idRule },
			async handler(ctx: Context<OrderIdParams>): Promise<Payment | null> {
				const { orderId } = ctx.params;
				const payment = await this.db.transaction(async tx => {
					const found = await this.paymentOrVoid(orderId, tx);
					if (found?.status !== "captured") return found;
					await this.db.execute("UPDATE payments SET status = 'refunded', updated_at = :now WHERE order_id = :orderId", { orderId, now: new Date() }, tx);
					return { ...found, status: "refunded" as const };
				});
				if (payment?.status === "refunded") this.logger.info(`Refunded order ${orderId}: ${payment.amount} cents`);
				return payment;
			}
		},

		/**
		 * The final word on an order's payment when its caller lost track (timeout, crash): the payment
		 * if one was made, otherwise null, and from then on the order can no longer be charged.
		 */
		resolve: {
			visibility: "public",
			params: { orderId: idRule },
			handler(ctx: Context<OrderIdParams>): Promise<Payment | null> {
				return this.db.transaction(tx => this.paymentOrVoid(ctx.params.orderId, tx));
			}
		}
	},

	methods: {
		async findPayment(orderId: string, tx: TxOptions = {}): Promise<Payment | null> {
			const [record] = await this.db.select<PaymentRecord>(`SELECT ${COLUMNS} FROM payments WHERE order_id = :orderId`, { orderId }, tx);
			return record ? fromRecord(record) : null;
		},

		/** The order's payment; when it has none, a void, so that no capture can ever charge it. */
		async paymentOrVoid(orderId: string, tx: TxOptions): Promise<Payment | null> {
			// Against a capture of the same order in another transaction (PostgreSQL); SQLite writes one at a time.
			await this.db.serializeOn(`payment:${orderId}`, tx);
			const payment = await this.findPayment(orderId, tx);
			if (payment) return payment;
			await this.db.execute(
				"INSERT INTO voided_orders (order_id, created_at) VALUES (:orderId, :now) ON CONFLICT (order_id) DO NOTHING",
				{ orderId, now: new Date() },
				tx
			);
			return null;
		}
	}
};

export default PaymentsService;
