/**
 * The storefront and the back office in a real Chromium, against the shop started as `npm start`
 * starts it: a customer browses, registers (by keyboard only), fills a cart, pays (approved,
 * declined, out of stock), sees the order confirmed and cancels it with a refund; an admin logs in,
 * restocks, edits with errors at the field and filters the orders. Elements are found by role and
 * label, as a screen reader finds them; every page passes axe-core with no serious or critical
 * violation, and no page logs an error.
 */
import type { Browser, Page } from "playwright-core";
import { APPROVED_TEST_CARD, DECLINED_TEST_CARD } from "../../lib/cards";
import { checkAccessibility, launchBrowser, loadTiming, openPage, screenshot, unexpectedErrors, type WatchedPage } from "../support/browser";
import { client, loginAs, registerUser, startShop, type ShopProcess } from "../support/shop";

jest.setTimeout(60_000);

const ADMIN = { email: "admin@browser.test", password: "admin-password-1" };
const CUSTOMER = { name: "Ada Buyer", email: `ada-${process.pid}-${Date.now()}@example.test`, password: "correct horse battery" };
/** The contract answers the walk provokes on purpose (402 declined, 409 out of stock, 401 a stale session, 422 a short password): Chromium logs each. */
const EXPECTED_STATUSES = [401, 402, 409, 422];

