/**
 * Moleculer's request metrics, with their labels bound once per action and caller instead of hashed
 * on every call (issue 10: Moleculer's Metrics middleware was the largest per-call cost).
 *
 * Moleculer's own Metrics middleware (node_modules/moleculer/src/middlewares/metrics.js) updates five
 * metrics per call by name and label object: each update looks the metric up, builds a string of
 * its labels to find the value, stamps it with `Date.now()`, and tells every reporter. This one keeps
 * everything of Moleculer's middleware (it is created from it: the same metric names, label names,
 * units, buckets and quantiles, the same event, transit and transporter metrics), except its two
 * action hooks. Those find the value objects of an action's labels (service, action, type, caller)
 * once, on the first call from each caller, and then update them in place:
 *
 * - `moleculer.request.total` +1, `moleculer.request.active` +1 then -1, `moleculer.request.levels`
 *   +1 (per call level), `moleculer.request.time` observed (ms; Moleculer's buckets and quantiles);
 * - on an error, `moleculer.request.error.total` +1 by Moleculer's own path (labels with the error's
 *   name, code and type: errors are rare, and their labels vary);
 * - the metric is marked changed, so the next snapshot (`$node.metrics`, the Prometheus endpoint)
 *   reads the new values. Reporters that push every change (Console, CSV, Event, StatsD; the shop
 *   uses Prometheus, which pulls) are still told of each one.
 *
 * What is left out: the per-update timestamp (a value keeps the time of its label set's first call;
 * the Prometheus exposition prints none).
 */
import { METRIC, MetricReporters } from "moleculer";
import type { ActionSchema, Context, Middleware, ServiceBroker } from "moleculer";
import { builtinMiddlewares, type ActionHook, type CallHandler } from "./moleculer-internals";

type Labels = Record<string, string | number | null>;

/** A gauge's or counter's value object for one label set (moleculer/src/metrics/types/gauge.js). */
interface GaugeItem {
	value: number;
	rate?: { update(value: number): void };
}

/** A histogram's value object for one label set (moleculer/src/metrics/types/histogram.js). */
interface HistogramItem {
	sum: number;
	count: number;
	lastValue: number | null;
	bucketValues?: Record<number, number>;
	quantileValues?: { add(value: number): void };
	rate?: { update(value: number): void };
}

interface MetricObject<Item> {
	values: Map<string, Item>;
	buckets?: number[];
	hashingLabels(labels: Labels): string;
	setDirty(): void;
	changed(value?: number, labels?: Labels): void;
}

interface Gauge extends MetricObject<GaugeItem> {
	set(value: number, labels: Labels): GaugeItem;
}

interface Histogram extends MetricObject<HistogramItem> {
	observe(value: number, labels: Labels): HistogramItem;
	generateSnapshot(): unknown;
}

interface Registry {
	getMetric(name: string): unknown;
	increment(name: string, labels: Labels): void;
	reporter?: Array<{ metricChanged: unknown }>;
}

/** The request metrics of one action, type and caller: their value objects, found once. */
interface Bound {
	caller: string | null;
	labels: Labels;
	total: GaugeItem;
	active: GaugeItem;
	/** Made by Moleculer's own `observe` on the first call's end. */
	time?: HistogramItem;
	/** Durations per bucket (not cumulative) since the last snapshot. */
	pending?: Float64Array;
}

const now = () => performance.now();

