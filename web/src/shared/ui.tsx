/** Small accessible building blocks both apps share. */
import type { ComponentChildren } from "preact";
import { useEffect, useId, useLayoutEffect, useRef, useState } from "preact/hooks";

/**
 * The page's heading: focused when the page changes, so a screen reader announces the new page and
 * the keyboard starts from it; also the document's title.
 */
export function PageTitle({ children, title }: { children: ComponentChildren; title: string }) {
	const ref = useRef<HTMLHeadingElement>(null);
	useEffect(() => {
		document.title = title;
		ref.current?.focus();
	}, [title]);
	return (
		<h1 ref={ref} tabIndex={-1}>
			{children}
		</h1>
	);
}

/**
 * An error (role alert: read out at once) or a piece of news (role status: read out politely). When
 * it appears while the keyboard's focus is lost (the button pressed was disabled while busy, or went
 * away, as "Cancel order" does), it takes the focus: the next Tab goes on from the message, not from
 * the top of the page.
 */
export function Notice({ kind, children }: { kind: "error" | "info" | "success"; children: ComponentChildren }) {
	const ref = useRef<HTMLParagraphElement>(null);
	const shown = !(children == null || children === "" || children === false);
	const text = shown ? String(children) : "";
	// A layout effect: the focus moves in the same task as the message appears, not after the next paint,
	// so nothing (a person's next key, a test) meets the message shown and the focus still lost.
	useLayoutEffect(() => {
		const active = document.activeElement;
		if (shown && (active === null || active === document.body)) ref.current?.focus();
	}, [shown, text]);
	if (!shown) return null;
	return (
		<p ref={ref} tabIndex={-1} class={`notice notice-${kind}`} role={kind === "error" ? "alert" : "status"}>
			{children}
		</p>
	);
}

interface InputProps {
	label: string;
	type?: "text" | "email" | "password" | "number" | "search";
	autoComplete?: string;
	inputMode?: "text" | "numeric" | "decimal" | "email";
	required?: boolean;
	maxLength?: number;
	min?: number;
	max?: number;
	value: string;
	onValue: (value: string) => void;
	error?: string;
	hint?: string;
}

/** A labelled input; its error is shown under it and tied to it (aria-invalid, aria-describedby). */
export function Field({ label, value, onValue, error, hint, type = "text", ...rest }: InputProps) {
	const id = useId();
	const described = [hint ? `${id}-hint` : "", error ? `${id}-error` : ""].filter(Boolean).join(" ") || undefined;
	return (
		<div class="field">
			<label for={id}>{label}</label>
			<input
				id={id}
				type={type as "text"}
				value={value}
				onInput={event => onValue((event.currentTarget as HTMLInputElement).value)}
				aria-invalid={error ? "true" : undefined}
				aria-describedby={described}
				{...rest}
			/>
			{hint && (
				<small id={`${id}-hint`} class="hint">
					{hint}
				</small>
			)}
			{error && (
				<small id={`${id}-error`} class="field-error">
					{error}
				</small>
			)}
		</div>
	);
}

/** Calls `tick` now and every `ms` while `active`; stops on unmount. */
export function useInterval(tick: () => void, ms: number, active = true): void {
	const saved = useRef(tick);
	saved.current = tick;
	useEffect(() => {
		if (!active) return;
		const timer = setInterval(() => saved.current(), ms);
		return () => clearInterval(timer);
	}, [ms, active]);
}

/** A fresh random key for a request that must not run twice (an order): 32 hex digits. */
export const newKey = () => Array.from(crypto.getRandomValues(new Uint8Array(16)), byte => byte.toString(16).padStart(2, "0")).join("");

/** Previous / next page of a paged list, with where the reader is; nothing when everything fits on one page. */
export function Pager({ page, totalPages, onPage }: { page: number; totalPages: number; onPage: (page: number) => void }) {
	if (totalPages <= 1) return null;
	return (
		<nav aria-label="Pages" class="pager">
			<button type="button" disabled={page <= 1} onClick={() => onPage(page - 1)}>
				Previous page
			</button>
			<span>
				Page {page} of {totalPages}
			</span>
			<button type="button" disabled={page >= totalPages} onClick={() => onPage(page + 1)}>
				Next page
			</button>
		</nav>
	);
}

/** The product search of both apps: a labelled search box whose value is submitted trimmed. */
export function SearchForm({ id, initial, onSearch }: { id: string; initial: string; onSearch: (search: string) => void }) {
	const [typed, setTyped] = useState(initial);
	return (
		<form
			role="search"
			class="search"
			onSubmit={event => {
				event.preventDefault();
				onSearch(typed.trim());
			}}
		>
			<label for={id}>Search products</label>
			<input id={id} type="search" value={typed} onInput={event => setTyped(event.currentTarget.value)} maxLength={100} />
			<button type="submit">Search</button>
		</form>
	);
}