describe("the shop in a browser", () => {
	let shop: ShopProcess;
	let browser: Browser;
	let customer: WatchedPage;
	let page: Page;
	let api: ReturnType<typeof client>;
	let adminToken: string;
	let lastOne: { id: string; name: string };
	let confirmedOrderId = "";
	/** The order that was pending, then confirmed by itself (one Sticker pack): the back office cancels it. */
	let settledOrderId = "";

	const a11y = async (where: Page = page) => expect(await checkAccessibility(where)).toEqual([]);
	const cartCount = (count: number) => page.getByRole("link", { name: `Cart (${count})` }).waitFor();
	/** The text of the element that has the keyboard's focus (the page's body when focus was lost). */
	const focusedText = (where: Page = page) =>
		where.evaluate(() => {
			const { document } = globalThis as unknown as { document: { activeElement: { tagName: string; textContent: string } | null; body: unknown } };
			const active = document.activeElement;
			return !active || active === document.body ? "(the page's body: focus lost)" : active.textContent.trim();
		});

	beforeAll(async () => {
		[shop, browser] = await Promise.all([
			// Every request traced, so the order page's waterfall has the walk's order.
			startShop({
				env: { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, LOGIN_RATE_LIMIT: "1000", REGISTER_RATE_LIMIT: "1000", TRACING_SAMPLE_RATE: "1" }
			}),
			launchBrowser()
		]);
		api = client(shop.baseUrl);
		adminToken = await loginAs(shop.baseUrl, ADMIN.email, ADMIN.password);
		// Enough products for two pages of the catalogue, and one with a single unit for the out-of-stock walk.
		const created = await Promise.all(
			Array.from({ length: 8 }, (_, i) =>
				api.post("/api/products", { sku: `BRW-${i}`, name: `Browser poster ${i}`, price: 700 + i, stock: 5 }, { token: adminToken })
			)
		);
		expect(created.map(answer => answer.status)).toEqual(Array(8).fill(201));
		const lamp = await api.post(
			"/api/products",
			{ sku: "LAMP-1", name: "Last one lamp", description: "Only one made.", price: 2500, stock: 1 },
			{ token: adminToken }
		);
		lastOne = { id: lamp.body.id, name: lamp.body.name };
		customer = await openPage(browser, shop.baseUrl);
		page = customer.page;
	});

	afterAll(async () => {
		await browser?.close();
		await shop?.stop();
	});

	it("serves the storefront compressed, its hashed assets immutable and its pages revalidated", async () => {
		const html = await fetch(`${shop.baseUrl}/`, { headers: { "accept-encoding": "gzip" } });
		expect(html.status).toBe(200);
		expect(html.headers.get("cache-control")).toBe("no-cache");
		expect(html.headers.get("content-security-policy")).toContain("default-src 'self'");
		const script = /src="(\/assets\/[^"]+\.js)"/.exec(await html.text())![1];
		const asset = await fetch(`${shop.baseUrl}${script}`, { headers: { "accept-encoding": "gzip" } });
		expect(asset.status).toBe(200);
		expect(asset.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
		expect(asset.headers.get("content-encoding")).toBe("gzip");
		// A client-side route reloaded is the app's page; /api is untouched.
		for (const [url, title] of [
			["/orders/some-id", "<title>Moleculer shop</title>"],
			["/admin/cluster", "<title>Back office"]
		]) {
			const answer = await fetch(shop.baseUrl + url);
			expect(answer.status).toBe(200);
			expect(await answer.text()).toContain(title);
		}
		expect((await api.get("/api/no-such-route")).body).toMatchObject({ code: 404, type: "NOT_FOUND" });
		expect((await api.get("/no-such-page")).status).toBe(404);
	});

	it("shows the catalogue at first load, and reports how long that took", async () => {
		await page.goto("/");
		await page.getByRole("heading", { name: "Catalogue", level: 1 }).waitFor();
		await page.getByRole("link", { name: "Moleculer mug" }).waitFor();
		const timing = await loadTiming(page);
		console.log(
			`Storefront first load: response ${timing.responseEnd} ms, DOMContentLoaded ${timing.domContentLoaded} ms, load ${timing.load} ms; ${timing.transferred} bytes of JS+CSS transferred`
		);
		expect(timing.load).toBeGreaterThan(0);
		// Under the stated budget (150 kB of compressed JavaScript and style).
		expect(timing.transferred).toBeLessThan(150_000);
		expect(await page.getByRole("article").count()).toBe(12);
		await a11y();
		await screenshot(page, "storefront");
	});

	it("searches and pages through the catalogue", async () => {
		await page.getByRole("button", { name: "Next page" }).click();
		await page.getByText("Page 2 of 2").waitFor();
		expect(await page.getByRole("article").count()).toBe(15 - 12);
		await page.getByLabel("Search products").fill("hoodie");
		await page.getByRole("button", { name: "Search" }).click();
		await page.getByText("1 product matching “hoodie”").waitFor();
		expect(await page.getByRole("article").count()).toBe(1);
		await page.getByRole("link", { name: "NATS hoodie" }).click();
		await page.getByRole("heading", { name: "NATS hoodie", level: 1 }).waitFor();
		await page.getByText("$49.99").waitFor();
		await page.getByText("25 in stock").waitFor();
		await a11y();
	});

	it("registers a customer by keyboard only, and comes back to the catalogue", async () => {
		await page.goto("/");
		await page.getByRole("heading", { name: "Catalogue" }).waitFor();
		// The page's heading has the focus; the header's last link is just before it.
		const focusedName = () =>
			page.evaluate(() => (globalThis as unknown as { document: { activeElement: { textContent: string } } }).document.activeElement.textContent);
		expect(await focusedName()).toBe("Catalogue");
		await page.keyboard.press("Shift+Tab");
		expect(await focusedName()).toBe("Register");
		await page.keyboard.press("Enter");
		await page.getByRole("heading", { name: "Create an account" }).waitFor();
		// The heading has the focus; the next Tab is the first field.
		await page.keyboard.press("Tab");
		await page.keyboard.type(CUSTOMER.name);
		await page.keyboard.press("Tab");
		await page.keyboard.type(CUSTOMER.email);
		await page.keyboard.press("Tab");
		await page.keyboard.type("short");
		await page.keyboard.press("Enter");
		// The contract's 422 reaches the person as words at the field.
		await page.getByRole("alert").getByText("Please correct: password").waitFor();
		expect(await page.getByLabel("Password").getAttribute("aria-invalid")).toBe("true");
		await a11y();
		await page.keyboard.press("Control+A");
		await page.keyboard.type(CUSTOMER.password);
		await page.keyboard.press("Enter");
		await page.getByRole("heading", { name: "Catalogue" }).waitFor();
		await page.getByRole("button", { name: `Log out ${CUSTOMER.name}` }).waitFor();
	});

	it("adds two products to the cart and pays with the approved card: one order, confirmed", async () => {
		await page.getByRole("button", { name: "Add to cart: Moleculer mug" }).click();
		await page.getByRole("status").getByText("Added 1 × Moleculer mug to your cart.").waitFor();
		await page.getByRole("button", { name: "Add to cart: Sticker pack" }).click();
		await cartCount(2);
		await page.getByRole("link", { name: "Cart (2)" }).click();
		await page.getByRole("heading", { name: "Your cart" }).waitFor();
		await page.getByLabel("Quantity of Sticker pack").fill("3");
		await page.getByLabel("Quantity of Sticker pack").press("Tab");
		await page
			.getByText(`$${(1299 + 3 * 499) / 100}`)
			.first()
			.waitFor();
		await page.getByLabel("Card number").fill("4242 4242 4242 4242");
		await a11y();
		await screenshot(page, "checkout");

		const ordersBefore = (await api.get("/api/orders", { token: await loginAs(shop.baseUrl, CUSTOMER.email, CUSTOMER.password) })).body.total;
		const sent = page.waitForRequest(request => request.method() === "POST" && request.url().endsWith("/api/orders"));
		// A double click: one order.
		await page.getByRole("button", { name: /^Place order/ }).dblclick();
		const key = (await sent).headers()["idempotency-key"];
		expect(key).toMatch(/^[0-9a-f]{32}$/);
		await page.getByRole("status").getByText("Thank you! Your order is confirmed and paid.").waitFor();
		await page.getByText("Confirmed", { exact: true }).waitFor();
		await page.getByRole("cell", { name: "$12.99" }).first().waitFor();
		confirmedOrderId = decodeURIComponent(new URL(page.url()).pathname.split("/").pop()!);
		const token = await loginAs(shop.baseUrl, CUSTOMER.email, CUSTOMER.password);
		const orders = (await api.get("/api/orders", { token })).body;
		expect(orders.total).toBe(ordersBefore + 1);
		expect(orders.rows[0]).toMatchObject({ id: confirmedOrderId, status: "confirmed", total: 1299 + 3 * 499 });
		await cartCount(0);
		await a11y();
		await screenshot(page, "order");
	});

	it("says the declined card was declined, and keeps the cart", async () => {
		await page.goto("/products/" + (await api.get("/api/products?search=mug")).body.rows[0].id);
		await page.getByRole("heading", { name: "Moleculer mug" }).waitFor();
		await page.getByRole("button", { name: "Add to cart" }).click();
		await page.getByRole("link", { name: "Cart (1)" }).click();
		await page.getByLabel("Card number").fill(DECLINED_TEST_CARD);
		// By keyboard: Enter on the button. The answer's words take the focus (the button was busy), and the next Tab is the button again.
		await page.getByRole("button", { name: /^Place order/ }).focus();
		await page.keyboard.press("Enter");
		await page.getByRole("alert").getByText("Your card was declined by the bank. Nothing was charged: try another card.").waitFor();
		expect(await focusedText()).toBe("Your card was declined by the bank. Nothing was charged: try another card.");
		await page.keyboard.press("Tab");
		expect(await focusedText()).toMatch(/^Place order/);
		await cartCount(1);
		await a11y();
		// The error is not a dead end: the other card goes through (a new Idempotency-Key, so not the declined replay).
		await page.getByLabel("Card number").fill("5555555555554444");
		await page.getByRole("button", { name: /^Place order/ }).click();
		await page.getByText("Thank you! Your order is confirmed and paid.").waitFor();
	});

	it("shows an order still pending, and its status turning confirmed by itself", async () => {
		// Payments outlasts the order's wait (PAYMENT_TIMEOUT_MS) for 2 s: the shop answers 202 pending, then settles it in the background.
		const chaos = await api.post("/api/admin/chaos", { action: "payments.capture", timeouts: 1, for: "2s" }, { token: adminToken });
		expect(chaos.status).toBe(200);
		await page.goto("/?search=sticker");
		await page.getByRole("button", { name: "Add to cart: Sticker pack" }).click();
		await page.getByRole("link", { name: "Cart (1)" }).click();
		await page.getByLabel("Card number").fill(APPROVED_TEST_CARD);
		await page.getByRole("button", { name: /^Place order/ }).click();
		await page.getByRole("status").getByText("Your order is placed; the payment is still being processed. This page updates by itself.").waitFor();
		await page.getByText("Pending: being processed").waitFor();
		await a11y();
		// No reload: the page asks again while the order is pending.
		const navigations: string[] = [];
		page.on("framenavigated", frame => navigations.push(frame.url()));
		await page.getByRole("status").getByText("Your order is now confirmed.").waitFor({ timeout: 20_000 });
		await page.getByText("Confirmed", { exact: true }).waitFor();
		await page.getByText(/card ending 4242: captured/).waitFor();
		expect(navigations).toEqual([]);
		settledOrderId = decodeURIComponent(new URL(page.url()).pathname.split("/").pop()!);
	});

	it("names the product that is out of stock", async () => {
		await page.goto("/?search=lamp");
		await page.getByRole("button", { name: `Add to cart: ${lastOne.name}` }).click();
		await cartCount(1);
		// Someone else buys the last one meanwhile.
		const other = await registerUser(shop.baseUrl, "rival");
		const bought = await api.post(
			"/api/orders",
			{ items: [{ productId: lastOne.id, quantity: 1 }], payment: { card: APPROVED_TEST_CARD } },
			{ token: other.token }
		);
		expect(bought.status).toBe(201);
		await page.getByRole("link", { name: "Cart (1)" }).click();
		await page.getByLabel("Card number").fill(APPROVED_TEST_CARD);
		await page.getByRole("button", { name: /^Place order/ }).click();
		await page
			.getByRole("alert")
			.getByText(`Not enough stock of “${lastOne.name}” (only 0 left). Lower the quantity or remove it from your cart; nothing was charged.`)
			.waitFor();
		await a11y();
		await page.getByRole("button", { name: `Remove ${lastOne.name} from the cart` }).click();
		await page.getByText("Your cart is empty.").waitFor();
	});

	it("lists my orders and cancels one: the refund is shown", async () => {
		await page.getByRole("link", { name: "My orders" }).click();
		await page.getByRole("heading", { name: "My orders" }).waitFor();
		await a11y();
		await page.getByRole("link", { name: `Order ${confirmedOrderId.slice(0, 8)}, confirmed` }).click();
		await page.getByRole("heading", { name: `Order ${confirmedOrderId.slice(0, 8)}` }).waitFor();
		// By keyboard: the button goes away with the order's cancel; the news takes the focus, not the page's body.
		await page.getByRole("button", { name: "Cancel order" }).focus();
		await page.keyboard.press("Enter");
		const total = `$${((1299 + 3 * 499) / 100).toFixed(2)}`;
		await page.getByRole("status").getByText(`Your order is cancelled. ${total} was refunded to the card ending 4242.`).waitFor();
		expect(await focusedText()).toBe(`Your order is cancelled. ${total} was refunded to the card ending 4242.`);
		await page.getByText(`${total} refunded to the card ending 4242`).waitFor();
		await page.getByText("Cancelled (cancelled by the customer)").waitFor();
		expect(await page.getByRole("button", { name: "Cancel order" }).count()).toBe(0);
		await a11y();
	});

	it("takes a person whose session expired to login, and back to where they were", async () => {
		await page.evaluate(() => {
			const { localStorage } = globalThis as unknown as { localStorage: { setItem(key: string, value: string): void } };
			localStorage.setItem("shop.session", JSON.stringify({ token: "expired.token.value", user: { id: "x", email: "x@x", name: "X", role: "customer" } }));
		});
		await page.goto("/orders");
		await page.getByRole("heading", { name: "Log in" }).waitFor();
		expect(new URL(page.url()).search).toBe("?next=%2Forders");
		await page.getByLabel("Email").fill(CUSTOMER.email);
		await page.getByLabel("Password").fill(CUSTOMER.password);
		await page.getByRole("button", { name: "Log in" }).click();
		await page.getByRole("heading", { name: "My orders" }).waitFor();
		await a11y();
	});

	it("fits a phone's width", async () => {
		const phone = await openPage(browser, shop.baseUrl, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
		try {
			for (const [url, heading] of [
				["/", "Catalogue"],
				["/products/" + lastOne.id, lastOne.name],
				["/cart", "Your cart"],
				["/register", "Create an account"]
			]) {
				await phone.page.goto(url);
				await phone.page.getByRole("heading", { name: heading, level: 1 }).waitFor();
				const overflow = await phone.page.evaluate(() => {
					const root = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }).document.documentElement;
					return root.scrollWidth - root.clientWidth;
				});
				expect({ url, overflow }).toEqual({ url, overflow: 0 });
				expect(await checkAccessibility(phone.page)).toEqual([]);
			}
			expect(unexpectedErrors(phone.errors)).toEqual([]);
		} finally {
			await phone.context.close();
		}
	});

	it("logged no error in the customer's pages but the answers the walk provoked", () => {
		expect(unexpectedErrors(customer.errors, EXPECTED_STATUSES)).toEqual([]);
	});

	describe("the back office", () => {
		let office: WatchedPage;
		let admin: Page;

		beforeAll(async () => {
			office = await openPage(browser, shop.baseUrl);
			admin = office.page;
		});
		afterAll(() => office?.context.close());

		it("lets only an admin in", async () => {
			await admin.goto("/admin");
			await admin.getByRole("heading", { name: "Back office: log in" }).waitFor();
			await a11y(admin);
			await admin.getByLabel("Email").fill(CUSTOMER.email);
			await admin.getByLabel("Password").fill(CUSTOMER.password);
			await admin.getByRole("button", { name: "Log in" }).click();
			await admin.getByRole("alert").getByText("Your account may not do this: it needs an administrator.").waitFor();
			await admin.getByLabel("Email").fill(ADMIN.email);
			await admin.getByLabel("Password").fill(ADMIN.password);
			await admin.getByRole("button", { name: "Log in" }).click();
			await admin.getByRole("heading", { name: "Products", level: 1 }).waitFor();
			await a11y(admin);
		});

		it("restocks a product", async () => {
			await admin.getByLabel("Search products").fill("lamp");
			await admin.getByRole("button", { name: "Search" }).click();
			await admin.getByRole("button", { name: `Restock ${lastOne.name}` }).click();
			await admin.getByRole("heading", { name: `Restock ${lastOne.name}` }).waitFor();
			await admin.getByLabel("Units to add").fill("5");
			await admin.getByRole("button", { name: "Save" }).click();
			await admin.getByRole("status").getByText(`Restocked ${lastOne.name}: 5 in stock now.`).waitFor();
			expect((await api.get(`/api/products/${lastOne.id}`)).body.stock).toBe(5);
			await a11y(admin);
		});

		it("creates and edits products, with the errors at the field", async () => {
			await admin.getByRole("button", { name: "New product" }).click();
			await admin.getByLabel("SKU").fill("LAMP-1");
			await admin.getByLabel("Name").fill("Second lamp");
			await admin.getByLabel("Price (USD)").fill("cheap");
			await admin.getByRole("button", { name: "Save" }).click();
			await admin.getByText("Enter an amount in dollars, like 12.50.").waitFor();
			expect(await admin.getByLabel("Price (USD)").getAttribute("aria-invalid")).toBe("true");
			await admin.getByLabel("Price (USD)").fill("19.90");
			await admin.getByRole("button", { name: "Save" }).click();
			// The shop's 409: the SKU is taken, said at the SKU field.
			await admin.getByText("Another product has this SKU.").waitFor();
			expect(await admin.getByLabel("SKU").getAttribute("aria-invalid")).toBe("true");
			await a11y(admin);
			await admin.getByLabel("SKU").fill("LAMP-2");
			await admin.getByRole("button", { name: "Save" }).click();
			await admin.getByRole("status").getByText("Created Second lamp (LAMP-2).").waitFor();

			await admin.getByRole("button", { name: "Edit Second lamp" }).click();
			await admin.getByLabel("Name").fill("");
			await admin.getByRole("button", { name: "Save" }).click();
			// The shop's 422, at the field it names.
			await admin
				.getByRole("alert")
				.getByText(/Please correct: name/)
				.waitFor();
			expect(await admin.getByLabel("Name").getAttribute("aria-invalid")).toBe("true");
			await admin.getByLabel("Name").fill("Second lamp, brass");
			await admin.getByLabel("Price (USD)").fill("21");
			await admin.getByRole("button", { name: "Save" }).click();
			await admin.getByRole("status").getByText("Saved Second lamp, brass.").waitFor();
			const [saved] = (await api.get("/api/products?search=brass")).body.rows;
			expect(saved).toMatchObject({ sku: "LAMP-2", price: 2100 });
		});

		it("filters the orders by status and cancel reason, and shows one with its lines and history", async () => {
			await admin.getByRole("link", { name: "Orders" }).click();
			await admin.getByRole("heading", { name: "Orders", level: 1 }).waitFor();
			await admin.getByLabel("Status").selectOption("cancelled");
			await admin.getByLabel("Cancel reason").selectOption("payment_declined");
			await admin.getByText(/^1 order, cancelled, card declined/).waitFor();
			await admin.getByLabel("Cancel reason").selectOption("cancelled_by_user");
			await admin.getByText(/^1 order, cancelled, cancelled by the customer/).waitFor();
			await a11y(admin);
			await admin.getByRole("link", { name: confirmedOrderId.slice(0, 8) }).click();
			await admin.getByRole("heading", { name: `Order ${confirmedOrderId.slice(0, 8)}` }).waitFor();
			await admin.getByRole("rowheader", { name: "Sticker pack" }).waitFor();
			await admin.getByText(/card ending 4242: refunded/).waitFor();
			await admin.getByText("Now cancelled (cancelled by the customer)").waitFor();
			// Its trace as a waterfall: the gateway's request at the root, the calls it made to the other services under it.
			const waterfall = admin.getByRole("table", { name: "Spans of the order's trace, in call order" });
			await waterfall.getByRole("rowheader", { name: "POST /api/orders", exact: true }).waitFor();
			await waterfall.getByRole("rowheader", { name: "action 'payments.capture'", exact: true }).waitFor();
			const services = await waterfall.locator("tbody tr td:nth-of-type(1)").allTextContents();
			expect(new Set(services).size).toBeGreaterThanOrEqual(3);
			expect(await waterfall.locator("tbody tr td:nth-of-type(4)").allTextContents()).toEqual(expect.arrayContaining([expect.stringMatching(/^[\d.]+ ms$/)]));
			await a11y(admin);
		});

		it("cancels a confirmed order with its refund", async () => {
			await admin.getByRole("link", { name: "Orders", exact: true }).click();
			await admin.getByLabel("Status").selectOption("confirmed");
			await admin.getByRole("link", { name: settledOrderId.slice(0, 8) }).click();
			await admin.getByRole("heading", { name: `Order ${settledOrderId.slice(0, 8)}` }).waitFor();
			await admin.getByRole("button", { name: "Cancel order and refund" }).click();
			await admin.getByRole("status").getByText("Cancelled; $4.99 refunded to the card ending 4242.").waitFor();
			expect(await admin.getByRole("button", { name: "Cancel order and refund" }).count()).toBe(0);
			const token = await loginAs(shop.baseUrl, CUSTOMER.email, CUSTOMER.password);
			expect((await api.get(`/api/orders/${settledOrderId}`, { token })).body).toMatchObject({ status: "cancelled" });
			expect((await api.get(`/api/payments?orderId=${settledOrderId}`, { token })).body.rows).toMatchObject([{ amount: 499, status: "refunded" }]);
			await a11y(admin);
		});

		it("marks an order pending for over 10 s as stuck, with its age and the node attending it", async () => {
			// Payments outlasts every capture attempt for a while: the order answers 202 and stays pending.
			expect((await api.post("/api/admin/chaos", { action: "payments.capture", timeouts: 1, for: "60s" }, { token: adminToken })).status).toBe(200);
			const token = await loginAs(shop.baseUrl, CUSTOMER.email, CUSTOMER.password);
			const placed = await api.post("/api/orders", { items: [{ productId: lastOne.id, quantity: 1 }], payment: { card: APPROVED_TEST_CARD } }, { token });
			expect(placed.status).toBe(202);
			const orderId: string = placed.body.id;
			const pending = (await api.get("/api/orders?status=pending", { token: adminToken })).body.rows as Array<{ id: string; ownerNode: string }>;
			const ownerNode = pending.find(order => order.id === orderId)!.ownerNode;
			// One process: the node attending it is the gateway's own.
			expect(ownerNode).toBe((await api.get("/api/health")).body.nodeID);
			// In a context of its own, whose clock is 15 s ahead rather than a 10 s wait: to its page, the order is 15 s old.
			const late = await openPage(browser, shop.baseUrl);
			try {
				const office = late.page;
				await office.clock.setFixedTime(Date.now() + 15_000);
				await office.goto("/admin");
				await office.getByLabel("Email").fill(ADMIN.email);
				await office.getByLabel("Password").fill(ADMIN.password);
				await office.getByRole("button", { name: "Log in" }).click();
				await office.getByRole("link", { name: "Orders", exact: true }).click();
				await office.getByLabel("Status").selectOption("pending");
				await office.getByText("1 order has been pending for over 10 s: marked “stuck” below, with the node attending each.").waitFor();
				const row = office.getByRole("row").filter({ has: office.getByRole("link", { name: orderId.slice(0, 8) }) });
				await row.getByText("stuck").waitFor();
				expect(await row.getByRole("cell").allTextContents()).toEqual(expect.arrayContaining([expect.stringMatching(/^1[5-9] s$/), ownerNode]));
				await a11y(office);
				// Payments answers again: the order settles by itself and is no longer stuck.
				expect((await api.request("DELETE", "/api/admin/chaos/payments.capture", { token: adminToken })).status).toBe(200);
				await office.getByText("0 orders, pending", { exact: false }).waitFor({ timeout: 20_000 });
			} finally {
				await api.request("DELETE", "/api/admin/chaos/payments.capture", { token: adminToken });
				await late.context.close();
			}
			expect((await api.get(`/api/orders/${orderId}`, { token })).body.status).toBe("confirmed");
		});

		it("shows this one-process shop as one node running every service", async () => {
			await admin.getByRole("link", { name: "Cluster" }).click();
			await admin.getByRole("heading", { name: "Nodes" }).waitFor();
			await admin.getByText("Ready: every service has a live node.", { exact: false }).waitFor();
			expect(await admin.getByRole("listitem").filter({ hasText: "this gateway" }).count()).toBe(1);
			await a11y(admin);
		});

		it("logged no error", () => {
			// 409 (a taken SKU) and 422 (an empty name) were provoked on purpose.
			expect(unexpectedErrors(office.errors, [409, 422])).toEqual([]);
		});
	});
});
