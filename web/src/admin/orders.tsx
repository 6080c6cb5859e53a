/** Orders: filtered by status and cancel reason, the stuck pending ones marked; one order's lines, payment and history; cancel with refund. */
import { useCallback, useEffect, useState } from "preact/hooks";
import { call, get, query, type Order, type Page, type Payment } from "../shared/api";
import { explain } from "../shared/errors";
import { age, CANCEL_REASONS, dateTime, money } from "../shared/format";
import { navigate } from "../shared/router";
import { Notice, Pager, PageTitle, useInterval } from "../shared/ui";
import { relogin, token } from "./state";
import { OrderTrace } from "./trace";

/** A pending order older than this has waited longer than any payment timeout: it stands out. */
const STUCK_AFTER_MS = 10_000;
const REFRESH_MS = 3000;

const isStuck = (order: Order, now: number) => order.status === "pending" && now - Date.parse(order.createdAt) > STUCK_AFTER_MS;

function statusText(order: Pick<Order, "status" | "cancelReason">) {
	return order.status === "cancelled" && order.cancelReason ? `cancelled (${CANCEL_REASONS[order.cancelReason] ?? order.cancelReason})` : order.status;
}

function useAdminLoad<T>(path: string | null, every: number | null) {
	const [answer, setAnswer] = useState<T | null>(null);
	const [error, setError] = useState("");
	const load = useCallback(() => {
		if (path === null) return;
		get<T>(path, { token: token() }).then(
			got => {
				setAnswer(got);
				setError("");
			},
			err => {
				const explained = explain(err, "admin");
				if (explained.login) relogin();
				else setError(explained.message);
			}
		);
	}, [path]);
	useEffect(load, [load]);
	useInterval(load, every ?? 0, every !== null);
	return { answer, error, load, setAnswer };
}

export function AdminOrders({ params }: { params: URLSearchParams }) {
	const status = params.get("status") ?? "";
	const cancelReason = params.get("cancelReason") ?? "";
	const page = Math.max(1, Number(params.get("page")) || 1);
	const { answer, error } = useAdminLoad<Page<Order>>(`/orders${query({ status, cancelReason, page, pageSize: 25 })}`, REFRESH_MS);
	const go = (next: Record<string, string | number | undefined>) => navigate(`/admin/orders${query({ status, cancelReason, ...next })}`, true);
	const now = Date.now();
	const stuck = answer?.rows.filter(order => isStuck(order, now)).length ?? 0;

	return (
		<>
			<PageTitle title="Orders · Back office">Orders</PageTitle>
			<form class="filters" onSubmit={event => event.preventDefault()}>
				<label for="status-filter">Status</label>
				<select id="status-filter" value={status} onChange={event => go({ status: event.currentTarget.value, page: undefined })}>
					<option value="">Any status</option>
					<option value="pending">Pending</option>
					<option value="confirmed">Confirmed</option>
					<option value="cancelled">Cancelled</option>
				</select>
				<label for="reason-filter">Cancel reason</label>
				<select id="reason-filter" value={cancelReason} onChange={event => go({ cancelReason: event.currentTarget.value, page: undefined })}>
					<option value="">Any reason</option>
					{Object.entries(CANCEL_REASONS).map(([value, label]) => (
						<option key={value} value={value}>
							{label}
						</option>
					))}
				</select>
			</form>
			<Notice kind="error">{error}</Notice>
			{stuck > 0 && (
				<Notice kind="info">
					{stuck} order{stuck === 1 ? " has" : "s have"} been pending for over {STUCK_AFTER_MS / 1000} s: marked “stuck” below, with the node attending each.
				</Notice>
			)}
			{answer && (
				<table class="lines">
					<caption>
						{answer.total} order{answer.total === 1 ? "" : "s"}
						{status ? `, ${status}` : ""}
						{cancelReason ? `, ${CANCEL_REASONS[cancelReason] ?? cancelReason}` : ""} (newest first, refreshed every {REFRESH_MS / 1000} s)
					</caption>
					<thead>
						<tr>
							<th scope="col">Order</th>
							<th scope="col">Customer</th>
							<th scope="col">Placed</th>
							<th scope="col">Age</th>
							<th scope="col">Status</th>
							<th scope="col">Total</th>
							<th scope="col">Node</th>
						</tr>
					</thead>
					<tbody>
						{answer.rows.map(order => (
							<tr key={order.id} class={isStuck(order, now) ? "stuck" : undefined}>
								<th scope="row">
									<a href={`/admin/orders/${encodeURIComponent(order.id)}`}>{order.id.slice(0, 8)}</a>
								</th>
								<td>{order.userId.slice(0, 8)}</td>
								<td>{dateTime(order.createdAt)}</td>
								<td>{age(order.createdAt, now)}</td>
								<td>
									<span class={`badge badge-${order.status}`}>{statusText(order)}</span>
									{isStuck(order, now) && <strong> stuck</strong>}
								</td>
								<td>{money(order.total)}</td>
								<td>{order.ownerNode ?? ""}</td>
							</tr>
						))}
					</tbody>
				</table>
			)}
			{answer && <Pager page={answer.page} totalPages={answer.totalPages} onPage={p => go({ page: p })} />}
		</>
	);
}

