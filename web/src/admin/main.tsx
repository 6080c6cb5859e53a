/** The back office: products, orders and the cluster, for admins only. */
import { render } from "preact";
import { useState } from "preact/hooks";
import "../shared/style.css";
import { ApiError, call, type Session } from "../shared/api";
import { explain } from "../shared/errors";
import { linkHandler, navigate, useLocation } from "../shared/router";
import { Field, Notice, PageTitle } from "../shared/ui";
import { Cluster } from "./cluster";
import { AdminOrder, AdminOrders } from "./orders";
import { Products } from "./products";
import { adminSession } from "./state";

function Login({ next }: { next: string | null }) {
	const [email, setEmail] = useState("");
	const [password, setPassword] = useState("");
	const [error, setError] = useState("");
	const [busy, setBusy] = useState(false);
	async function submit(event: Event) {
		event.preventDefault();
		setBusy(true);
		setError("");
		try {
			const { body } = await call<Session>("POST", "/users/login", { body: { email, password } });
			if (body.user.role !== "admin") throw new ApiError(403, "FORBIDDEN", "not an admin");
			adminSession.set(body);
			navigate(next && next.startsWith("/admin") ? next : "/admin/products", true);
		} catch (err) {
			setError(explain(err, "login").message);
			setBusy(false);
		}
	}
	return (
		<>
			<PageTitle title="Log in · Back office">Back office: log in</PageTitle>
			<p>
				For the shop's administrators. Customers shop at <a href="/">the storefront</a>.
			</p>
			<form class="form" onSubmit={event => void submit(event)} noValidate>
				<Field label="Email" type="email" value={email} onValue={setEmail} autoComplete="username" required />
				<Field label="Password" type="password" value={password} onValue={setPassword} autoComplete="current-password" required />
				<Notice kind="error">{error}</Notice>
				<button type="submit" disabled={busy}>
					Log in
				</button>
			</form>
		</>
	);
}

const SECTIONS = [
	{ path: "/admin/products", label: "Products" },
	{ path: "/admin/orders", label: "Orders" },
	{ path: "/admin/cluster", label: "Cluster" }
];

function Page() {
	const { path, params } = useLocation();
	const session = adminSession.use();
	if (!session || path === "/admin/login") return <Login next={params.get("next") ?? (path === "/admin/login" ? null : path + location.search)} />;
	if (path === "/admin" || path === "/admin/" || path === "/admin/products") return <Products params={params} />;
	if (path === "/admin/orders") return <AdminOrders params={params} />;
	const order = /^\/admin\/orders\/([^/]+)$/.exec(path);
	if (order) return <AdminOrder id={decodeURIComponent(order[1])} />;
	if (path === "/admin/cluster") return <Cluster />;
	return (
		<>
			<PageTitle title="Not found · Back office">Page not found</PageTitle>
			<p>
				<a href="/admin/products">Back to the products</a>
			</p>
		</>
	);
}

function Header() {
	const { path } = useLocation();
	const session = adminSession.use();
	return (
		<header class="top">
			<a class="brand" href="/admin/products">
				Shop back office
			</a>
			{session && (
				<nav aria-label="Back office">
					<ul class="tabs">
						{SECTIONS.map(section => (
							<li key={section.path}>
								<a
									href={section.path}
									aria-current={path.startsWith(section.path) || (section.path === "/admin/products" && path === "/admin") ? "page" : undefined}
								>
									{section.label}
								</a>
							</li>
						))}
						<li>
							<button type="button" class="link" onClick={() => adminSession.set(null)}>
								Log out {session.user.name}
							</button>
						</li>
					</ul>
				</nav>
			)}
		</header>
	);
}

function App() {
	return (
		<div onClick={linkHandler(path => path.startsWith("/admin"))}>
			<a class="skip" href="#main">
				Skip to content
			</a>
			<Header />
			<main id="main" tabIndex={-1}>
				<Page />
			</main>
		</div>
	);
}

render(<App />, document.getElementById("app")!);
