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
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { DataTypes, Model, type Sequelize } from "sequelize";
import { decideCharge, isValidCardNumber, lastFour } from "../lib/cards";
import type { TxOptions } from "../lib/database";
import type { Payment, PaymentStatus, ShopMeta } from "../lib/types";
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

const toPayment = (row: PaymentRow): Payment => ({
	id: row.id,
	orderId: row.orderId,
	amount: Number(row.amount),
	currency: "USD",
	status: row.status,
	cardLast4: row.cardLast4,
	createdAt: row.createdAt.toISOString()
});

/** A payment as a raw SELECT answers it (the hot path's read). */
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

const idRule = { type: "string", min: 1, max: 64 } as const;

// --- Service ------------------------------------------------------------------------------------

interface PaymentsMethods {
	findPayment(orderId: string, tx?: TxOptions): Promise<PaymentRow | null>;
}

type PaymentsThis = Service<PaymentsSettings> & PaymentsMethods & DbVars<Models>;

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
		/** The payments of one order, for its owner or an admin; anyone else sees none. */
		list: {
			rest: "GET /",
			auth: "user",
			params: { orderId: idRule, $$strict: "remove" },
			async handler(ctx: Context<OrderIdParams, ShopMeta>): Promise<{ rows: Payment[] }> {
				const user = ctx.meta.user!;
				const where = user.role === "admin" ? { orderId: ctx.params.orderId } : { orderId: ctx.params.orderId, userId: user.id };
				const rows = await this.models.Payment.findAll({ where, order: [["created_at", "ASC"]] });
				return { rows: rows.map(toPayment) };
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
				// One statement: a payment appears only if the order has none yet and was not voided.
				const row = await this.db.write(async tx => {
					await this.db.execute(
						`INSERT INTO payments (id, order_id, user_id, amount, status, card_last4, created_at, updated_at)
						 SELECT :id, :orderId, :userId, :amount, :status, :cardLast4, :now, :now
						 WHERE NOT EXISTS (SELECT 1 FROM voided_orders WHERE order_id = :orderId)
						 ON CONFLICT (order_id) DO NOTHING`,
						{ id: randomUUID(), orderId, userId, amount, status, cardLast4: lastFour(card), now: new Date() },
						tx
					);
					const [payment] = await this.db.select<PaymentRecord>(
						"SELECT id, order_id, amount, status, card_last4, created_at FROM payments WHERE order_id = :orderId",
						{ orderId },
						tx
					);
					return payment;
				});
				if (!row) throw invalidState("This order was voided and cannot be charged", { orderId });
				const payment = fromRecord(row);
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
				const row = await this.db.transaction(async tx => {
					const payment = await this.findPayment(orderId, tx);
					if (!payment) {
						await this.models.VoidedOrder.bulkCreate([{ orderId }], { ignoreDuplicates: true, ...tx });
						return null;
					}
					if (payment.status === "captured") await payment.update({ status: "refunded" }, tx);
					return payment;
				});
				if (row?.status === "refunded") this.logger.info(`Refunded order ${orderId}: ${row.amount} cents`);
				return row ? toPayment(row) : null;
			}
		},

		/**
		 * The final word on an order's payment when its caller lost track (timeout, crash): the payment
		 * if one was made, otherwise null, and from then on the order can no longer be charged.
		 */
		resolve: {
			visibility: "public",
			params: { orderId: idRule },
			async handler(ctx: Context<OrderIdParams>): Promise<Payment | null> {
				const { orderId } = ctx.params;
				const row = await this.db.transaction(async tx => {
					const payment = await this.findPayment(orderId, tx);
					if (payment) return payment;
					await this.models.VoidedOrder.bulkCreate([{ orderId }], { ignoreDuplicates: true, ...tx });
					return null;
				});
				return row ? toPayment(row) : null;
			}
		}
	},

	methods: {
		findPayment(orderId: string, tx: TxOptions = {}) {
			return this.models.Payment.findOne({ where: { orderId }, ...tx });
		}
	}
};

export default PaymentsService;
