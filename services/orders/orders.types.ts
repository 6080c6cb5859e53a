/** The orders service's `this`, shared by the service and its two mixins (the saga and the settle loop). */
import type { Context, Errors, Service } from "moleculer";
import type { CancelReason, OrderItem, Payment, ShopMeta } from "../../lib/types";
import type { CaptureParams } from "../payments/payments.service";
import type { DbSettings, DbVars } from "../../mixins/db.mixin";
import type { InFlightOrders } from "./in-flight";
import type { OrdersStore, StoredOrder } from "./orders.store";
import type { HoldCommits } from "./hold-commits";
import type { PriceBook } from "./price-book";

export interface OrdersSettings extends DbSettings {
	rest: string;
	/** PAYMENT_TIMEOUT_MS: how long a capture may take before the client gets 202 pending. */
	paymentTimeoutMs: number;
	/** Timeout of every other step made while a client waits. */
	stepTimeoutMs: number;
	/** How often the settle loop looks for unfinished orders. */
	settleIntervalMs: number;
	/** How long a capture is retried with the card before the order is given up (payment_failed). */
	cardRetryLimitMs: number;
	/** An unfinished order nobody has touched for this long is settled by any orders node. */
	orphanAfterMs: number;
}

/** Where an attempt to move an order forward left it. */
export interface Outcome {
	order: StoredOrder;
	/** Why it was cancelled, for the client that waits (out of stock, declined), or why a step failed. */
	error?: Errors.MoleculerError;
}

/** The saga's steps (order-saga.mixin.ts). */
export interface SagaMethods {
	advance(ctx: Context, order: StoredOrder, card: string): Promise<Outcome>;
	capture(ctx: Context, params: CaptureParams): Promise<Payment>;
	confirm(ctx: Context, order: StoredOrder): Promise<Outcome>;
	resolveWithoutCard(ctx: Context, order: StoredOrder): Promise<Outcome>;
	compensate(ctx: Context, order: StoredOrder, reason: CancelReason): Promise<Outcome>;
	finish(order: StoredOrder, status: "confirmed" | "cancelled", reason: CancelReason | null): Promise<StoredOrder>;
	reload(order: StoredOrder): Promise<StoredOrder>;
	reprice(order: StoredOrder, items: OrderItem[]): Promise<StoredOrder>;
	currentPrices(ctx: Context, order: StoredOrder): Promise<OrderItem[]>;
}

/** The settle loop and card retries (settle.mixin.ts). */
export interface SettleMethods {
	keepCardForRetries(orderId: string, card: string): void;
	forgetCard(orderId: string): void;
	settleUnfinished(): Promise<void>;
}

/** The actions' helpers (orders.service.ts). */
export interface OrderMethods {
	findVisible(id: string, ctx: Context<unknown, ShopMeta>): Promise<StoredOrder>;
	answer(ctx: Context<unknown, ShopMeta>, outcome: Outcome, card: string): Promise<StoredOrder>;
	replay(ctx: Context<unknown, ShopMeta>, order: StoredOrder): Promise<StoredOrder>;
}

export interface OrdersVars extends DbVars<OrdersStore> {
	/** Orders being created by a request in this process right now. */
	inFlight: InFlightOrders;
	/** The prices this node last saw, for writing a new order before its reservation prices it. */
	priceBook: PriceBook;
	/** Confirmed orders whose holds are still to be marked sold, sent to inventory in batches. */
	holdCommits: HoldCommits;
}

export type OrdersMethods = SagaMethods & SettleMethods & OrderMethods;
export type OrdersThis = Service<OrdersSettings> & OrdersMethods & OrdersVars;
