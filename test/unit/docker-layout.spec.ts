/**
 * No Docker engine runs on our machines, so the compose file is checked here: it must describe
 * the same nodes as `npm run cluster` (scripts/cluster-layout.ts), each joined to NATS, and the
 * image must run the same entry point as `npm start`.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { load } from "js-yaml";
import { SERVICE_NAMES } from "../../lib/config";
import { CLUSTER_LAYOUT } from "../../scripts/cluster-layout";
import { composeNatsConfigText, passwordEnv, type BusRole } from "../../scripts/nats-auth";
import { composeNginxConfigText, gatewaysOf } from "../../scripts/nginx";
import packageJson from "../../package.json";

const root = path.resolve(__dirname, "../..");

interface ComposeService {
	environment?: Record<string, string>;
	ports?: string[];
	image?: string;
	command?: string[];
	volumes?: string[];
}

describe("docker/", () => {
	const compose = load(readFileSync(path.join(root, "docker/docker-compose.yml"), "utf8")) as { services: Record<string, ComposeService> };
	const nodes = Object.entries(compose.services).filter(([name]) => name !== "nats" && name !== "nginx");

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

	it("joins every node to NATS as its role's user, with the transit key, and publishes no node", () => {
		for (const [name, service] of nodes) {
			const role = service.environment?.SERVICES as BusRole;
			expect(`${name}: ${service.environment?.TRANSPORTER}`).toBe(`${name}: nats://${role}:\${${passwordEnv(role)}}@nats:4222`);
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
		expect(packageJson.scripts.start).toBe("moleculer-runner --config dist/moleculer.config.js");
		expect(dockerfile).toMatch(/CMD \["node", "node_modules\/moleculer\/bin\/moleculer-runner\.js", "--config", "dist\/moleculer\.config\.js"\]/);
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

	it("closes the bus: nats-server reads docker/nats.conf, the users and permissions of this layout, every password required", () => {
		const nats = compose.services.nats;
		expect(nats.command).toEqual(["--config", "/etc/nats/shop.conf"]);
		expect(nats.volumes).toEqual(["./nats.conf:/etc/nats/shop.conf:ro"]);
		expect(readFileSync(path.join(root, "docker/nats.conf"), "utf8")).toBe(composeNatsConfigText(CLUSTER_LAYOUT));
		for (const role of new Set(CLUSTER_LAYOUT.map(node => node.services.join(",") as BusRole))) {
			expect(nats.environment?.[passwordEnv(role)]).toMatch(new RegExp(`^\\$\\{${passwordEnv(role)}:\\?`));
		}
	});
});