export function AdminOrder({ id }: { id: string }) {
	const path = encodeURIComponent(id);
	const order = useAdminLoad<Order>(`/orders/${path}`, null);
	const payments = useAdminLoad<{ rows: Payment[] }>(`/payments${query({ orderId: id })}`, null);
	const [busy, setBusy] = useState(false);
	const [news, setNews] = useState("");
	const [error, setError] = useState("");
	useInterval(
		() => {
			order.load();
			payments.load();
		},
		1000,
		order.answer?.status === "pending"
	);

	async function cancel() {
		setBusy(true);
		setError("");
		try {
			const { body } = await call<Order>("POST", `/orders/${path}/cancel`, { token: token() });
			order.setAnswer(body);
			const paid = await get<{ rows: Payment[] }>(`/payments${query({ orderId: id })}`, { token: token() });
			payments.setAnswer(paid);
			const refunded = paid.rows.find(payment => payment.status === "refunded");
			setNews(refunded ? `Cancelled; ${money(refunded.amount)} refunded to the card ending ${refunded.cardLast4}.` : "Cancelled; nothing had been charged.");
		} catch (err) {
			const explained = explain(err, "order");
			if (explained.login) return relogin();
			setError(explained.message);
		} finally {
			setBusy(false);
		}
	}

	const current = order.answer;
	if (!current) {
		return (
			<>
				<PageTitle title="Order · Back office">{order.error ? "Order not found" : "Loading the order…"}</PageTitle>
				<Notice kind="error">{order.error}</Notice>
				<p>
					<a href="/admin/orders">All orders</a>
				</p>
			</>
		);
	}
	const rows = payments.answer?.rows ?? [];
	const history: Array<{ at: string; what: string }> = [
		{ at: current.createdAt, what: "Placed (pending)" },
		...rows.map(payment => ({ at: payment.createdAt, what: `Payment of ${money(payment.amount)}, card ending ${payment.cardLast4}: ${payment.status}` })),
		...(current.status !== "pending" ? [{ at: current.updatedAt, what: `Now ${statusText(current)}` }] : [])
	].sort((a, b) => a.at.localeCompare(b.at));

	return (
		<>
			<PageTitle title={`Order ${current.id.slice(0, 8)} · Back office`}>Order {current.id.slice(0, 8)}</PageTitle>
			<Notice kind="success">{news}</Notice>
			<Notice kind="error">{error || order.error || payments.error}</Notice>
			<dl class="facts">
				<dt>Order id</dt>
				<dd>{current.id}</dd>
				<dt>Customer</dt>
				<dd>{current.userId}</dd>
				<dt>Status</dt>
				<dd>
					<span class={`badge badge-${current.status}`}>{statusText(current)}</span>
				</dd>
				<dt>Total</dt>
				<dd>{money(current.total)}</dd>
				<dt>Age</dt>
				<dd>{age(current.createdAt)}</dd>
			</dl>
			<table class="lines">
				<caption>Lines</caption>
				<thead>
					<tr>
						<th scope="col">Product</th>
						<th scope="col">SKU</th>
						<th scope="col">Quantity</th>
						<th scope="col">Unit price</th>
					</tr>
				</thead>
				<tbody>
					{current.items.map(item => (
						<tr key={item.productId}>
							<th scope="row">{item.name}</th>
							<td>{item.sku}</td>
							<td>{item.quantity}</td>
							<td>{money(item.unitPrice)}</td>
						</tr>
					))}
				</tbody>
			</table>
			<h2>History</h2>
			<ol>
				{history.map(step => (
					<li key={step.at + step.what}>
						<time dateTime={step.at}>{dateTime(step.at)}</time>: {step.what}
					</li>
				))}
			</ol>
			{current.status !== "cancelled" && (
				<p>
					<button type="button" class="danger" onClick={() => void cancel()} disabled={busy}>
						{busy ? "Cancelling…" : "Cancel order and refund"}
					</button>
				</p>
			)}
			<OrderTrace id={current.id} />
			<p>
				<a href="/admin/orders">All orders</a>
			</p>
		</>
	);
}
