import Fastify from 'fastify';
import type { Logger } from 'pino';
import type { Member } from '../node/member';

/** Largest `lag` of /readyz, in entries. */
const lagMax = 1_000_000_000;

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
  app.get<{ Querystring: { lag?: string } }>('/readyz', async (request, reply) => {
    const lag = request.query.lag;
    const lagAllowed = lag === undefined ? 0 : Number(lag);
    if (lag !== undefined && (!/^\d{1,10}$/.test(lag) || lagAllowed > lagMax)) {
      return reply.code(400).send({ error: `invalid lag "${lag}": expected a whole number of entries from 0 to ${lagMax}` });
    }
    const readiness = member.readiness(lagAllowed);
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
