/**
 * A recording HTTP server on loopback: it keeps every request exactly as it arrived (method,
 * path, headers, body bytes) and answers each with the next scripted reply, so a test sees what
 * the client sent and decides what it gets back.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';

export interface Seen {
  method: string;
  /** the request target as sent: path and query */
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  /** sent as JSON */
  body?: unknown;
  /** sent as they are, one after the other, each after its gate opens (a streamed answer) */
  chunks?: { text: string; after?: Promise<void> }[];
  /** the answer is lost: the connection is reset after the request arrived */
  drop?: boolean;
}

export interface Recorder {
  url: string;
  seen: Seen[];
  /** answers for the next requests, in order; when none is left, `fallback` */
  replies: Reply[];
  close: () => Promise<void>;
}

/** Starts a recorder on 127.0.0.1; `fallback` answers every request no scripted reply is left for. */
export async function startRecorder(fallback: Reply): Promise<Recorder> {
  const seen: Seen[] = [];
  const replies: Reply[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      seen.push({
        method: request.method ?? '',
        path: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks),
      });
      const reply = replies.shift() ?? fallback;
      if (reply.drop) {
        request.socket.destroy();
        return;
      }
      if (reply.chunks) {
        response.writeHead(reply.status, reply.headers);
        void (async () => {
          for (const chunk of reply.chunks ?? []) {
            await chunk.after;
            response.write(chunk.text);
          }
          response.end();
        })();
        return;
      }
      const text = reply.body === undefined ? '' : JSON.stringify(reply.body);
      response.writeHead(reply.status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
        ...reply.headers,
      });
      response.end(text);
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
  const address = server.address();
  return {
    url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    seen,
    replies,
    close: () => new Promise<void>((done) => (server.closeAllConnections(), server.close(() => done()))),
  };
}

/** Sets environment variables for the length of `fn` (undefined: unset), then puts them back. */
export async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((name) => [name, process.env[name]]));
  const apply = (values: Record<string, string | undefined>): void => {
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) Reflect.deleteProperty(process.env, name);
      else process.env[name] = value;
    }
  };
  apply(vars);
  try {
    return await fn();
  } finally {
    apply(saved);
  }
}

/** An environment in which the AWS SDK's default chain finds no credentials, without asking the network. */
export const NO_AWS_CREDENTIALS: Record<string, string | undefined> = {
  AWS_ACCESS_KEY_ID: undefined,
  AWS_SECRET_ACCESS_KEY: undefined,
  AWS_SESSION_TOKEN: undefined,
  AWS_PROFILE: undefined,
  AWS_ROLE_ARN: undefined,
  AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
  AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined,
  AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/keypool-test/credentials',
  AWS_CONFIG_FILE: '/nonexistent/keypool-test/config',
  AWS_EC2_METADATA_DISABLED: 'true',
};
