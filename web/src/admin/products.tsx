/** Products: list and search, create, edit (name, description, price) and restock; errors at the field. */
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { call, get, query, type Page, type Product } from "../shared/api";
import { explain } from "../shared/errors";
import { money, toCents } from "../shared/format";
import { navigate } from "../shared/router";
import { Field, Notice, Pager, PageTitle, SearchForm } from "../shared/ui";
import { relogin, token } from "./state";

type Panel = { mode: "create" } | { mode: "edit"; product: Product } | { mode: "restock"; product: Product } | null;

const dollars = (cents: number) => (cents / 100).toFixed(2);

/** The form of a panel, with its heading focused when it opens. */
function PanelForm({
	title,
	onSubmit,
	onClose,
	children,
	busy,
	error
}: {
	title: string;
	onSubmit: () => void;
	onClose: () => void;
	children: ComponentChildren;
	busy: boolean;
	error: string;
}) {
	const heading = useRef<HTMLHeadingElement>(null);
	useEffect(() => heading.current?.focus(), [title]);
	return (
		<section class="panel" aria-labelledby="panel-title">
			<h2 id="panel-title" ref={heading} tabIndex={-1}>
				{title}
			</h2>
			<form
				class="form"
				noValidate
				onSubmit={event => {
					event.preventDefault();
					onSubmit();
				}}
			>
				{children}
				<Notice kind="error">{error}</Notice>
				<div class="inline-form">
					<button type="submit" disabled={busy}>
						Save
					</button>
					<button type="button" class="secondary" onClick={onClose}>
						Close
					</button>
				</div>
			</form>
		</section>
	);
}

function ProductForm({ panel, onDone, onClose }: { panel: Exclude<Panel, null>; onDone: (message: string) => void; onClose: () => void }) {
	const editing = panel.mode === "edit" ? panel.product : null;
	const [sku, setSku] = useState("");
	const [name, setName] = useState(editing?.name ?? "");
	const [description, setDescription] = useState(editing?.description ?? "");
	const [price, setPrice] = useState(editing ? dollars(editing.price) : "");
	const [stock, setStock] = useState("0");
	const [quantity, setQuantity] = useState("10");
	const [fields, setFields] = useState<Record<string, string>>({});
	const [error, setError] = useState("");
	const [busy, setBusy] = useState(false);

	async function save() {
		setError("");
		const local: Record<string, string> = {};
		let body: Record<string, unknown>;
		let path: string;
		let method = "POST";
		if (panel.mode === "restock") {
			const units = Number(quantity);
			if (!Number.isInteger(units) || units < 1) local.quantity = "Enter a whole number of units, 1 or more.";
			body = { quantity: units };
			path = `/products/${encodeURIComponent(panel.product.id)}/restock`;
		} else {
			const cents = toCents(price);
			if (cents === null) local.price = "Enter an amount in dollars, like 12.50.";
			body = { name, description, price: cents };
			if (panel.mode === "create") {
				const units = Number(stock);
				if (!Number.isInteger(units) || units < 0) local.stock = "Enter a whole number of units, 0 or more.";
				body = { sku, ...body, stock: units };
				path = "/products";
			} else {
				method = "PATCH";
				path = `/products/${encodeURIComponent(panel.product.id)}`;
			}
		}
		setFields(local);
		if (Object.keys(local).length > 0) {
			setError("Please correct the fields marked below.");
			return;
		}
		setBusy(true);
		try {
			const { body: product } = await call<Product>(method, path, { token: token(), body });
			onDone(
				panel.mode === "create"
					? `Created ${product.name} (${product.sku}).`
					: panel.mode === "edit"
						? `Saved ${product.name}.`
						: `Restocked ${product.name}: ${product.stock} in stock now.`
			);
		} catch (err) {
			const explained = explain(err, "admin");
			if (explained.login) return relogin();
			const atFields = { ...explained.fields };
			if ((err as { type?: string }).type === "ALREADY_EXISTS") atFields.sku = "Another product has this SKU.";
			setFields(atFields);
			setError(explained.message);
		} finally {
			setBusy(false);
		}
	}

	if (panel.mode === "restock") {
		return (
			<PanelForm title={`Restock ${panel.product.name}`} onSubmit={() => void save()} onClose={onClose} busy={busy} error={error}>
				<p>{panel.product.stock} in stock now.</p>
				<Field label="Units to add" type="number" min={1} value={quantity} onValue={setQuantity} error={fields.quantity} required />
			</PanelForm>
		);
	}
	return (
		<PanelForm title={editing ? `Edit ${editing.name}` : "New product"} onSubmit={() => void save()} onClose={onClose} busy={busy} error={error}>
			{!editing && <Field label="SKU" value={sku} onValue={setSku} error={fields.sku} required hint="A unique code, e.g. MUG-BLUE-01." />}
			<Field label="Name" value={name} onValue={setName} error={fields.name} required />
			<Field label="Description" value={description} onValue={setDescription} error={fields.description} />
			<Field label="Price (USD)" value={price} onValue={setPrice} error={fields.price} inputMode="decimal" required />
			{!editing && <Field label="Stock" type="number" min={0} value={stock} onValue={setStock} error={fields.stock} required />}
		</PanelForm>
	);
}

