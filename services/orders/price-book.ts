/**
 * The prices this orders node last saw, per product: what a new order is written with before its
 * stock is reserved, so that most orders need no `inventory.getMany` round trip of their own.
 *
 * Never the price an order is charged: `inventory.reserve` answers each line as priced when its
 * units were taken, and an order written with a price, sku or name that changed meanwhile is
 * corrected before its payment is captured (order-saga.mixin.ts). So an entry may be stale
 * (nothing drops it when the catalogue changes): that costs the one order that finds out a second
 * write, never a wrong charge. Bounded: the least recently used products are forgotten.
 *
 * An inventory node of an earlier version answers a reservation without its prices: the order is
 * then checked against `inventory.getMany` before it is charged, and the book is not used until a
 * reservation answers its prices again.
 */
import { LRUCache } from "lru-cache";
import type { OrderItem, ProductPrice, StockLine } from "../../lib/types";

const MAX_PRODUCTS = 10_000;
/**
 * Orders awaiting their check, at most: an order another node finished (its settle loop) is never
 * checked here, so the oldest are forgotten rather than kept for good.
 */
const MAX_UNCHECKED = 100_000;

export class PriceBook {
	private readonly prices = new LRUCache<string, ProductPrice>({ max: MAX_PRODUCTS });
	/**
	 * Whether inventory's reservations answer their prices (the last answer did). An inventory node of
	 * an earlier version does not: then the book is not used (a rolling upgrade), until one does again.
	 */
	private reservesPriced = true;
	/** Orders written with the book's prices and not checked by a reservation yet. */
	private readonly unchecked = new LRUCache<string, true>({ max: MAX_UNCHECKED });

	/** Every line's product as last seen, or undefined when one of them was not seen yet (or the book is not in use). */
	pricesOf(lines: StockLine[]): ProductPrice[] | undefined {
		if (!this.reservesPriced) return undefined;
		const found: ProductPrice[] = [];
		for (const { productId } of lines) {
			const price = this.prices.get(productId);
			if (!price) return undefined;
			found.push(price);
		}
		return found;
	}

	/** An order was written with the book's prices: they are to be checked before it is charged. */
	written(orderId: string): void {
		this.unchecked.set(orderId, true);
	}

	/** Whether the order was written with the book's prices and not checked since. */
	isUnchecked(orderId: string): boolean {
		return this.unchecked.has(orderId);
	}

	/** The order's prices were checked (or it needs no check any more). */
	checked(orderId: string): void {
		this.unchecked.delete(orderId);
	}

	/** What a reservation answered: with prices (the book may be used) or without (an earlier inventory version: not). */
	reserveAnswered(priced: boolean): void {
		this.reservesPriced = priced;
	}

	remember(products: ProductPrice[]): void {
		for (const product of products) this.prices.set(product.id, product);
	}

	rememberItems(items: OrderItem[]): void {
		for (const item of items) this.prices.set(item.productId, { id: item.productId, sku: item.sku, name: item.name, price: item.unitPrice });
	}
}
