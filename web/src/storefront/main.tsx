/** The storefront: catalogue, product, cart and checkout, account, my orders. */
import { render } from "preact";
import "../shared/style.css";
import { linkHandler, useLocation } from "../shared/router";
import { PageTitle } from "../shared/ui";
import { Account } from "./account";
import { Cart } from "./cart";
import { Catalogue, ProductPage } from "./catalogue";
import { OrderPage, Orders } from "./orders";
import { cart, cartCount, session } from "./state";

function Page() {
	const { path, params } = useLocation();
	if (path === "/" || path === "/index.html") return <Catalogue params={params} />;
	const product = /^\/products\/([^/]+)$/.exec(path);
	if (product) return <ProductPage id={decodeURIComponent(product[1])} />;
	if (path === "/cart") return <Cart />;
	if (path === "/login" || path === "/register") return <Account mode={path === "/login" ? "login" : "register"} next={params.get("next")} />;
	if (path === "/orders") return <Orders params={params} />;
	const order = /^\/orders\/([^/]+)$/.exec(path);
	if (order) return <OrderPage id={decodeURIComponent(order[1])} placed={params.get("placed")} />;
	return (
		<>
			<PageTitle title="Not found · Moleculer shop">Page not found</PageTitle>
			<p>
				There is no page here. <a href="/">Back to the shop</a>
			</p>
		</>
	);
}

function Header() {
	const user = session.use()?.user;
	const count = cartCount(cart.use());
	return (
		<header class="top">
			<a class="brand" href="/">
				Moleculer shop
			</a>
			<nav aria-label="Main">
				<ul>
					<li>
						<a href="/">Catalogue</a>
					</li>
					<li>
						<a href="/cart">Cart ({count})</a>
					</li>
					{user ? (
						<>
							<li>
								<a href="/orders">My orders</a>
							</li>
							<li>
								<button type="button" class="link" onClick={() => session.set(null)}>
									Log out {user.name}
								</button>
							</li>
						</>
					) : (
						<>
							<li>
								<a href="/login">Log in</a>
							</li>
							<li>
								<a href="/register">Register</a>
							</li>
						</>
					)}
				</ul>
			</nav>
		</header>
	);
}

function App() {
	return (
		<div onClick={linkHandler(path => !path.startsWith("/admin"))}>
			<a class="skip" href="#main">
				Skip to content
			</a>
			<Header />
			<main id="main" tabIndex={-1}>
				<Page />
			</main>
			<footer>
				<p>Test cards: 4242 4242 4242 4242 is approved, 4000 0000 0000 0002 is declined.</p>
			</footer>
		</div>
	);
}

render(<App />, document.getElementById("app")!);
