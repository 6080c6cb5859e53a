/**
 * No Docker engine runs on our machines, so the compose file is checked here: it must describe
 * the same nodes as `npm run cluster` (scripts/cluster-layout.ts), each joined to NATS, and the
 * image must run the same entry point as `npm start`.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { load } from "js-yaml";
import { parseNatsServers, SERVICE_NAMES } from "../../lib/config";
import { CLUSTER_LAYOUT } from "../../scripts/cluster-layout";
import { COMPOSE_NATS_SERVERS, composeNatsConfigText, passwordEnv, ROUTE_PASSWORD_ENV, routeEnv, type BusRole } from "../../scripts/nats-auth";
import { composeNginxConfigText, gatewaysOf } from "../../scripts/nginx";
import { CONFIG, NODE_ARGS, NODE_FLAGS, RUNNER } from "../../scripts/paths";
import packageJson from "../../package.json";

const root = path.resolve(__dirname, "../..");

interface ComposeService {
	environment?: Record<string, string>;
	ports?: string[];
	image?: string;
	command?: string[];
	depends_on?: string[];
	volumes?: string[];
}

describe("docker/", () => {
	const compose = load(readFileSync(path.join(root, "docker/docker-compose.yml"), "utf8")) as { services: Record<string, ComposeService> };
	const isNats = (name: string) => /^nats-\d+$/.test(name);
	const nodes = Object.entries(compose.services).filter(([name]) => !isNats(name) && name !== "nginx");
	const natsServers = Object.entries(compose.services).filter(([name]) => isNats(name));

	it("the compose file runs exactly the nodes of the local cluster layout", () => {
		const fromCompose = nodes
			.map(([, service]) => ({ nodeID: service.environment?.NODEID, services: service.environment?.SERVICES }))
			.sort((a, b) => String(a.nodeID).localeCompare(String(b.nodeID)));
		const fromLayout = CLUSTER_LAYOUT.map(node => ({ nodeID: node.nodeID, services: node.services.join(",") })).sort((a, b) =>
			a.nodeID.localeCompare(b.nodeID)
		);
		expect(fromCompose).toEqual(fromLayout);
	});

	it("the layout runs every service of services/ and nothing else", () => {
		expect([...new Set(CLUSTER_LAYOUT.flatMap(node => node.services))].sort()).toEqual([...SERVICE_NAMES]);
	});

	it("joins every node to all three NATS servers as its role's user, with the transit key, and publishes no node", () => {
		for (const [name, service] of nodes) {
			const role = service.environment?.SERVICES as BusRole;
			// The user and password written once, for every server of the list (lib/config.ts parseNatsServers).
			expect(`${name}: ${service.environment?.TRANSPORTER}`).toBe(
				`${name}: nats://${role}:\${${passwordEnv(role)}}@nats-1:4222,nats://nats-2:4222,nats://nats-3:4222`
			);
			expect(parseNatsServers(service.environment!.TRANSPORTER)).toEqual({
				servers: COMPOSE_NATS_SERVERS.map(server => `${server}:4222`),
				user: role,
				password: `\${${passwordEnv(role)}}`
			});
			expect(`${name}: ${service.depends_on?.join(",")}`).toBe(`${name}: ${COMPOSE_NATS_SERVERS.join(",")}`);
			expect(service.environment?.JWT_SECRET).toBeDefined();
			// Required (`:?`): compose refuses to start without it, as the node would.
			expect(service.environment?.TRANSIT_KEY).toMatch(/^\$\{TRANSIT_KEY:\?/);
			expect(service.environment?.NODE_ENV).toBe("production");
		}
		expect(nodes.filter(([, service]) => service.ports?.length).map(([name]) => name)).toEqual([]);
	});

	it("puts nginx in front of every gateway of the layout, with docker/nginx.conf as scripts/nginx.ts writes it, and publishes only it", () => {
		const nginx = compose.services.nginx as ComposeService & { depends_on?: string[] };
		const gateways = gatewaysOf(CLUSTER_LAYOUT);
		expect(gateways.length).toBeGreaterThanOrEqual(2);
		expect(nginx.volumes).toEqual(["./nginx.conf:/etc/nginx/nginx.conf:ro"]);
		expect(nginx.ports).toEqual(["${PORT:-3000}:80"]);
		expect(nginx.depends_on).toEqual(gateways);
		const conf = readFileSync(path.join(root, "docker/nginx.conf"), "utf8");
		expect(conf).toBe(composeNginxConfigText(gateways));
		// A refused connection moves on; a POST that reached a gateway is never sent to another (no non_idempotent, no http_503).
		expect(conf).toMatch(/^\s*proxy_next_upstream error timeout;$/m);
		expect(conf).not.toMatch(/^\s*keepalive /m);
	});

	it("the image starts the shop as npm start does, listening on 0.0.0.0", () => {
		const dockerfile = readFileSync(path.join(root, "docker/Dockerfile"), "utf8");
		// node, its flags, moleculer-runner with the built config: as the tests and `npm run cluster` start a node (scripts/paths.ts).
		const command = ["node", ...NODE_FLAGS, "node_modules/moleculer/bin/moleculer-runner.js", "--config", "dist/moleculer.config.js"];
		expect(packageJson.scripts.start).toBe(command.join(" "));
		expect(JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)![1])).toEqual(command);
		expect(NODE_ARGS.slice(-3)).toEqual([RUNNER, "--config", CONFIG]);
		expect(dockerfile).toMatch(/HOST=0\.0\.0\.0/);
		expect(dockerfile).toMatch(/^FROM node:22/m);
	});

	it("the image is built from the shop's sources only: no tests, benchmark or scripts", () => {
		const dockerfile = readFileSync(path.join(root, "docker/Dockerfile"), "utf8");
		const copied = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap(match => match[1].split(/\s+/));
		expect(copied.filter(source => /^(test|bench|scripts)\b/.test(source))).toEqual([]);
		const ignored = readFileSync(path.join(root, ".dockerignore"), "utf8").split("\n");
		expect(ignored).toEqual(expect.arrayContaining(["test", "bench", "scripts"]));
	});

	it("closes the bus: every nats-server reads docker/nats.conf, the users and permissions of this layout, every password required", () => {
		expect(natsServers.map(([name]) => name)).toEqual([...COMPOSE_NATS_SERVERS]);
		const conf = readFileSync(path.join(root, "docker/nats.conf"), "utf8");
		expect(conf).toBe(composeNatsConfigText(CLUSTER_LAYOUT));
		for (const [, nats] of natsServers) {
			expect(nats.command).toEqual(["--config", "/etc/nats/shop.conf"]);
			expect(nats.volumes).toEqual(["./nats.conf:/etc/nats/shop.conf:ro"]);
			for (const role of new Set(CLUSTER_LAYOUT.map(node => node.services.join(",") as BusRole))) {
				expect(nats.environment?.[passwordEnv(role)]).toMatch(new RegExp(`^\\$\\{${passwordEnv(role)}:\\?`));
			}
		}
	});

	it("joins the three nats-servers as one cluster: routes to every server, authenticated with the route user's required password", () => {
		const conf = readFileSync(path.join(root, "docker/nats.conf"), "utf8");
		const cluster = conf.slice(conf.indexOf("\ncluster {"));
		expect(cluster).toMatch(/^\s+listen: "0\.0\.0\.0:6222"$/m);
		expect(cluster).toMatch(new RegExp(`authorization \\{\\s+user: "route"\\s+password: \\$${ROUTE_PASSWORD_ENV}\\s+\\}`));
		expect([...cluster.matchAll(/^\s+\$(NATS_ROUTE_\d+)$/gm)].map(match => match[1])).toEqual(COMPOSE_NATS_SERVERS.map(routeEnv));
		for (const [, nats] of natsServers) {
			expect(nats.environment?.[ROUTE_PASSWORD_ENV]).toMatch(new RegExp(`^\\$\\{${ROUTE_PASSWORD_ENV}:\\?`));
			// nats-server reads a route's credentials from its URL only: each URL holds the route password.
			for (const server of COMPOSE_NATS_SERVERS) {
				expect(nats.environment?.[routeEnv(server)]).toBe(`nats-route://route:\${${ROUTE_PASSWORD_ENV}}@${server}:6222`);
			}
		}
	});
});
