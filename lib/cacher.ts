/**
 * The node's cache (catalogue pages and products, token resolutions), bounded, and keyed on what an
 * action will actually see.
 *
 * - Bounded: Moleculer's MemoryLRU cacher, whose LRU container also gets a bound in bytes. A count
 *   alone bounds nothing: one entry is a few bytes (a product) or a page of 100 products with 5,000-
 *   character descriptions (over 500 KB), and any client can ask for thousands of distinct pages.
 *   Entries also expire at their TTL whether read or not (MemoryLRU would keep a hot entry alive on
 *   every read), so the TTL still backs up the cache cleaning that other nodes broadcast.
 * - Keyed on validated params: Moleculer's Cacher middleware runs before its Validator, so by default
 *   a key is made of the raw query, and `page=01`, `page=001`, ... each stored a copy of page 1.
 *   `validatedKeygen` runs the action's own params schema (the broker's validator, with its
 *   conversions, defaults and trims) on a copy of the params first, then makes Moleculer's usual key.
 */
import { Cachers, type Context, type ServiceBroker, type ServiceSchema } from "moleculer";
import { LRUCache } from "lru-cache";

type Params = Record<string, unknown>;
type ActionDefinition = NonNullable<ServiceSchema["actions"]>[string] & { name?: string; params?: Record<string, unknown> };
type CacheOptions = { keys?: string[] };
type MemoryLruOptions = NonNullable<ConstructorParameters<typeof Cachers.MemoryLRU>[0]>;
type Checker = (params: Params) => true | unknown[] | Promise<true | unknown[]>;

export interface BoundedCacherOptions {
	/** Seconds an entry lives, read or not (an action's `cache.ttl` overrides it). */
	ttl: number;
	/** Entries at most. */
	max: number;
	/** Bytes at most, counted as the entries' JSON length. */
	maxBytes: number;
	/** Longer keys are hashed (no token appears in a key or its log line). */
	maxParamsLength: number;
}

/**
 * The node's cache at most: entries, and bytes of JSON (a page of 20 products is about 20 KB, so
 * some 400 such pages; the heap they take is 2 to 3 times their JSON).
 */
export const CACHE_LIMITS = { max: 5000, maxBytes: 8 * 1024 * 1024 } as const;

const CACHER_ENTRIES = "shop.cacher.entries";
const CACHER_BYTES = "shop.cacher.bytes";

/** The size an entry is counted for: its JSON length (at least 1, as the LRU requires). */
export function entrySize(value: unknown): number {
	return Math.max(1, JSON.stringify(value)?.length ?? 1);
}

/** What Moleculer's MemoryLRU cacher keeps its entries in. */
interface LruContainer {
	cache: LRUCache<string, NonNullable<unknown>>;
}

export class BoundedCacher extends Cachers.MemoryLRU {
	private readonly maxBytes: number;

	constructor(options: BoundedCacherOptions & { keygen?: MemoryLruOptions["keygen"] }) {
		super({ ttl: options.ttl, max: options.max, clone: false, maxParamsLength: options.maxParamsLength, keygen: options.keygen });
		(this as unknown as LruContainer).cache = new LRUCache<string, NonNullable<unknown>>({
			max: options.max,
			maxSize: options.maxBytes,
			sizeCalculation: entrySize,
			ttl: options.ttl * 1000,
			updateAgeOnGet: false
		});
		this.maxBytes = options.maxBytes;
	}

	/**
	 * What the broker's options show of the cacher (`$node.options`, readable over the bus, serialises
	 * them as JSON): its limits. The instance itself holds the broker, hence every local service's
	 * settings, secure ones included (the JWT secret, the admin password, the database URLs).
	 */
	toJSON(): { type: string; options: BoundedCacherOptions } {
		const { ttl, max, maxParamsLength } = this.opts as unknown as BoundedCacherOptions;
		return { type: "BoundedCacher", options: { ttl, max, maxBytes: this.maxBytes, maxParamsLength } };
	}

	/** How many entries, and how many bytes (JSON) they are counted for. */
	usage(): { entries: number; bytes: number } {
		const { cache } = this as unknown as LruContainer;
		return { entries: cache.size, bytes: cache.calculatedSize };
	}

	/** Moleculer's cacher metrics, and the cache's size (`shop_cacher_entries`, `shop_cacher_bytes` at /metrics). */
	override init(broker: ServiceBroker): void {
		super.init(broker);
		this.metrics.register({ name: CACHER_ENTRIES, type: "gauge", description: "Entries in this node's cache" });
		this.metrics.register({ name: CACHER_BYTES, type: "gauge", description: "Bytes (JSON) of the entries in this node's cache" });
	}

	override set(key: string, data: unknown, ttl?: number): Promise<void> {
		return super.set(key, data, ttl).finally(() => this.reportUsage());
	}

	override del(key: string | string[]): Promise<void> {
		return super.del(key).finally(() => this.reportUsage());
	}

	override clean(match?: string | string[]): Promise<void> {
		return super.clean(match).finally(() => this.reportUsage());
	}

	private reportUsage(): void {
		const { entries, bytes } = this.usage();
		this.metrics.set(CACHER_ENTRIES, entries);
		this.metrics.set(CACHER_BYTES, bytes);
	}
}

/** An action's params schema, compiled once by the broker's validator. */
const checkers = new WeakMap<object, Checker | null>();

function checkerOf(ctx: Context, action: ActionDefinition): Checker | null {
	if (!action.params) return null;
	let checker = checkers.get(action.params);
	if (checker === undefined) {
		const validator = (ctx.broker as unknown as { validator?: { compile(schema: object): Checker } }).validator;
		checker = validator ? validator.compile(action.params) : null;
		checkers.set(action.params, checker);
	}
	return checker;
}

/**
 * A copy of params whose values are all primitives (the cached actions' ids, tokens, page numbers and
 * search strings), or undefined for nested ones (which need `structuredClone`: the validator converts
 * nested values in place). A spread is some 20 times cheaper than `structuredClone`, on every cached call.
 */
function flatCopy(params: Params): Params | undefined {
	for (const key in params) {
		const value = params[key];
		if (value !== null && typeof value === "object") return undefined;
	}
	return { ...params };
}

/**
 * A Moleculer cache keygen: the key of the params as the action's validator will hand them over
 * (converted, defaulted, trimmed), optionally normalised further by `normalise` (for what the
 * action treats alike, e.g. a case-insensitive search). Params the validator refuses get one
 * constant key: nothing is stored under it, as the call fails validation.
 */
export function validatedKeygen(normalise: (params: Params) => Params = params => params) {
	return function keygen(this: unknown, action: ActionDefinition, opts: CacheOptions, ctx: Context): string {
		const checker = checkerOf(ctx, action);
		let params = ctx.params as Params;
		if (checker && params !== null && typeof params === "object") {
			const copy = flatCopy(params) ?? structuredClone(params);
			const result = checker(copy);
			if (result instanceof Promise) return (this as unknown as { defaultKeygen: typeof keygen }).defaultKeygen(action, opts, ctx);
			if (result !== true) return `${action.name}:invalid`;
			params = normalise(copy);
		}
		return (this as unknown as { defaultKeygen: typeof keygen }).defaultKeygen(action, opts, { params, meta: ctx.meta, headers: ctx.headers } as Context);
	};
}
