/** Every error of the contract, in words a person can act on (never a status code). */
import { ApiError } from "./api";

/** What the shop calls each service, for "the X part of the shop is down". */
const PARTS: Record<string, string> = {
	users: "accounts and sign-in",
	inventory: "catalogue",
	orders: "ordering",
	payments: "payments",
	api: "shop"
};

/** What the call was about, for the few answers that depend on it. */
export type Topic = "login" | "register" | "checkout" | "order" | "product" | "catalogue" | "admin";

export interface Explained {
	message: string;
	/** Fields of a 422, each with why (forms show them at the field). */
	fields: Record<string, string>;
	/** True when the person must log in (again) first. */
	login: boolean;
}

export function explain(err: unknown, topic: Topic, names: Record<string, string> = {}): Explained {
	const fields: Record<string, string> = {};
	if (!(err instanceof ApiError)) {
		return { message: "Something went wrong in this page. Reload it and try again.", fields, login: false };
	}
	const done = (message: string, login = false): Explained => ({ message, fields, login });
	switch (err.status) {
		case 0:
			return done("The shop cannot be reached right now. Check your connection, then try again.");
		case 400:
			return done("The shop did not understand that request. Reload the page and try again.");
		case 401:
			if (topic === "login") return done("That email and password do not match an account. Check both and try again.");
			return done("Please log in to continue. You will come back here afterwards.", true);
		case 403:
			return done("Your account may not do this: it needs an administrator.");
		case 404:
			if (topic === "order") return done("There is no such order in your account.");
			if (topic === "product") return done("This product is no longer in the catalogue.");
			if (topic === "checkout") return done("A product in your cart is no longer sold. Remove it from the cart and try again.");
			return done("That was not found.");
		case 409:
			if (err.type === "OUT_OF_STOCK") {
				const short = ((err.data as { products?: Array<{ productId: string; available: number }> } | null)?.products ?? []).map(
					product => `${names[product.productId] ?? "a product"} (only ${product.available} left)`
				);
				return done(
					short.length > 0
						? `Not enough stock of ${short.join(", ")}. Lower the quantity or remove it from your cart; nothing was charged.`
						: "Some products in your cart are out of stock. Lower the quantities; nothing was charged."
				);
			}
			if (err.type === "ALREADY_EXISTS") {
				if (topic === "register") return done("An account with this email already exists. Log in instead, or use another email.");
				if (topic === "admin") return done("Another product already has this SKU. Choose a different SKU.");
				return done("This already exists.");
			}
			if (err.type === "INVALID_STATE") return done("This order is already cancelled: there is nothing more to refund.");
			return done(err.message);
		case 402:
			return done("Your card was declined by the bank. Nothing was charged: try another card.");
		case 413:
			return done("That is too much text to send. Shorten it and try again.");
		case 422:
			for (const { field, message } of err.fields) fields[field.replace(/^payment\./, "")] = message;
			return done(
				err.fields.length > 0
					? `Please correct: ${err.fields.map(({ field, message }) => `${labelOf(field)}: ${message}`).join("; ")}`
					: "Some of what you entered is not valid. Check the form and try again."
			);
		case 429:
			return done("Too many attempts in a short time. Wait a minute, then try again.");
		case 503: {
			const service = (err.data as { service?: unknown } | null)?.service;
			const part = typeof service === "string" ? (PARTS[service] ?? service) : null;
			return done(
				part
					? `The ${part} part of the shop is down right now. The rest of the shop still works: try this again in a moment.`
					: "Part of the shop is down right now. The rest still works: try again in a moment."
			);
		}
		default:
			return done("Something went wrong on the shop's side. Try again in a moment.");
	}
}

const LABELS: Record<string, string> = {
	"payment.card": "card number",
	card: "card number",
	email: "email",
	password: "password",
	name: "name",
	sku: "SKU",
	price: "price",
	stock: "stock",
	quantity: "quantity",
	description: "description"
};
const labelOf = (field: string) => LABELS[field] ?? field;