export function Products({ params }: { params: URLSearchParams }) {
	const search = params.get("search") ?? "";
	const page = Math.max(1, Number(params.get("page")) || 1);
	const [answer, setAnswer] = useState<Page<Product> | null>(null);
	const [panel, setPanel] = useState<Panel>(null);
	const [news, setNews] = useState("");
	const [error, setError] = useState("");

	const load = useCallback(() => {
		get<Page<Product>>(`/products${query({ search, page, pageSize: 20 })}`).then(setAnswer, err => setError(explain(err, "catalogue").message));
	}, [search, page]);
	useEffect(load, [load]);

	const go = (next: { search?: string; page?: number }) => navigate(`/admin/products${query({ search: next.search ?? search, page: next.page })}`);

	return (
		<>
			<PageTitle title="Products · Back office">Products</PageTitle>
			<div class="inline-form">
				<button type="button" onClick={() => setPanel({ mode: "create" })}>
					New product
				</button>
				<SearchForm id="product-search" initial={search} onSearch={typed => go({ search: typed, page: 1 })} />
			</div>
			<Notice kind="success">{news}</Notice>
			<Notice kind="error">{error}</Notice>
			{panel && (
				<ProductForm
					key={panel.mode + (panel.mode === "create" ? "" : panel.product.id)}
					panel={panel}
					onClose={() => setPanel(null)}
					onDone={message => {
						setPanel(null);
						setNews(message);
						load();
					}}
				/>
			)}
			{answer && (
				<table class="lines">
					<caption>
						{answer.total} product{answer.total === 1 ? "" : "s"}
						{search ? ` matching “${search}”` : ""}
					</caption>
					<thead>
						<tr>
							<th scope="col">Name</th>
							<th scope="col">SKU</th>
							<th scope="col">Price</th>
							<th scope="col">Stock</th>
							<th scope="col">Actions</th>
						</tr>
					</thead>
					<tbody>
						{answer.rows.map(product => (
							<tr key={product.id}>
								<th scope="row">{product.name}</th>
								<td>{product.sku}</td>
								<td>{money(product.price)}</td>
								<td>{product.stock}</td>
								<td class="inline-form">
									<button type="button" class="secondary" onClick={() => setPanel({ mode: "edit", product })} aria-label={`Edit ${product.name}`}>
										Edit
									</button>
									<button type="button" class="secondary" onClick={() => setPanel({ mode: "restock", product })} aria-label={`Restock ${product.name}`}>
										Restock
									</button>
								</td>
							</tr>
						))}
					</tbody>
				</table>
			)}
			{answer && <Pager page={answer.page} totalPages={answer.totalPages} onPage={p => go({ page: p })} />}
		</>
	);
}
