/** Money is integer cents in the API; people read dollars. */
const dollars = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
export const money = (cents: number) => dollars.format(cents / 100);

const when = new Intl.DateTimeFormat("en-US", { dateStyle: "medium", timeStyle: "medium" });
export const dateTime = (iso: string) => when.format(new Date(iso));
const clock = new Intl.DateTimeFormat("en-US", { timeStyle: "medium" });
export const timeOfDay = (iso: string) => clock.format(new Date(iso));

/** "12 s", "3 min", "2 h": how long ago. */
export function age(iso: string, now = Date.now()): string {
	const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
	if (seconds < 90) return `${seconds} s`;
	if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min`;
	return `${Math.round(seconds / 3600)} h`;
}

export const CANCEL_REASONS: Record<string, string> = {
	out_of_stock: "out of stock",
	payment_declined: "card declined",
	payment_failed: "payment could not be taken",
	cancelled_by_user: "cancelled by the customer"
};

/** Dollars typed by a person ("12.50") to cents, or null when it is not an amount. */
export function toCents(text: string): number | null {
	const match = /^\s*\$?\s*(\d{1,9})(?:[.,](\d{1,2}))?\s*$/.exec(text);
	if (!match) return null;
	return Number(match[1]) * 100 + Number((match[2] ?? "0").padEnd(2, "0"));
}
