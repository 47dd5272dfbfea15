/** Starting and stopping an HTTP server on loopback: what the local server and the console share. */
import type { Server } from 'node:http';

export interface Listening {
  server: Server;
  /** http://127.0.0.1:<port> */
  url: string;
  /** Stops listening and drops every open connection (keep-alive ones included), then resolves. */
  close(): Promise<void>;
}

/** Listens on 127.0.0.1:`port` (0: any free port); rejects with the listen error (EADDRINUSE...). */
export async function listenOnLoopback(server: Server, port: number): Promise<Listening> {
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => done());
  });
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  return {
    server,
    url: `http://127.0.0.1:${actual}`,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