export function CallMetrics(this: ServiceBroker, broker: ServiceBroker): Middleware {
	const builtin = builtinMiddlewares.Metrics.call(broker, broker);
	const registry = broker.metrics as unknown as Registry;

	let metrics: { total: Gauge; active: Gauge; time: Histogram; levels: Gauge; push: boolean } | undefined;
	/** `moleculer.request.levels` per call level: its value object and labels. */
	const levels: Array<{ item: GaugeItem; labels: Labels }> = [];
	const pending: Bound[] = [];

	// Resolved at the first call: Moleculer wraps its internal `$node` actions before the middlewares' `created`.
	function requestMetrics() {
		const base = MetricReporters.Base.prototype.metricChanged;
		const time = registry.getMetric(METRIC.MOLECULER_REQUEST_TIME) as Histogram;
		// A snapshot (`$node.metrics`, a Prometheus scrape) first takes in the counts made since the last one.
		const generate = time.generateSnapshot;
		time.generateSnapshot = function (this: Histogram) {
			flushBuckets(this);
			return generate.call(this);
		};
		metrics = {
			total: registry.getMetric(METRIC.MOLECULER_REQUEST_TOTAL) as Gauge,
			active: registry.getMetric(METRIC.MOLECULER_REQUEST_ACTIVE) as Gauge,
			time,
			levels: registry.getMetric(METRIC.MOLECULER_REQUEST_LEVELS) as Gauge,
			push: (registry.reporter ?? []).some(reporter => reporter.metricChanged !== base)
		};
		return metrics;
	}

	/** A value object for `labels`, made as Moleculer makes it (its first update creates it). */
	function itemOf(metric: Gauge, labels: Labels): GaugeItem {
		return metric.values.get(metric.hashingLabels(labels)) ?? metric.set(0, labels);
	}

	function add(metric: Gauge, item: GaugeItem, by: number, labels: Labels, push: boolean) {
		item.value += by;
		item.rate?.update(item.value);
		if (push) metric.changed(item.value, labels);
		else metric.setDirty();
	}

	/**
	 * Moleculer's `observe`, less the label hashing, the timestamp and the bucket loop: a call's
	 * duration is counted in its own bucket of `bound.pending`, added into Moleculer's cumulative
	 * bucket values when a snapshot is taken (`flushBuckets`).
	 */
	function observe(metric: Histogram, bound: Bound, value: number, push: boolean) {
		const item = bound.time;
		if (item === undefined) {
			bound.time = metric.observe(value, bound.labels);
			if (bound.time.bucketValues) {
				bound.pending = new Float64Array(metric.buckets!.length);
				pending.push(bound);
			}
			return;
		}
		item.sum += value;
		item.count++;
		item.lastValue = value;
		if (bound.pending !== undefined) {
			const buckets = metric.buckets!;
			let i = 0;
			while (i < buckets.length && value > buckets[i]) i++;
			if (i < buckets.length) bound.pending[i]++;
		}
		item.quantileValues?.add(value);
		item.rate?.update(item.count);
		if (push) metric.changed(value, bound.labels);
		else metric.setDirty();
	}

	/** Adds the durations counted since the last snapshot into Moleculer's bucket values (cumulative: a bound counts every duration up to it). */
	function flushBuckets(metric: Histogram) {
		const buckets = metric.buckets!;
		for (const bound of pending) {
			const values = bound.time!.bucketValues!;
			let running = 0;
			for (let i = 0; i < buckets.length; i++) {
				running += bound.pending![i];
				bound.pending![i] = 0;
				values[buckets[i]] += running;
			}
		}
	}

	function wrap(type: "local" | "remote"): ActionHook {
		return function (next: CallHandler, action: ActionSchema): CallHandler {
			if (!broker.isMetricsEnabled()) return next;
			const actionName = action.name ?? null;
			const service = (action.service as { fullName?: string } | undefined)?.fullName ?? null;
			let last: Bound | undefined;
			const byCaller = new Map<string | null, Bound>();

			function bind(caller: string | null): Bound {
				let bound = byCaller.get(caller);
				if (!bound) {
					const { total, active } = metrics ?? requestMetrics();
					const labels: Labels = { service, action: actionName, caller, type };
					bound = { caller, labels, total: itemOf(total, labels), active: itemOf(active, labels) };
					byCaller.set(caller, bound);
				}
				return bound;
			}

			return function callMetrics(ctx: Context) {
				const caller = ctx.caller ?? null;
				const bound = last !== undefined && last.caller === caller ? last : (last = bind(caller));
				const m = metrics!;
				add(m.total, bound.total, 1, bound.labels, m.push);
				add(m.active, bound.active, 1, bound.labels, m.push);
				const level = ctx.level ?? 1;
				const byLevel = levels[level] ?? (levels[level] = { item: itemOf(m.levels, { level }), labels: { level } });
				add(m.levels, byLevel.item, 1, byLevel.labels, m.push);
				const started = now();
				return next(ctx).then(
					res => {
						observe(m.time, bound, now() - started, m.push);
						add(m.active, bound.active, -1, bound.labels, m.push);
						return res;
					},
					(err: { name?: string; code?: number; type?: string } | null) => {
						observe(m.time, bound, now() - started, m.push);
						add(m.active, bound.active, -1, bound.labels, m.push);
						registry.increment(METRIC.MOLECULER_REQUEST_ERROR_TOTAL, {
							...bound.labels,
							errorName: err?.name ?? null,
							errorCode: err?.code ?? null,
							errorType: err?.type ?? null
						});
						throw err;
					}
				);
			};
		};
	}

	return { ...builtin, name: "Metrics", localAction: wrap("local"), remoteAction: wrap("remote") } as Middleware;
}
