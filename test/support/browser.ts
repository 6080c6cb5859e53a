/**
 * A real Chromium for the browser suites: Debian's `chromium` package (CHROMIUM_PATH to use another
 * binary) driven by playwright-core; no browser is ever downloaded. Each page records its console
 * errors and uncaught exceptions, and `checkAccessibility` runs axe-core inside it.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from "playwright-core";
import { ROOT } from "./shop";

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export function launchBrowser(): Promise<Browser> {
	return chromium.launch({
		executablePath: CHROMIUM_PATH,
		// No sandbox (CI runs as root); no background traffic to Google's services, which this network refuses.
		args: [
			"--no-sandbox",
			"--disable-gpu",
			"--disable-quic",
			"--no-first-run",
			"--disable-background-networking",
			"--disable-component-update",
			"--disable-sync"
		]
	});
}

export interface WatchedPage {
	page: Page;
	context: BrowserContext;
	/** Console errors and uncaught exceptions seen so far. */
	errors: string[];
}

/**
 * A page in a fresh context (its own storage). `bypassCSP` only so that axe-core can be injected: the
 * shop's pages forbid inline scripts, and CSP violations would show up in `errors`.
 */
export async function openPage(browser: Browser, baseURL: string, options: BrowserContextOptions = {}): Promise<WatchedPage> {
	const context = await browser.newContext({ baseURL, bypassCSP: true, ...options });
	const page = await context.newPage();
	const errors: string[] = [];
	page.on("console", message => {
		if (message.type() === "error") errors.push(`console: ${message.text()}`);
	});
	page.on("pageerror", err => errors.push(`exception: ${err.message}`));
	return { page, context, errors };
}

/**
 * The console errors that are not the browser's own report of an HTTP answer the walk expects (Chromium
 * logs every 4xx/5xx answer to fetch as "Failed to load resource": a declined card's 402 is one).
 */
export function unexpectedErrors(errors: string[], expectedStatuses: number[] = []): string[] {
	return errors.filter(error => {
		const status = /Failed to load resource: the server responded with a status of (\d{3})/.exec(error);
		return !(status && expectedStatuses.includes(Number(status[1])));
	});
}

const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

export interface AxeViolation {
	id: string;
	impact: string | null;
	help: string;
	nodes: Array<{ target: unknown; failureSummary?: string }>;
}

/** axe-core's serious and critical violations on the page as it is now (an empty list is a pass). */
export async function checkAccessibility(page: Page): Promise<AxeViolation[]> {
	// The callbacks run in the page (DOM types are not in this project's Node tsconfig: the shapes used are spelled out).
	if (!(await page.evaluate(() => "axe" in globalThis))) await page.addScriptTag({ content: AXE_SOURCE });
	const violations = await page.evaluate(async () => {
		const { axe, document } = globalThis as unknown as { axe: { run: (context: unknown) => Promise<{ violations: AxeViolation[] }> }; document: unknown };
		return (await axe.run(document)).violations;
	});
	return violations
		.filter(violation => violation.impact === "serious" || violation.impact === "critical")
		.map(({ id, impact, help, nodes }) => ({ id, impact, help, nodes: nodes.map(({ target, failureSummary }) => ({ target, failureSummary })) }));
}

/** Where screenshots go: docs/screenshots with SAVE_SCREENSHOTS=1 (to refresh the README's), else a temp folder. */
export const SCREENSHOT_DIR = process.env.SAVE_SCREENSHOTS === "1" ? path.join(ROOT, "docs", "screenshots") : path.join(tmpdir(), "shop-screenshots");
mkdirSync(SCREENSHOT_DIR, { recursive: true });

export function screenshot(page: Page, name: string): Promise<Buffer> {
	return page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
}

/** The storefront's first load as the browser timed it (Navigation Timing), in ms from navigation start. */
export interface LoadTiming {
	responseEnd: number;
	domContentLoaded: number;
	load: number;
	/** Bytes of script and style the page loaded (transfer size: compressed, as on the wire). */
	transferred: number;
}

export function loadTiming(page: Page): Promise<LoadTiming> {
	type Entry = { name: string; responseEnd: number; domContentLoadedEventEnd: number; loadEventEnd: number; transferSize: number };
	return page.evaluate(() => {
		const timing = performance as unknown as { getEntriesByType(type: string): Entry[] };
		const [nav] = timing.getEntriesByType("navigation");
		const resources = timing.getEntriesByType("resource");
		return {
			responseEnd: Math.round(nav.responseEnd),
			domContentLoaded: Math.round(nav.domContentLoadedEventEnd),
			load: Math.round(nav.loadEventEnd),
			transferred: resources.filter(entry => /\.(js|css)$/.test(new URL(entry.name).pathname)).reduce((sum, entry) => sum + entry.transferSize, 0)
		};
	});
}
