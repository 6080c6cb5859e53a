/** My orders and one order: its status follows the shop by itself (polled while pending); cancel shows the refund. */
import { useCallback, useEffect, useState } from "preact/hooks";
import { call, get, query, type Order, type Page, type Payment } from "../shared/api";
import { explain } from "../shared/errors";
import { CANCEL_REASONS, dateTime, money } from "../shared/format";
import { navigate } from "../shared/router";
import { Notice, Pager, PageTitle, useInterval } from "../shared/ui";
import { session } from "./state";

/** How often a pending order is asked for again. */
const POLL_MS = 1000;

export function StatusBadge({ order }: { order: Pick<Order, "status" | "cancelReason"> }) {
	const reason = order.cancelReason ? ` (${CANCEL_REASONS[order.cancelReason] ?? order.cancelReason})` : "";
	return (
		<span class={`badge badge-${order.status}`}>
			{order.status === "pending" ? "Pending: being processed" : `${order.status[0].toUpperCase()}${order.status.slice(1)}${reason}`}
		</span>
	);
}

/** Sends to login (and back here) when the session is missing or no longer valid. */
function needLogin(): void {
	session.set(null);
	navigate(`/login?next=${encodeURIComponent(location.pathname + location.search)}`, true);
}

export function Orders({ params }: { params: URLSearchParams }) {
	const token = session.use()?.token;
	const page = Math.max(1, Number(params.get("page")) || 1);
	const [answer, setAnswer] = useState<Page<Order> | null>(null);
	const [error, setError] = useState("");

	const load = useCallback(() => {
		if (!token) return needLogin();
		get<Page<Order>>(`/orders${query({ page, pageSize: 20 })}`, { token }).then(
			got => {
				setAnswer(got);
				setError("");
			},
			err => {
				const explained = explain(err, "order");
				if (explained.login) needLogin();
				else setError(explained.message);
			}
		);
	}, [token, page]);
	useEffect(load, [load]);
	useInterval(load, POLL_MS * 2, answer?.rows.some(order => order.status === "pending") ?? false);

	return (
		<>
			<PageTitle title="My orders · Moleculer shop">My orders</PageTitle>
			<Notice kind="error">{error}</Notice>
			{answer && answer.total === 0 && (
				<p>
					You have no orders yet. <a href="/">Browse the catalogue</a>
				</p>
			)}
			{answer && answer.total > 0 && (
				<table class="lines">
					<caption class="visually-hidden">Your orders, newest first</caption>
					<thead>
						<tr>
							<th scope="col">Order</th>
							<th scope="col">Placed</th>
							<th scope="col">Status</th>
							<th scope="col">Total</th>
						</tr>
					</thead>
					<tbody>
						{answer.rows.map(order => (
							<tr key={order.id}>
								<th scope="row">
									<a href={`/orders/${encodeURIComponent(order.id)}`} aria-label={`Order ${order.id.slice(0, 8)}, ${order.status}`}>
										{order.id.slice(0, 8)}
									</a>
								</th>
								<td>{dateTime(order.createdAt)}</td>
								<td>
									<StatusBadge order={order} />
								</td>
								<td>{money(order.total)}</td>
							</tr>
						))}
					</tbody>
				</table>
			)}
			{answer && <Pager page={answer.page} totalPages={answer.totalPages} onPage={p => navigate(`/orders${query({ page: p })}`)} />}
		</>
	);
}

