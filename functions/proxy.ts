/**
 * POST and GET /pools/{pool}/proxy/{path+} (the proxy's REST API, response streaming): keypool
 * calls the pool's provider with a key of the pool and streams its answer back.
 */
import { streamingProxyHandler } from '../lib/http/lambda-stream.js';
import { processProxy } from '../lib/wiring-proxy.js';

export const handler = streamingProxyHandler(processProxy);
