/**
 * The admin export of every order with its payments, for audits (lib/books.ts) and operators:
 *
 *   GET /api/admin/orders/export?after=<cursor>&limit=<1..1000, default 100>
 *   → 200 { rows: [order + ownerNode + payments: [payment]], next: <cursor> | null }
 *
 * Oldest first, paged by keyset on the orders' insertion sequence (orders-002 migration), never by
 * OFFSET: a page costs the same wherever it starts, and orders created while an export runs neither
 * shift the pages nor make one repeat: every order that existed when the export began is listed
 * exactly once; those created meanwhile come at the end, at most once. `next` is null on the page
 * that reached the end. On PostgreSQL a sequence number is taken at insert, not at commit, so an
 * order committed just after a later-numbered one can fall behind a page already read: a later call
 * with the last cursor may miss such an order (SQLite writes one transaction at a time: it does
 * not). The cursor is opaque to clients. Each page asks payments for all its orders' payments in
 * one call.
 */
import type { Context, ServiceSchema } from "moleculer";
import { forbidden, validationError } from "../../lib/errors";
import { toPublicOrder } from "../../lib/order-rules";
import { ORDERS_PER_CALL_MAX } from "../../lib/params";
import type { Payment, ShopMeta } from "../../lib/types";
import type { OrderIdsParams } from "../payments/payments.service";
import type { AdminOrder } from "./orders.service";
import type { OrdersMethods, OrdersSettings, OrdersThis, OrdersVars } from "./orders.types";

export interface ExportParams {
	after?: string;
	limit: number;
}

/** An order as the export lists it: what an admin sees of it, with its payments. */
export type ExportedOrder = AdminOrder & { payments: Payment[] };

export interface ExportPage {
	rows: ExportedOrder[];
	/** The `after` of the next page; null when this page reached the last order. */
	next: string | null;
}

/** A cursor is the insertion number of the page's last order, in decimal. */
const CURSOR = /^(0|[1-9][0-9]{0,14})$/;

const schema: Partial<ServiceSchema<OrdersSettings, OrdersMethods, OrdersVars>> = {
	actions: {
		export: {
			rest: "GET /export",
			auth: "admin",
			params: {
				after: { type: "string", optional: true, max: 64 },
				limit: { type: "number", integer: true, min: 1, max: ORDERS_PER_CALL_MAX, convert: true, default: 100 },
				$$strict: "remove"
			},
			async handler(this: OrdersThis, ctx: Context<ExportParams, ShopMeta>): Promise<ExportPage> {
				// The gateway checks `auth`; this also holds for a call made on the bus.
				if (ctx.meta.user?.role !== "admin") throw forbidden("Only an admin may export the orders");
				const { after, limit } = ctx.params;
				if (after !== undefined && !CURSOR.test(after)) throw validationError("after", "The cursor must be the `next` of an earlier page", "cursor");
				const page = await this.store.exportPage(after === undefined ? 0 : Number(after), limit);
				const orderIds = page.map(({ order }) => order.id);
				const payments = orderIds.length === 0 ? [] : await ctx.call<Payment[], OrderIdsParams>("payments.ofOrders", { orderIds });
				const byOrder = new Map<string, Payment[]>();
				for (const payment of payments) byOrder.set(payment.orderId, [...(byOrder.get(payment.orderId) ?? []), payment]);
				return {
					rows: page.map(({ order }) => ({ ...toPublicOrder(order), ownerNode: order.ownerNode, payments: byOrder.get(order.id) ?? [] })),
					next: page.length < limit ? null : String(page[page.length - 1].seq)
				};
			}
		}
	}
};

export const ExportMixin = schema as unknown as Partial<ServiceSchema>;

/** The alias table's source for the action above (see lib/rest-aliases.ts): `/api/admin/orders/export`. */
export const exportRestSource = { name: "orders", settings: { rest: "/admin/orders" }, actions: schema.actions };
