/**
 * SIGTERM under load costs clients no 500: while 16 clients order, the shop is stopped. Every answer
 * is 2xx or a 503 in the contract's shape (with Retry-After and Connection: close), or the
 * connection is refused or reset once the gateway has closed; never a 500. After a restart on the
 * same data, every accepted order exists and the books balance.
 */
import { connect, type Socket } from "node:net";
import { APPROVED_TEST_CARD } from "../../lib/cards";
import { auditBooks } from "../support/books";
import { client, registerUser, startShop, tempDataDir, type ApiAnswer, type ShopProcess } from "../support/shop";
import { ADMIN_ENV, adminToken, createProduct, errorShapeProblems, mapLimit, placeOrder } from "./helpers";

const JWT_SECRET = "shutdown-spec-secret-0123456789abc";
const ENV = { ...ADMIN_ENV, JWT_SECRET, LOGIN_RATE_LIMIT: "1000", REGISTER_RATE_LIMIT: "1000" };
const CLIENTS = 16;
const STOCK = 1_000_000;

/** What a client saw for one request: an HTTP answer, or the connection error's code. */
type Outcome = { answer: ApiAnswer } | { connectionError: string };

/** The code of a failed fetch's cause (ECONNREFUSED, ECONNRESET, UND_ERR_SOCKET, ...). */
function connectionErrorCode(err: unknown): string {
	const cause = (err as { cause?: { code?: unknown; name?: unknown } } | null)?.cause;
	return typeof cause?.code === "string" ? cause.code : `${String((err as Error)?.name)}: ${String((err as Error)?.message)}`;
}

/** A refused or closed connection: the gateway is gone or closed this connection, and said so at the TCP level. */
const CLOSED_CONNECTION = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "UND_ERR_SOCKET"]);

function tally(outcomes: Outcome[]): Record<string, number> {
	const counts: Record<string, number> = {};
	for (const outcome of outcomes) {
		const key = "answer" in outcome ? String(outcome.answer.status) : outcome.connectionError;
		counts[key] = (counts[key] ?? 0) + 1;
	}
	return counts;
}

/** An HTTP/1.1 answer as read off the wire. */
interface RawAnswer {
	status: number;
	headers: Record<string, string>;
	body: unknown;
}

/** The first complete answer in `text` (Content-Length or chunked body), or null while it is incomplete. */
function parseAnswer(text: string): RawAnswer | null {
	const headEnd = text.indexOf("\r\n\r\n");
	if (headEnd < 0) return null;
	const [statusLine, ...headerLines] = text.slice(0, headEnd).split("\r\n");
	const headers = Object.fromEntries(headerLines.map(line => [line.slice(0, line.indexOf(":")).toLowerCase(), line.slice(line.indexOf(":") + 1).trim()]));
	let rest = text.slice(headEnd + 4);
	let raw = "";
	if (headers["transfer-encoding"] === "chunked") {
		for (;;) {
			const sizeEnd = rest.indexOf("\r\n");
			if (sizeEnd < 0) return null;
			const size = parseInt(rest.slice(0, sizeEnd), 16);
			if (size === 0) break;
			if (rest.length < sizeEnd + 2 + size + 2) return null;
			raw += rest.slice(sizeEnd + 2, sizeEnd + 2 + size);
			rest = rest.slice(sizeEnd + 2 + size + 2);
		}
	} else {
		// The tests' answers are ASCII JSON: characters are bytes.
		const length = Number(headers["content-length"] ?? 0);
		if (rest.length < length) return null;
		raw = rest.slice(0, length);
	}
	let body: unknown = raw;
	try {
		body = JSON.parse(raw);
	} catch {
		// not JSON: kept as text
	}
	return { status: Number(statusLine.split(" ")[1]), headers, body };
}

/** One HTTP/1.1 exchange on a raw socket, written in parts: the test decides when each part goes. */
class RawExchange {
	private received = "";
	private readonly socket: Socket;
	/** Resolves when the server closed the connection. */
	readonly ended: Promise<void>;

