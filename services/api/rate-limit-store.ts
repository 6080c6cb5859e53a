/**
 * A sliding-window store for moleculer-web's per-route `rateLimit` (its `StoreFactory` hook).
 *
 * moleculer-web's own MemoryStore counts in fixed windows and clears every counter at once when
 * one ends, so a client gets its limit just before the reset and again just after: twice the
 * limit within seconds. This store keeps, per key, the times of the hits it let through in the last
 * `window` ms, so that no window of that length, wherever it starts, holds more than `limit` of them.
 * A refused hit is not recorded (it did no work), so a client that waits its Retry-After gets in.
 *
 * Memory is bounded: at most `limit` timestamps a key, keys with no hit left in the window are
 * dropped on every sweep (each `window`, and whenever the key count reaches `maxKeys`), and past
 * `maxKeys` the least recently seen key is forgotten.
 */
import type { RateLimitSettings } from "moleculer-web";

/** Keys remembered at most; one key is a few hundred bytes at the default limit of 10. */
export const DEFAULT_MAX_KEYS = 100_000;

export interface SlidingWindowOptions extends RateLimitSettings {
	maxKeys?: number;
}

export class SlidingWindowStore {
	/** When the key counted last frees its oldest slot (ms since the epoch): moleculer-web's `X-Rate-Limit-Reset`. */
	resetTime: number;
	private readonly limit: number;
	private readonly maxKeys: number;
	/** Per key, the accepted hits' times, oldest first; the Map's order is least recently seen first. */
	private readonly hits = new Map<string, number[]>();
	private readonly timer: NodeJS.Timeout;

	constructor(
		private readonly window: number,
		opts: SlidingWindowOptions = {}
	) {
		this.limit = opts.limit ?? 30;
		this.maxKeys = opts.maxKeys ?? DEFAULT_MAX_KEYS;
		this.resetTime = Date.now() + window;
		this.timer = setInterval(() => this.sweep(Date.now()), window);
		this.timer.unref();
	}

	/** Counts a hit of `key`; answers how many hits the window holds with it (over `limit`: refused, and not recorded). */
	inc(key: string): number {
		const now = Date.now();
		let times = this.hits.get(key);
		if (times) {
			this.hits.delete(key);
			this.dropExpired(times, now);
		} else {
			times = [];
			if (this.hits.size >= this.maxKeys) this.makeRoom(now);
		}
		this.hits.set(key, times);
		const accepted = times.length < this.limit;
		if (accepted) times.push(now);
		this.resetTime = times[0] + this.window;
		return accepted ? times.length : this.limit + 1;
	}

	/** Whole seconds until `key` may be let through again (0 when it may now). */
	retryAfterSeconds(key: string): number {
		const times = this.hits.get(key);
		if (!times) return 0;
		const now = Date.now();
		this.dropExpired(times, now);
		if (times.length < this.limit) return 0;
		return Math.max(1, Math.ceil((times[0] + this.window - now) / 1000));
	}

	/** Keys remembered now. */
	get size(): number {
		return this.hits.size;
	}

	/** Stops the sweeping timer (moleculer-web never does; the timer is unref'd anyway). */
	close(): void {
		clearInterval(this.timer);
	}

	private dropExpired(times: number[], now: number): void {
		let expired = 0;
		while (expired < times.length && times[expired] <= now - this.window) expired++;
		if (expired > 0) times.splice(0, expired);
	}

	/** Drops every key with no hit left in the window. */
	private sweep(now: number): void {
		for (const [key, times] of this.hits) {
			if (times.length === 0 || times[times.length - 1] <= now - this.window) this.hits.delete(key);
		}
	}

	private makeRoom(now: number): void {
		this.sweep(now);
		// Still full of live keys: forget the least recently seen (Map order).
		for (const key of this.hits.keys()) {
			if (this.hits.size < this.maxKeys) break;
			this.hits.delete(key);
		}
	}
}
