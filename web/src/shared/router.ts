/** A tiny history-API router: the current path as a signal-like hook, and links that do not reload. */
import { useEffect, useState } from "preact/hooks";

type Listener = () => void;
const listeners = new Set<Listener>();

export function navigate(to: string, replace = false): void {
	if (replace) history.replaceState(null, "", to);
	else history.pushState(null, "", to);
	listeners.forEach(listener => listener());
}

window.addEventListener("popstate", () => listeners.forEach(listener => listener()));

export interface Location {
	path: string;
	params: URLSearchParams;
}

export function useLocation(): Location {
	const read = (): Location => ({ path: location.pathname, params: new URLSearchParams(location.search) });
	const [current, setCurrent] = useState(read);
	useEffect(() => {
		const listener = () => setCurrent(read());
		listeners.add(listener);
		return () => void listeners.delete(listener);
	}, []);
	return current;
}

/**
 * Follows this app's links without a reload (`inApp`: the paths it routes itself; a link to the other
 * app loads it). A click with a modifier key keeps the browser's meaning (new tab, ...).
 */
export const linkHandler =
	(inApp: (path: string) => boolean) =>
	(event: MouseEvent): void => {
		const anchor = (event.target as Element | null)?.closest?.("a");
		if (!anchor || anchor.target || anchor.hasAttribute("download") || event.defaultPrevented) return;
		if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
		const url = new URL(anchor.href, location.href);
		if (url.origin !== location.origin || !inApp(url.pathname)) return;
		// An anchor in this page (the skip link): the browser's own scroll and focus.
		if (url.hash && url.pathname === location.pathname && url.search === location.search) return;
		event.preventDefault();
		navigate(url.pathname + url.search);
	};