	constructor(port: number) {
		this.socket = connect(port, "127.0.0.1");
		this.socket.setEncoding("utf8");
		this.socket.on("data", chunk => (this.received += chunk));
		this.ended = new Promise(resolve => this.socket.on("close", () => resolve()));
		this.socket.on("error", () => undefined);
	}

	async send(text: string): Promise<void> {
		await new Promise<void>((resolve, reject) => this.socket.write(text, err => (err ? reject(err) : resolve())));
	}

	/** The answer, once it is complete (or the connection closed: then what came, or status 0). */
	async answer(): Promise<RawAnswer> {
		let closed = false;
		void this.ended.then(() => (closed = true));
		for (;;) {
			const answer = parseAnswer(this.received);
			if (answer) return answer;
			if (closed) return { status: 0, headers: {}, body: this.received };
			await new Promise(resolve => setTimeout(resolve, 10));
		}
	}

	close(): void {
		this.socket.destroy();
	}
}

/** Resolves once the port refuses connections (the gateway stopped listening). */
async function refusedOn(port: number): Promise<void> {
	for (;;) {
		const refused = await new Promise<boolean>(resolve => {
			const socket = connect(port, "127.0.0.1");
			socket.on("connect", () => (socket.destroy(), resolve(false)));
			socket.on("error", () => resolve(true));
		});
		if (refused) return;
		await new Promise(resolve => setTimeout(resolve, 20));
	}
}

