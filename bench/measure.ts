/** What the benchmark scripts measure, once: medians, CPU and memory of a process, Prometheus counters. */
import { readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat's times (`getconf CLK_TCK`). */
export const CLK_TCK = 100;

export const median = (values: number[]) => {
	const sorted = [...values].sort((a, b) => a - b);
	const mid = Math.floor(sorted.length / 2);
	return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

export const round2 = (value: number) => Math.round(value * 100) / 100;

/** CPU time a process used so far (utime + stime), in clock ticks; 0 when it is gone. */
export function cpuTicks(pid: number | undefined): number {
	if (!pid) return 0;
	try {
		// After "pid (comm) ": state is field 3 of stat, utime 14 and stime 15, i.e. indexes 11 and 12 here.
		const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
		return Number(fields[11]) + Number(fields[12]);
	} catch {
		return 0;
	}
}

/** Resident memory of a process in MB; NaN when it is gone. */
export function rssMb(pid: number | undefined): number {
	if (!pid) return NaN;
	try {
		const line = readFileSync(`/proc/${pid}/status`, "utf8")
			.split("\n")
			.find(l => l.startsWith("VmRSS:"));
		return line ? Math.round(Number(line.split(/\s+/)[1]) / 1024) : NaN;
	} catch {
		return NaN;
	}
}

/** Every sample of the Prometheus metrics named, summed per name over the `/metrics` URLs (a URL that does not answer counts 0). */
export async function scrapeCounters(metricsUrls: string[], names: string[]): Promise<Record<string, number>> {
	const sums: Record<string, number> = Object.fromEntries(names.map(name => [name, 0]));
	for (const url of metricsUrls) {
		const text = await fetch(url)
			.then(res => res.text())
			.catch(() => "");
		for (const line of text.split("\n")) {
			const name = line.split(/[{ ]/, 1)[0];
			if (name in sums) sums[name] += Number(line.slice(line.lastIndexOf(" ") + 1)) || 0;
		}
	}
	return sums;
}

/** The catalogue's cache counters: the gateway's product cache, whose misses go on to inventory.get's Moleculer cacher. */
export const CACHE_COUNTERS = [
	"shop_gateway_product_cache_hits",
	"shop_gateway_product_cache_misses",
	"moleculer_cacher_get_total",
	"moleculer_cacher_found_total"
];

export interface CacheHits {
	gateway: { reads: number; hits: number; rate: number };
	cacher: { gets: number; hits: number; rate: number };
}

/** What the caches answered between two `scrapeCounters(urls, CACHE_COUNTERS)`. */
export function cacheHits(before: Record<string, number>, after: Record<string, number>): CacheHits {
	const delta = (counter: string) => after[counter] - before[counter];
	const hits = delta("shop_gateway_product_cache_hits");
	const reads = hits + delta("shop_gateway_product_cache_misses");
	const gets = delta("moleculer_cacher_get_total");
	const found = delta("moleculer_cacher_found_total");
	return {
		gateway: { reads, hits, rate: reads > 0 ? round2(hits / reads) : NaN },
		cacher: { gets, hits: found, rate: gets > 0 ? round2(found / gets) : NaN }
	};
}
