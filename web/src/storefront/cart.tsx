/**
 * The cart and checkout. The order is sent with an Idempotency-Key made when the cart is ready to
 * buy: a double click, a retry after a lost answer or a reload sends the same key, so the shop
 * answers with the first attempt's order and never charges twice. A final answer (declined, out of
 * stock) or a changed cart makes a new key.
 */
import { useRef, useState } from "preact/hooks";
import { call, type Order } from "../shared/api";
import { explain } from "../shared/errors";
import { money } from "../shared/format";
import { navigate } from "../shared/router";
import { Field, Notice, PageTitle, newKey } from "../shared/ui";
import { cart, cartTotal, MAX_QUANTITY, session, type CartLine } from "./state";

/** The key of the order being placed, kept across reloads while the cart stays the same. */
function checkoutKey(lines: CartLine[], fresh = false): string {
	const signature = JSON.stringify(lines.map(line => [line.productId, line.quantity]));
	try {
		const saved = JSON.parse(sessionStorage.getItem("shop.checkout") ?? "null") as { signature: string; key: string } | null;
		if (!fresh && saved?.signature === signature) return saved.key;
		const key = newKey();
		sessionStorage.setItem("shop.checkout", JSON.stringify({ signature, key }));
		return key;
	} catch {
		return newKey();
	}
}

export function Cart() {
	const lines = cart.use();
	const user = session.use()?.user;
	const [card, setCard] = useState("");
	const [error, setError] = useState("");
	const [fields, setFields] = useState<Record<string, string>>({});
	const [busy, setBusy] = useState(false);
	const sending = useRef(false);

	const setQuantity = (line: CartLine, quantity: number) =>
		cart.set(lines.map(other => (other === line ? { ...other, quantity: Math.max(1, Math.min(MAX_QUANTITY, quantity || 1)) } : other)));
	const remove = (line: CartLine) => cart.set(lines.filter(other => other !== line));

	async function checkout(event: Event) {
		event.preventDefault();
		// One request at a time, whatever the clicks; the key covers what reaches the shop twice anyway.
		if (sending.current) return;
		sending.current = true;
		setBusy(true);
		setError("");
		setFields({});
		const key = checkoutKey(lines);
		try {
			const { body: order } = await call<Order>("POST", "/orders", {
				token: session.get()?.token,
				headers: { "Idempotency-Key": key },
				body: { items: lines.map(line => ({ productId: line.productId, quantity: line.quantity })), payment: { card: card.replace(/[\s-]/g, "") } }
			});
			cart.set([]);
			sessionStorage.removeItem("shop.checkout");
			navigate(`/orders/${encodeURIComponent(order.id)}?placed=1`);
		} catch (err) {
			const names = Object.fromEntries(lines.map(line => [line.productId, `“${line.name}”`]));
			const explained = explain(err, "checkout", names);
			if (explained.login) {
				session.set(null);
				navigate(`/login?next=${encodeURIComponent("/cart")}`);
				return;
			}
			// A final answer: the next attempt is a new order. (A network error or 503 keeps the key: retrying is safe.)
			const status = (err as { status?: number }).status;
			if (status !== 0 && status !== 503) checkoutKey(lines, true);
			setError(explained.message);
			setFields(explained.fields);
		} finally {
			sending.current = false;
			setBusy(false);
		}
	}

	if (lines.length === 0) {
		return (
			<>
				<PageTitle title="Your cart · Moleculer shop">Your cart</PageTitle>
				<p>Your cart is empty.</p>
				<p>
					<a href="/">Browse the catalogue</a>
				</p>
			</>
		);
	}

	return (
		<>
			<PageTitle title="Your cart · Moleculer shop">Your cart</PageTitle>
			<table class="lines">
				<caption class="visually-hidden">Products in your cart</caption>
				<thead>
					<tr>
						<th scope="col">Product</th>
						<th scope="col">Price</th>
						<th scope="col">Quantity</th>
						<th scope="col">Subtotal</th>
						<th scope="col">
							<span class="visually-hidden">Actions</span>
						</th>
					</tr>
				</thead>
				<tbody>
					{lines.map(line => (
						<tr key={line.productId}>
							<th scope="row">
								<a href={`/products/${encodeURIComponent(line.productId)}`}>{line.name}</a>
							</th>
							<td>{money(line.price)}</td>
							<td>
								<input
									type="number"
									min={1}
									max={MAX_QUANTITY}
									value={line.quantity}
									aria-label={`Quantity of ${line.name}`}
									onChange={event => setQuantity(line, Number(event.currentTarget.value))}
								/>
							</td>
							<td>{money(line.price * line.quantity)}</td>
							<td>
								<button type="button" class="secondary" onClick={() => remove(line)} aria-label={`Remove ${line.name} from the cart`}>
									Remove
								</button>
							</td>
						</tr>
					))}
				</tbody>
				<tfoot>
					<tr>
						<th scope="row" colSpan={3}>
							Total
						</th>
						<td colSpan={2}>{money(cartTotal(lines))}</td>
					</tr>
				</tfoot>
			</table>
			<p class="hint">The price is the shop's at the time of the order.</p>

			<h2>Checkout</h2>
			{user ? (
				<form class="form" onSubmit={event => void checkout(event)} noValidate aria-describedby="checkout-help">
					<p id="checkout-help">Paying as {user.email}. Only the card's last four digits are kept.</p>
					<Field
						label="Card number"
						value={card}
						onValue={setCard}
						error={fields.card}
						inputMode="numeric"
						autoComplete="cc-number"
						hint="12 to 19 digits. Test cards: 4242 4242 4242 4242 (approved), 4000 0000 0000 0002 (declined)."
						required
					/>
					<Notice kind="error">{error}</Notice>
					<button type="submit" disabled={busy} aria-busy={busy ? "true" : undefined}>
						{busy ? "Placing your order…" : `Place order · ${money(cartTotal(lines))}`}
					</button>
				</form>
			) : (
				<p>
					<a href={`/login?next=${encodeURIComponent("/cart")}`}>Log in</a> or <a href={`/register?next=${encodeURIComponent("/cart")}`}>create an account</a>{" "}
					to check out. Your cart stays here.
				</p>
			)}
		</>
	);
}
