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
import type { Context, ServiceSchema } from "moleculer";
import { decideCharge, isValidCardNumber, lastFour } from "../../lib/cards";
import { invalidState, validationError } from "../../lib/errors";
import { shopConfig } from "../../lib/config";
import { idRule, ORDERS_PER_CALL_MAX, type IdParams, type OrderRefParams } from "../../lib/params";
import type { Order, Payment, ShopMeta } from "../../lib/types";
import { createDbMixin, type DbSettings, type DbVars } from "../../mixins/db.mixin";
import { migrations } from "./payments.migrations";
import { PaymentsStore } from "./payments.store";

// --- Params -------------------------------------------------------------------------------------

export interface CaptureParams {
	orderId: string;
	userId: string;
	amount: number;
	card: string;
}

/** `payments.ofOrders`: the orders whose payments to answer (one page of the admin export). */
export interface OrderIdsParams {
	orderIds: string[];
}

// --- Service ------------------------------------------------------------------------------------

interface PaymentsSettings extends DbSettings {
	rest: string;
}

const PaymentsService: ServiceSchema<PaymentsSettings, object, DbVars<PaymentsStore>> = {
	name: "payments",
	mixins: [createDbMixin({ migrations, createStore: db => new PaymentsStore(db) })],

	settings: {
		db: shopConfig().dbUrl("payments"),
		rest: "/payments"
	},

	actions: {
		/** The payments of one order, for its owner or an admin; 404 for anyone else (orders decides who owns it). */
		list: {
			rest: "GET /",
			auth: "user",
			params: { orderId: idRule, $$strict: "remove" },
			async handler(ctx: Context<OrderRefParams, ShopMeta>): Promise<{ rows: Payment[] }> {
				const { orderId } = ctx.params;
				if (ctx.meta.user!.role !== "admin") await ctx.call<Order, IdParams>("orders.get", { id: orderId });
				return { rows: await this.store.listForOrder(orderId) };
			}
		},

		/**
		 * The payments of many orders at once, for the orders service's admin export (one call per page
		 * of orders instead of one per order). On the bus only: no REST route; the export checks the admin.
		 */
		ofOrders: {
			visibility: "public",
			params: { orderIds: { type: "array", max: ORDERS_PER_CALL_MAX, items: idRule } },
			async handler(ctx: Context<OrderIdsParams>): Promise<Payment[]> {
				return this.store.listForOrders(ctx.params.orderIds);
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
				const id = randomUUID();
				const payment = await this.store.capture({
					id,
					orderId,
					userId,
					amount,
					status: decideCharge(card) === "approved" ? "captured" : "declined",
					cardLast4: lastFour(card)
				});
				if (!payment) throw invalidState("This order was voided and cannot be charged", { orderId });
				// A retry (the settle loop, a caller's timeout) answers the first payment: say so, lest the log read as a second charge.
				if (payment.id !== id) this.logger.info(`Order ${orderId} already has its payment (${payment.status}): nothing charged again`);
				else this.logger.info(`Payment ${payment.status} for order ${orderId}: ${payment.amount} cents, card ending ${payment.cardLast4}`);
				return payment;
			}
		},

		/** Gives the money of an order back (or makes sure none is ever taken). Idempotent. */
		refund: {
			visibility: "public",
			params: { orderId: idRule },
			async handler(ctx: Context<OrderRefParams>): Promise<Payment | null> {
				const { orderId } = ctx.params;
				const payment = await this.store.refund(orderId);
				if (payment?.status === "refunded") this.logger.info(`Refunded order ${orderId}: ${payment.amount} cents`);
				return payment ?? null;
			}
		},

		/**
		 * The final word on an order's payment when its caller lost track (timeout, crash): the payment
		 * if one was made, otherwise null, and from then on the order can no longer be charged.
		 */
		resolve: {
			visibility: "public",
			params: { orderId: idRule },
			async handler(ctx: Context<OrderRefParams>): Promise<Payment | null> {
				return (await this.store.resolve(ctx.params.orderId)) ?? null;
			}
		}
	}
};

export default PaymentsService;
