// @fastify/http-proxy (undici underneath), with its defaults.
import Fastify from 'fastify';
import proxy from '@fastify/http-proxy';

const [port, upstream] = process.argv.slice(2);
if (upstream === undefined) throw new Error('usage: fastify-proxy.ts PORT UPSTREAM_URL');
const app = Fastify({ logger: false });
await app.register(proxy, { upstream });
await app.listen({ port: Number(port), host: '127.0.0.1' });
