// @fastify/http-proxy (undici underneath), with its defaults.
import Fastify from 'fastify';
import proxy from '@fastify/http-proxy';

const [port, upstream] = process.argv.slice(2);
const app = Fastify({ logger: false });
await app.register(proxy, { upstream: upstream! });
await app.listen({ port: Number(port), host: '127.0.0.1' });
