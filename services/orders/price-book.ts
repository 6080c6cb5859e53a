/**
 * The prices this orders node last saw, per product: what a new order is written with before its
 * stock is reserved, so that most orders need no `inventory.getMany` round trip of their own.
 *
 * Never the price an order is charged: `inventory.reserve` answers each line as priced when its
 * units were taken, and an order written with a price, sku or name that changed meanwhile is
 * corrected before its payment is captured (order-saga.mixin.ts). So an entry may be stale
 * (nothing drops it when the catalogue changes): that costs the one order that finds out a second
 * write, never a wrong charge. Bounded: the least recently used products are forgotten.
 */
import { LRUCache } from "lru-cache";
import type { OrderItem, ProductPrice, StockLine } from "../../lib/types";

const MAX_PRODUCTS = 10_000;

export class PriceBook {
	private readonly prices = new LRUCache<string, ProductPrice>({ max: MAX_PRODUCTS });

	/** Every line's product as last seen, or undefined when one of them was not seen yet. */
	pricesOf(lines: StockLine[]): ProductPrice[] | undefined {
		const found: ProductPrice[] = [];
		for (const { productId } of lines) {
			const price = this.prices.get(productId);
			if (!price) return undefined;
			found.push(price);
		}
		return found;
	}

	remember(products: ProductPrice[]): void {
		for (const product of products) this.prices.set(product.id, product);
	}

	rememberItems(items: OrderItem[]): void {
		for (const item of items) this.prices.set(item.productId, { id: item.productId, sku: item.sku, name: item.name, price: item.unitPrice });
	}
}
