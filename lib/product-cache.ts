/**
 * The gateway's cache of product answers (`GET /api/products/:id`): the bytes of the JSON answer and
 * their strong ETag, made once per product and served as they are (README "Catalogue reads").
 *
 * - Filled only from answers: when `inventory.get` answered a product through the gateway's normal
 *   path, its bytes are kept under the product's own id. A request for any other string (an unknown
 *   id, a bad one, a trailing slash, a query string) finds nothing and takes the normal path, with its
 *   404s and 422s.
 * - Dropped when the product changes: `product.updated` (broadcast by inventory on every change of a
 *   product, stock included, to every node that listens) drops the ids it names; the gateway also
 *   drops the products a write it relayed answered with (an order's lines, an updated product), so a
 *   client that wrote through this gateway reads its own write whatever the event's timing.
 * - Never filled with an answer older than a drop: an answer is stored only if no drop happened
 *   since its call began (`epoch`), so a read that raced an order cannot put back the stock before it;
 *   nor with an answer for a product dropped in the last `settleMs` (another inventory node may not
 *   have had the event yet when it answered from its own cache): those reads are served, not kept.
 * - Bounded: at most `max` entries and `maxBytes` bytes, and each entry lives `ttlMs` at most (read or
 *   not), which bounds how long a gateway that missed an event (a NATS slow consumer) can lag: as long
 *   as an inventory node's own cache (moleculer.config.ts, 30 s). A reconnection to the bus drops everything.
 */
import { createHash } from "node:crypto";
import { LRUCache } from "lru-cache";

export interface ProductCacheLimits {
	/** Entries at most. */
	max: number;
	/** Bytes at most (the answers' bytes and their keys). */
	maxBytes: number;
	/** How long an entry lives, read or not (ms). */
	ttlMs: number;
	/** How long after a product's drop its answers are not kept (ms). */
	settleMs: number;
}

/**
 * 5,000 products or 4 MB (a product with the longest description is ~5 KB), 30 s each, as the
 * inventory nodes' cache (a miss costs the whole pipeline, ~8 hits' worth, so the TTL shows in the
 * figures: at 3,000 reads/s over 1,000 Zipf products, 5 s gave a 93% hit rate, 30 s 98.8%).
 */
export const PRODUCT_CACHE_LIMITS: ProductCacheLimits = { max: 5000, maxBytes: 4 * 1024 * 1024, ttlMs: 30_000, settleMs: 1000 };

export interface CachedAnswer {
	/**
	 * The answer's body: the product's JSON, as `JSON.stringify` wrote it. A string, not a Buffer:
	 * Node writes a string body with the headers in one `write`, a Buffer as a second chunk (`writev`).
	 */
	body: string;
	/** Its length in bytes (Content-Length). */
	bytes: number;
	/** A strong validator of those bytes: the same product gets the same ETag from every gateway. */
	etag: string;
}

export interface ProductCacheStats {
	hits: number;
	misses: number;
	entries: number;
	bytes: number;
}

/** A strong ETag of a body: its SHA-1, base64url (27 characters), quoted. */
export function strongETag(body: string): string {
	return `"${createHash("sha1").update(body).digest("base64url")}"`;
}

/**
 * Whether an `If-None-Match` header names `etag` (RFC 9110 13.1.2: `*`, or a list of entity tags
 * compared weakly, so `W/"x"` matches `"x"`).
 */
export function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
	if (!header) return false;
	if (header.trim() === "*") return true;
	for (const part of header.split(",")) {
		const tag = part.trim();
		if (tag === etag || (tag.startsWith("W/") && tag.slice(2) === etag)) return true;
	}
	return false;
}

export class ProductCache {
	private readonly entries: LRUCache<string, CachedAnswer>;
	/** When each recently dropped product was dropped (ms): at most `max` of them. */
	private readonly droppedAt = new Map<string, number>();
	/** Counts drops: an answer whose call began at an older epoch is not stored. */
	private dropped = 0;
	private hitCount = 0;
	private missCount = 0;

	constructor(private readonly limits: ProductCacheLimits = PRODUCT_CACHE_LIMITS) {
		this.entries = new LRUCache<string, CachedAnswer>({
			max: limits.max,
			maxSize: limits.maxBytes,
			sizeCalculation: (answer, id) => answer.bytes + id.length,
			ttl: limits.ttlMs,
			updateAgeOnGet: false
		});
	}

	/** The epoch to hand to `store` for an answer whose call begins now. */
	get epoch(): number {
		return this.dropped;
	}

	/** The cached answer for a product id, counted as a hit or a miss. */
	lookup(id: string): CachedAnswer | undefined {
		const answer = this.entries.get(id);
		if (answer) this.hitCount++;
		else this.missCount++;
		return answer;
	}

	/**
	 * Keeps a product's answer, unless a product was dropped since `epoch` (the answer may be older
	 * than that change) or this one was dropped within `settleMs`. Answers the entry to serve either way.
	 */
	store(product: { id: string }, epoch: number): CachedAnswer {
		const body = JSON.stringify(product);
		const answer: CachedAnswer = { body, bytes: Buffer.byteLength(body), etag: strongETag(body) };
		if (epoch === this.dropped && !this.settling(product.id)) this.entries.set(product.id, answer);
		return answer;
	}

	/** Drops these products' answers (they changed). */
	drop(ids: Iterable<string>): void {
		this.dropped++;
		const now = Date.now();
		for (const id of ids) {
			this.entries.delete(id);
			this.droppedAt.delete(id);
			this.droppedAt.set(id, now);
		}
		this.forgetSettled(now);
	}

	/** Drops every answer (a change whose products are not known, or events that may have been missed). */
	clear(): void {
		this.dropped++;
		this.entries.clear();
		this.droppedAt.clear();
		this.clearedAt = Date.now();
	}

	private clearedAt = -Infinity;

	private settling(id: string): boolean {
		const since = Date.now() - this.limits.settleMs;
		return this.clearedAt > since || (this.droppedAt.get(id) ?? -Infinity) > since;
	}

	/** Forgets the drops older than `settleMs` (the Map is in drop order), and the oldest past `max`. */
	private forgetSettled(now: number): void {
		for (const [id, at] of this.droppedAt) {
			if (at > now - this.limits.settleMs && this.droppedAt.size <= this.limits.max) break;
			this.droppedAt.delete(id);
		}
	}

	stats(): ProductCacheStats {
		return { hits: this.hitCount, misses: this.missCount, entries: this.entries.size, bytes: this.entries.calculatedSize };
	}
}