describe("shutdown", () => {
	const dataDir = tempDataDir("shop-shutdown-");
	let first: ShopProcess | undefined;
	let second: ShopProcess | undefined;

	afterAll(async () => {
		await first?.kill();
		await second?.stop();
	});

	it("SIGTERM while 16 clients order: only 2xx, 503 (contract shape, Retry-After, Connection: close) or a closed connection; the books balance after a restart", async () => {
		first = await startShop({ dataDir, env: ENV });
		const shop = first;
		const api = client(shop.baseUrl);
		const admin = await adminToken(api);
		const product = await createProduct(api, admin, { price: 1234, stock: STOCK });
		const buyers = await mapLimit(Array.from({ length: CLIENTS }), 4, () => registerUser(shop.baseUrl, "stopper"));

		const outcomes: Outcome[] = [];
		let answered = 0;
		let warm!: () => void;
		const warmedUp = new Promise<void>(resolve => (warm = resolve));
		const load = buyers.map(async buyer => {
			// Each client orders until its connection is refused (the gateway stopped) or closed.
			for (;;) {
				try {
					const answer = await placeOrder(api, buyer.token, [{ productId: product.id, quantity: 1 }]);
					outcomes.push({ answer });
					if (++answered >= 4 * CLIENTS) warm();
				} catch (err) {
					outcomes.push({ connectionError: connectionErrorCode(err) });
					return;
				}
			}
		});

		// One order is still being sent when the stop begins: the stop waits for it (its body comes 1 s later).
		const body = JSON.stringify({ items: [{ productId: product.id, quantity: 1 }], payment: { card: APPROVED_TEST_CARD } });
		const slow = new RawExchange(shop.port);
		await slow.send(
			`POST /api/orders HTTP/1.1\r\nHost: shop\r\nAuthorization: Bearer ${buyers[0].token}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, 10)}`
		);
		await warmedUp;
		const exited = shop.stop();
		await new Promise(resolve => setTimeout(resolve, 1000));
		await slow.send(body.slice(10));
		const slowAnswer = await slow.answer();
		const code = await exited;
		await Promise.all(load);

		const counts = tally(outcomes);
		const summary = `outcomes ${JSON.stringify(counts)}`;
		expect(code).toBe(0);
		// Nothing but success, a 503, or a connection the gateway refused or closed.
		const unexpected = outcomes.filter(o => ("answer" in o ? ![201, 202, 503].includes(o.answer.status) : !CLOSED_CONNECTION.has(o.connectionError)));
		expect({ summary, unexpected: unexpected.map(o => ("answer" in o ? { status: o.answer.status, body: o.answer.body } : o)) }).toEqual({
			summary,
			unexpected: []
		});
		expect({ status: slowAnswer.status, body: slowAnswer.body }).toMatchObject({ status: 201, body: { status: "confirmed" } });
		for (const outcome of outcomes) {
			if (!("answer" in outcome) || outcome.answer.status !== 503) continue;
			const { answer } = outcome;
			expect(errorShapeProblems(answer)).toEqual([]);
			expect(answer.body.type).toBe("SERVICE_NOT_AVAILABLE");
			expect(Number(answer.headers.get("retry-after"))).toBeGreaterThan(0);
			expect(answer.headers.get("connection")).toBe("close");
		}
		// The stop logged no failure (a closed database, a graceful-stop timeout, a failed settle pass).
		expect(shop.output()).not.toMatch(/\bERROR\b|closed|Unhandled/i);

		// After a restart on the same data: every accepted order is there, and the books balance.
		second = await startShop({ dataDir, env: ENV });
		const again = client(second.baseUrl);
		const adminAgain = await adminToken(again);
		const books = await auditBooks({ baseUrl: second.baseUrl, adminToken: adminAgain, expectedStock: new Map([[product.id, STOCK]]), settleWithinMs: 20_000 });
		expect(books.problems).toEqual([]);
		const stored = new Map(books.orders.map(order => [order.id, order.status]));
		expect(stored.get((slowAnswer.body as { id: string }).id)).toBe("confirmed");
		for (const outcome of outcomes) {
			if (!("answer" in outcome) || (outcome.answer.status !== 201 && outcome.answer.status !== 202)) continue;
			expect({ id: outcome.answer.body.id, status: stored.get(outcome.answer.body.id) }).toEqual({
				id: outcome.answer.body.id,
				status: outcome.answer.status === 201 ? "confirmed" : expect.stringMatching(/^(confirmed|cancelled)$/)
			});
		}
	});

	it("the stop lets a request in flight finish, and answers a request that arrives after it began with a 503 that closes the connection", async () => {
		const shop = await startShop({ env: ENV });
		try {
			const api = client(shop.baseUrl);
			const admin = await adminToken(api);
			const product = await createProduct(api, admin, { price: 500, stock: 10 });
			const buyer = await registerUser(shop.baseUrl, "slow");

			// In flight: an order whose body is still on its way when the stop begins.
			const body = JSON.stringify({ items: [{ productId: product.id, quantity: 2 }], payment: { card: APPROVED_TEST_CARD } });
			const inFlight = new RawExchange(shop.port);
			await inFlight.send(
				`POST /api/orders HTTP/1.1\r\nHost: shop\r\nAuthorization: Bearer ${buyer.token}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, 10)}`
			);
			// Arriving: a connection already open, whose request is not complete when the stop begins.
			const late = new RawExchange(shop.port);
			await late.send("GET /api/products HTTP/1.1\r\nHost: shop\r\n");
			await new Promise(resolve => setTimeout(resolve, 200));

			shop.child.kill("SIGTERM");
			await refusedOn(shop.port);

			await late.send("\r\n");
			const refused = await late.answer();
			expect(refused.status).toBe(503);
			expect(refused.body).toEqual({
				name: "ServiceNotAvailableError",
				message: expect.any(String),
				code: 503,
				type: "SERVICE_NOT_AVAILABLE",
				data: null
			});
			expect(refused.headers["content-type"]).toMatch(/^application\/json/);
			expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
			expect(refused.headers.connection).toBe("close");
			await late.ended;

			// The services are still there for the request in flight: it completes, and closes its connection.
			await inFlight.send(body.slice(10));
			const finished = await inFlight.answer();
			expect({ status: finished.status, body: finished.body }).toMatchObject({ status: 201, body: { status: "confirmed", total: 1000 } });
			expect(finished.headers.connection).toBe("close");
			await inFlight.ended;

			expect(await shop.exited).toBe(0);
			expect(shop.output()).not.toMatch(/\bERROR\b|closed|Unhandled/i);
		} finally {
			await shop.kill();
		}
	});
});
