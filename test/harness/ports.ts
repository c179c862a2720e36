import { createServer } from 'node:net';

// Ports handed out recently by this process: the kernel may offer a just-closed port again,
// and two helpers asking at once must not get the same one.
const recent: number[] = [];
const RECENT_MAX = 256;

function bindEphemeral(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

/** A TCP port free on `host` (default 127.0.0.1) right now: bind port 0, read it, close. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await bindEphemeral(host);
    if (!recent.includes(port)) {
      recent.push(port);
      if (recent.length > RECENT_MAX) recent.shift();
      return port;
    }
  }
  throw new Error(`could not find a fresh free port on ${host}`);
}
