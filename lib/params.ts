/** Params rules and shapes several services share, so that they validate and answer alike. */
import type { Page } from "./types";

/** An email address as register, login and ADMIN_EMAIL take it: trimmed and lower-cased. */
export const emailRule = { type: "email", normalize: true, max: 254, empty: false } as const;

/** The most orders one `inventory.commitMany` takes (orders' hold commits send batches of this size). */
export const COMMIT_MANY_MAX = 500;

/** The most orders one bulk read carries: `payments.ofOrders`' ids, the admin export's largest page. */
export const ORDERS_PER_CALL_MAX = 1000;

/** An id in a path or a body: our ids are UUIDs, but any short string is looked up (and 404s). */
export const idRule = { type: "string", min: 1, max: 64 } as const;

/** `?page=&pageSize=` of every list: strings in a query, so converted; at most 100 rows a page. */
export const pageParams = {
	page: { type: "number", integer: true, min: 1, max: 1_000_000, convert: true, default: 1 },
	pageSize: { type: "number", integer: true, min: 1, max: 100, convert: true, default: 20 }
} as const;

export interface PageParams {
	page: number;
	pageSize: number;
}

/** The rows to skip and take for a page. */
export const pageWindow = ({ page, pageSize }: PageParams) => ({ limit: pageSize, offset: (page - 1) * pageSize });

export function toPage<T>(rows: T[], total: number, { page, pageSize }: PageParams): Page<T> {
	return { rows, total, page, pageSize, totalPages: Math.ceil(total / pageSize) };
}

/** A resource named by its id in the path: `GET /orders/:id`. */
export interface IdParams {
	id: string;
}

/** An internal call about one order, to the service that keeps part of it (its stock, its payment). */
export interface OrderRefParams {
	orderId: string;
}
