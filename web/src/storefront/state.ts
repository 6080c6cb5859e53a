/** The storefront's own state: who is logged in, and the cart (both kept in this browser only). */
import type { Session } from "../shared/api";
import { stored } from "../shared/store";

export interface CartLine {
	productId: string;
	name: string;
	price: number;
	quantity: number;
}

const isSession = (value: unknown): value is Session | null =>
	value === null || (typeof value === "object" && typeof (value as Session).token === "string" && typeof (value as Session).user?.id === "string");
const isCart = (value: unknown): value is CartLine[] =>
	Array.isArray(value) && value.every(line => typeof line?.productId === "string" && Number.isInteger(line?.quantity) && line.quantity > 0);

export const session = stored<Session | null>("shop.session", null, isSession);
export const cart = stored<CartLine[]>("shop.cart", [], isCart);

/** At most this many of one product in an order (the contract's limit per line). */
export const MAX_QUANTITY = 100;

export function addToCart(product: { id: string; name: string; price: number }, quantity = 1): void {
	const lines = cart.get();
	const found = lines.find(line => line.productId === product.id);
	cart.set(
		found
			? lines.map(line => (line === found ? { ...line, quantity: Math.min(MAX_QUANTITY, line.quantity + quantity) } : line))
			: [...lines, { productId: product.id, name: product.name, price: product.price, quantity: Math.min(MAX_QUANTITY, quantity) }]
	);
}

export const cartCount = (lines: CartLine[]) => lines.reduce((sum, line) => sum + line.quantity, 0);
export const cartTotal = (lines: CartLine[]) => lines.reduce((sum, line) => sum + line.quantity * line.price, 0);
