/** The order rules that need no service: lines, totals, the life cycle's transitions, and what a client is answered. */
import type { CancelReason, Order, OrderItem, OrderStatus, ProductPrice, StockLine } from "./types";

/** The order's state as the rules need it. */
type OrderState = { status: OrderStatus; cancelReason: CancelReason | null };

/**
 * The statuses an order may be finished from: pending → confirmed, pending or confirmed → cancelled
 * (its owner may cancel a confirmed order); a cancelled order is final.
 */
export function finishableFrom(status: "confirmed" | "cancelled"): OrderStatus[] {
	return status === "confirmed" ? ["pending"] : ["pending", "confirmed"];
}

/** Nothing is left to do for this order: it is cancelled, or confirmed with no cancellation under way. */
export function isSettled(order: OrderState): boolean {
	return order.status === "cancelled" || (order.status === "confirmed" && order.cancelReason === null);
}

/** What a client sees of an order: a cancellation in progress is not visible until it is done. */
export function toPublicOrder(order: Omit<Order, "currency">): Order {
	return {
		id: order.id,
		userId: order.userId,
		status: order.status,
		items: order.items,
		total: order.total,
		currency: "USD",
		cancelReason: order.status === "cancelled" ? order.cancelReason : null,
		createdAt: order.createdAt,
		updatedAt: order.updatedAt
	};
}

/** Lines of the same product are one line: a client may list a product twice. */
export function mergeLines(lines: StockLine[]): StockLine[] {
	const merged = new Map<string, number>();
	for (const { productId, quantity } of lines) merged.set(productId, (merged.get(productId) ?? 0) + quantity);
	return [...merged].map(([productId, quantity]) => ({ productId, quantity }));
}

/** Prices come from the catalogue at the time of the order, never from the client. */
export function priceLines(lines: StockLine[], products: ProductPrice[]): { items: OrderItem[]; missing: string[] } {
	const byId = new Map(products.map(product => [product.id, product]));
	const missing = lines.filter(line => !byId.has(line.productId)).map(line => line.productId);
	const items = lines
		.filter(line => byId.has(line.productId))
		.map(({ productId, quantity }) => {
			const product = byId.get(productId)!;
			return { productId, sku: product.sku, name: product.name, quantity, unitPrice: product.price };
		});
	return { items, missing };
}

export function orderTotal(items: OrderItem[]): number {
	return items.reduce((sum, item) => sum + item.unitPrice * item.quantity, 0);
}

/** The HTTP status of a create-order answer, from the order's state when it was answered. */
export function answerStatus(status: OrderStatus, cancelReason: CancelReason | null): number {
	if (status === "confirmed") return 201;
	if (status === "pending") return 202;
	if (cancelReason === "out_of_stock") return 409;
	if (cancelReason === "payment_declined") return 402;
	return 409;
}
