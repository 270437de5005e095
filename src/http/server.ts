import Fastify from 'fastify';
import type { Logger } from 'pino';
import type { Member } from '../node/member';

/**
 * Builds the fastify app of one member: /status, /healthz, /readyz and
 * /metrics. It reads everything from the member and keeps no state.
 */
export function buildHttpServer(member: Member, log: Logger) {
  // Requests are logged at info level by fastify; warn keeps one line per poll
  // of /status out of the member's log while errors still show.
  const app = Fastify({ loggerInstance: log.child({ component: 'http' }, { level: 'warn' }) });
  app.get('/status', async () => member.status());
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/readyz', async (_request, reply) => {
    const readiness = member.readiness();
    return reply.code(readiness.ready ? 200 : 503).send(readiness);
  });
  app.get('/metrics', async (_request, reply) => {
    member.status();
    const text = await member.metrics.registry.metrics();
    return reply.type(member.metrics.registry.contentType).send(text);
  });
  // Every endpoint only reads, so other methods get 405 and the methods it takes.
  for (const url of ['/status', '/healthz', '/readyz', '/metrics']) {
    app.route({
      method: ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'],
      url,
      handler: async (request, reply) =>
        reply
          .code(405)
          .header('allow', 'GET, HEAD')
          .send({ error: `method ${request.method} is not allowed on ${url}; use GET or HEAD` }),
    });
  }
  return app;
}

/** Splits HOST:PORT, removing the brackets of an IPv6 literal. */
export function splitHostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(address.slice(at + 1)) };
}