export function OrderPage({ id, placed }: { id: string; placed: string | null }) {
	const token = session.use()?.token;
	const [order, setOrder] = useState<Order | null>(null);
	const [payments, setPayments] = useState<Payment[]>([]);
	const [error, setError] = useState("");
	const [news, setNews] = useState("");
	const [busy, setBusy] = useState(false);

	const fail = (err: unknown) => {
		const explained = explain(err, "order");
		if (explained.login) needLogin();
		else setError(explained.message);
	};
	const load = useCallback(() => {
		if (!token) return needLogin();
		const path = encodeURIComponent(id);
		Promise.all([get<Order>(`/orders/${path}`, { token }), get<{ rows: Payment[] }>(`/payments${query({ orderId: id })}`, { token })]).then(([got, paid]) => {
			setOrder(previous => {
				if (previous?.status === "pending" && got.status !== "pending") setNews(`Your order is now ${got.status}.`);
				return got;
			});
			setPayments(paid.rows);
			setError("");
		}, fail);
	}, [id, token]);
	useEffect(load, [load]);
	useInterval(load, POLL_MS, order?.status === "pending");

	async function cancel() {
		if (!order) return;
		setBusy(true);
		setError("");
		try {
			const { body } = await call<Order>("POST", `/orders/${encodeURIComponent(order.id)}/cancel`, { token });
			setOrder(body);
			const paid = await get<{ rows: Payment[] }>(`/payments${query({ orderId: order.id })}`, { token });
			setPayments(paid.rows);
			const refunded = paid.rows.find(payment => payment.status === "refunded");
			setNews(
				refunded
					? `Your order is cancelled. ${money(refunded.amount)} was refunded to the card ending ${refunded.cardLast4}.`
					: "Your order is cancelled. Nothing had been charged."
			);
		} catch (err) {
			fail(err);
			load();
		} finally {
			setBusy(false);
		}
	}

	if (!order) {
		return (
			<>
				<PageTitle title="Order · Moleculer shop">{error ? "Order not found" : "Loading the order…"}</PageTitle>
				<Notice kind="error">{error}</Notice>
				<p>
					<a href="/orders">All my orders</a>
				</p>
			</>
		);
	}
	const refund = payments.find(payment => payment.status === "refunded");
	return (
		<>
			<PageTitle title={`Order ${order.id.slice(0, 8)} · Moleculer shop`}>Order {order.id.slice(0, 8)}</PageTitle>
			{placed && order.status === "confirmed" && !news && <Notice kind="success">Thank you! Your order is confirmed and paid.</Notice>}
			{placed && order.status === "pending" && (
				<Notice kind="info">Your order is placed; the payment is still being processed. This page updates by itself.</Notice>
			)}
			<Notice kind="success">{news}</Notice>
			<Notice kind="error">{error}</Notice>
			<dl class="facts">
				<dt>Status</dt>
				<dd aria-live="polite">
					<StatusBadge order={order} />
				</dd>
				<dt>Placed</dt>
				<dd>{dateTime(order.createdAt)}</dd>
				<dt>Total</dt>
				<dd>{money(order.total)}</dd>
				{refund && (
					<>
						<dt>Refund</dt>
						<dd>
							{money(refund.amount)} refunded to the card ending {refund.cardLast4}
						</dd>
					</>
				)}
			</dl>
			<table class="lines">
				<caption>Products</caption>
				<thead>
					<tr>
						<th scope="col">Product</th>
						<th scope="col">Quantity</th>
						<th scope="col">Unit price</th>
						<th scope="col">Subtotal</th>
					</tr>
				</thead>
				<tbody>
					{order.items.map(item => (
						<tr key={item.productId}>
							<th scope="row">{item.name}</th>
							<td>{item.quantity}</td>
							<td>{money(item.unitPrice)}</td>
							<td>{money(item.unitPrice * item.quantity)}</td>
						</tr>
					))}
				</tbody>
			</table>
			{payments.length > 0 && (
				<>
					<h2>Payment</h2>
					<ul>
						{payments.map(payment => (
							<li key={payment.id}>
								{money(payment.amount)}, card ending {payment.cardLast4}: {payment.status}
							</li>
						))}
					</ul>
				</>
			)}
			{order.status !== "cancelled" && (
				<p>
					<button type="button" class="danger" onClick={() => void cancel()} disabled={busy}>
						{busy ? "Cancelling…" : "Cancel order"}
					</button>
				</p>
			)}
			<p>
				<a href="/orders">All my orders</a>
			</p>
		</>
	);
}
