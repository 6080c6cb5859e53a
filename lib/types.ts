/** Shapes that cross service boundaries: what one service's action returns and another reads. */

export type Role = "customer" | "admin";

/** The public view of a user (never a password hash). */
export interface User {
	id: string;
	email: string;
	name: string;
	role: Role;
	createdAt: string;
}

/** Who is calling, as the gateway puts it in `ctx.meta.user` after checking the token. */
export interface AuthUser {
	id: string;
	email: string;
	role: Role;
}

export interface ShopMeta {
	user?: AuthUser;
	/** Set by the gateway from the request headers. */
	idempotencyKey?: string;
	$statusCode?: number;
	/** The Location header of a 201 answer. */
	$location?: string;
	$responseHeaders?: Record<string, string>;
}

export interface Product {
	id: string;
	sku: string;
	name: string;
	description: string;
	price: number;
	currency: "USD";
	stock: number;
	createdAt: string;
	updatedAt: string;
}

/** What an order needs of a product: `inventory.getMany`'s answer. */
export type ProductPrice = Pick<Product, "id" | "sku" | "name" | "price">;

export interface Page<T> {
	rows: T[];
	total: number;
	page: number;
	pageSize: number;
	totalPages: number;
}

export type OrderStatus = "pending" | "confirmed" | "cancelled";
export type CancelReason = "out_of_stock" | "payment_declined" | "payment_failed" | "cancelled_by_user";

export interface OrderItem {
	productId: string;
	sku: string;
	name: string;
	quantity: number;
	unitPrice: number;
}

export interface Order {
	id: string;
	userId: string;
	status: OrderStatus;
	items: OrderItem[];
	total: number;
	currency: "USD";
	cancelReason: CancelReason | null;
	createdAt: string;
	updatedAt: string;
}

export type PaymentStatus = "captured" | "declined" | "refunded";

export interface Payment {
	id: string;
	orderId: string;
	amount: number;
	currency: "USD";
	status: PaymentStatus;
	cardLast4: string;
	createdAt: string;
}

/** A line as the inventory service reserves it. */
export interface StockLine {
	productId: string;
	quantity: number;
}

/** The gateway's view of the cluster (`GET /api/admin/cluster`, the REPL's `cluster`, the back office). */
export interface ClusterNode {
	id: string;
	/**
	 * Sends heartbeats: false (grey) once none arrived within the heartbeat timeout. Moleculer's
	 * registry applies that rule on a timer of the same period (so it notices between one and two
	 * timeouts late); here it is applied to the registry's own heartbeat times when asked.
	 */
	available: boolean;
	/** Seconds since its last heartbeat arrived (0 for the gateway itself). */
	silentFor: number;
	/** The node answering this request (the gateway). */
	local: boolean;
	hostname: string | null;
	cpu: number | null;
	/** When its last heartbeat arrived. */
	lastSeen: string | null;
	services: string[];
	/** Requests this node handled since it started (its own counters); null when it cannot be asked. */
	requests: number | null;
	errors: number | null;
	/** Requests handled per action, e.g. `payments.capture`: how the load is shared. */
	actions: Record<string, number>;
}

export interface ClusterAnswer {
	gateway: string;
	/** Seconds without a heartbeat after which a node counts as gone. */
	heartbeatTimeout: number;
	/** Each service of the shop and the live nodes that run it: ready when every one has some. */
	services: Record<string, string[]>;
	ready: boolean;
	nodes: ClusterNode[];
	at: string;
}

/** A finished span as the back office reads it (ids as in Zipkin and `traceparent`). */
export interface SpanRecord {
	traceId: string;
	id: string;
	parentId: string | null;
	name: string;
	service: string | null;
	nodeID: string;
	/** Epoch milliseconds. */
	startTime: number;
	/** Milliseconds. */
	duration: number;
	error: string | null;
	orderId: string | null;
	tags: Record<string, string>;
}
