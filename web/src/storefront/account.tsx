/** Log in and register; afterwards back to where the person came from (`?next=`). */
import { useState } from "preact/hooks";
import { call, type Session } from "../shared/api";
import { explain } from "../shared/errors";
import { navigate } from "../shared/router";
import { Field, Notice, PageTitle } from "../shared/ui";
import { session } from "./state";

/** Only a path of this shop: never an address elsewhere. */
const safeNext = (next: string | null) => (next && next.startsWith("/") && !next.startsWith("//") ? next : "/");

export function Account({ mode, next }: { mode: "login" | "register"; next: string | null }) {
	const [email, setEmail] = useState("");
	const [password, setPassword] = useState("");
	const [name, setName] = useState("");
	const [error, setError] = useState("");
	const [fields, setFields] = useState<Record<string, string>>({});
	const [busy, setBusy] = useState(false);
	const register = mode === "register";
	const other = `${register ? "/login" : "/register"}${next ? `?next=${encodeURIComponent(next)}` : ""}`;

	async function submit(event: Event) {
		event.preventDefault();
		setBusy(true);
		setError("");
		setFields({});
		try {
			const body = register ? { email, password, name } : { email, password };
			const { body: answer } = await call<Session>("POST", register ? "/users/register" : "/users/login", { body });
			session.set({ user: answer.user, token: answer.token });
			navigate(safeNext(next), true);
		} catch (err) {
			const explained = explain(err, register ? "register" : "login");
			setError(explained.message);
			setFields(explained.fields);
			setBusy(false);
		}
	}

	const title = register ? "Create an account" : "Log in";
	return (
		<>
			<PageTitle title={`${title} · Moleculer shop`}>{title}</PageTitle>
			{next && <p>Please {register ? "register" : "log in"} to continue; you will come back to where you were.</p>}
			<form class="form" onSubmit={event => void submit(event)} noValidate>
				{register && <Field label="Name" value={name} onValue={setName} error={fields.name} autoComplete="name" required maxLength={100} />}
				<Field label="Email" type="email" value={email} onValue={setEmail} error={fields.email} autoComplete="email" required />
				<Field
					label="Password"
					type="password"
					value={password}
					onValue={setPassword}
					error={fields.password}
					hint={register ? "8 to 128 characters." : undefined}
					autoComplete={register ? "new-password" : "current-password"}
					required
				/>
				<Notice kind="error">{error}</Notice>
				<button type="submit" disabled={busy}>
					{register ? "Register" : "Log in"}
				</button>
			</form>
			<p>
				{register ? "Already have an account? " : "New here? "}
				<a href={other}>{register ? "Log in" : "Create an account"}</a>
			</p>
		</>
	);
}
