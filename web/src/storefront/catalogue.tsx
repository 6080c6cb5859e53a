/** The catalogue (search and paging) and a product's page. */
import { useEffect, useState } from "preact/hooks";
import { get, query, type Page, type Product } from "../shared/api";
import { explain } from "../shared/errors";
import { money } from "../shared/format";
import { navigate } from "../shared/router";
import { Notice, Pager, PageTitle, SearchForm } from "../shared/ui";
import { addToCart, MAX_QUANTITY } from "./state";

const PAGE_SIZE = 12;

function Stock({ stock }: { stock: number }) {
	return <span class={stock > 0 ? "stock" : "stock stock-none"}>{stock > 0 ? `${stock} in stock` : "Out of stock"}</span>;
}

/** Announces what was added (a status message, so a screen reader hears it without losing its place). */
function useAdded() {
	const [added, setAdded] = useState("");
	return {
		added,
		add(product: Product, quantity = 1) {
			addToCart(product, quantity);
			setAdded(`Added ${quantity} × ${product.name} to your cart.`);
		}
	};
}

export function Catalogue({ params }: { params: URLSearchParams }) {
	const search = params.get("search") ?? "";
	const page = Math.max(1, Number(params.get("page")) || 1);
	const [answer, setAnswer] = useState<Page<Product> | null>(null);
	const [error, setError] = useState("");
	const { added, add } = useAdded();

	useEffect(() => {
		const abort = new AbortController();
		setError("");
		get<Page<Product>>(`/products${query({ search, page, pageSize: PAGE_SIZE })}`, { signal: abort.signal }).then(setAnswer, err => {
			if (!abort.signal.aborted) setError(explain(err, "catalogue").message);
		});
		return () => abort.abort();
	}, [search, page]);

	const go = (next: { search?: string; page?: number }) =>
		navigate(`/${query({ search: next.search ?? search, page: next.page === 1 ? undefined : next.page })}`);

	return (
		<>
			<PageTitle title={search ? `“${search}” · Moleculer shop` : "Moleculer shop"}>Catalogue</PageTitle>
			<SearchForm id="search" initial={search} onSearch={typed => go({ search: typed, page: 1 })} />
			<Notice kind="error">{error}</Notice>
			<Notice kind="success">{added}</Notice>
			{answer && (
				<>
					<p class="count" aria-live="polite">
						{answer.total === 0
							? search
								? `Nothing matches “${search}”.`
								: "The catalogue is empty."
							: `${answer.total} product${answer.total === 1 ? "" : "s"}${search ? ` matching “${search}”` : ""}`}
					</p>
					<ul class="products">
						{answer.rows.map(product => (
							<li key={product.id}>
								<article aria-labelledby={`p-${product.id}`}>
									<h2 id={`p-${product.id}`}>
										<a href={`/products/${encodeURIComponent(product.id)}`}>{product.name}</a>
									</h2>
									<p class="price">{money(product.price)}</p>
									<p>
										<Stock stock={product.stock} />
									</p>
									<button type="button" disabled={product.stock === 0} onClick={() => add(product)} aria-label={`Add to cart: ${product.name}`}>
										Add to cart
									</button>
								</article>
							</li>
						))}
					</ul>
					<Pager page={answer.page} totalPages={answer.totalPages} onPage={p => go({ page: p })} />
				</>
			)}
		</>
	);
}

export function ProductPage({ id }: { id: string }) {
	const [product, setProduct] = useState<Product | null>(null);
	const [error, setError] = useState("");
	const [quantity, setQuantity] = useState("1");
	const { added, add } = useAdded();

	useEffect(() => {
		get<Product>(`/products/${encodeURIComponent(id)}`).then(setProduct, err => setError(explain(err, "product").message));
	}, [id]);

	if (!product) {
		return (
			<>
				<PageTitle title="Product · Moleculer shop">{error ? "Product not found" : "Loading the product…"}</PageTitle>
				<Notice kind="error">{error}</Notice>
				<p>
					<a href="/">Back to the catalogue</a>
				</p>
			</>
		);
	}
	const wanted = Number(quantity);
	const valid = Number.isInteger(wanted) && wanted >= 1 && wanted <= Math.min(MAX_QUANTITY, product.stock);
	return (
		<>
			<PageTitle title={`${product.name} · Moleculer shop`}>{product.name}</PageTitle>
			<p class="price">{money(product.price)}</p>
			<p>
				<Stock stock={product.stock} />
			</p>
			{product.description && <p class="description">{product.description}</p>}
			<p class="sku">SKU {product.sku}</p>
			<form
				class="inline-form"
				onSubmit={event => {
					event.preventDefault();
					if (valid) add(product, wanted);
				}}
			>
				<label for="quantity">Quantity</label>
				<input
					id="quantity"
					type="number"
					min={1}
					max={Math.max(1, Math.min(MAX_QUANTITY, product.stock))}
					value={quantity}
					onInput={event => setQuantity(event.currentTarget.value)}
					aria-invalid={valid ? undefined : "true"}
				/>
				<button type="submit" disabled={!valid}>
					Add to cart
				</button>
			</form>
			<Notice kind="success">{added}</Notice>
			<p>
				<a href="/">Back to the catalogue</a> · <a href="/cart">Go to the cart</a>
			</p>
		</>
	);
}
