/**
 * The OpenAPI 3.1 document, generated from the route table (lib/http/routes.ts), its zod
 * schemas, what each route answers (lib/http/responses.ts) and the table of error codes
 * (lib/http/errors.ts): one source, so the document cannot drift from what is validated.
 * Every request and response body is a named schema in `components.schemas`, which is what
 * client generators turn into types.
 */
import * as z from 'zod/mini';
import { KeyStatusSchema, OutcomeSchema, ProviderSchema } from '../domain/primitives.js';
import { ERROR_CODES, statusOfCode } from './errors.js';
import { PROXY_RESPONSES, PROXY_ROUTES } from './proxy-spec.js';
import * as r from './response-schemas.js';
import { RESPONSES, type RouteResponses, sharedErrors } from './responses.js';
import { ROUTE_SUMMARIES } from './route-summaries.js';
import {
  type DocumentedRouteSpec,
  LOCAL_SERVER,
  REGION_VARIABLE,
  ROUTE_KEYS,
  ROUTES,
  type RouteSpec,
  type ServerSpec,
} from './routes.js';
import * as s from './schemas.js';

type JsonSchema = Record<string, unknown>;

const codesOf = (status: number): string[] => ERROR_CODES.filter((code) => statusOfCode(code) === status);

/** The named schemas. Every body a route takes or answers must be one of them (else the build throws). */
const NAMED: readonly (readonly [z.ZodMiniType, string])[] = [
  [KeyStatusSchema, 'KeyStatus'],
  [OutcomeSchema, 'Outcome'],
  [ProviderSchema, 'Provider'],
  [r.ErrorCodeSchema, 'ErrorCode'],
  [s.PoolBody, 'PoolSettings'],
  [s.ImportedKey, 'NewKey'],
  [s.ImportBody, 'ImportRequest'],
  [s.UpdateKeyBody, 'KeyUpdate'],
  [s.LeaseBody, 'LeaseRequest'],
  [s.CompleteBody, 'CompletionReport'],
  [r.HealthResponse, 'Health'],
  [r.PoolViewSchema, 'PoolView'],
  [r.PoolListResponse, 'PoolList'],
  [r.KeyViewSchema, 'KeyView'],
  [r.KeyPageResponse, 'KeyPage'],
  [r.AccountViewSchema, 'AccountView'],
  [r.AccountPageResponse, 'AccountPage'],
  [r.ImportResponse, 'ImportResult'],
  [r.PoolDeletionResponse, 'PoolDeletion'],
  [r.PoolDeletionPendingResponse, 'PoolDeletionPending'],
  [r.UnusableCountsSchema, 'UnusableCounts'],
  [r.UsageResponse, 'CountedUse'],
  [r.LeaseResponse, 'LeaseGrant'],
  [r.CompleteResponse, 'Completion'],
  [r.ErrorResponse, 'Error'],
  [r.GatewayErrorResponse, 'GatewayError'],
];

/** Where the API is served. A route served elsewhere (the proxy) names its own servers in the route table. */
const API_SERVERS: readonly ServerSpec[] = [
  {
    url: 'https://{apiId}.execute-api.{region}.amazonaws.com',
    description:
      "The deployed API: the stateless stack's `ApiUrl` output, known once it is deployed. Every route but GET /health is signed with SigV4 for the service `execute-api` in the API's region.",
    variables: {
      apiId: { default: 'your-api-id', description: 'the HTTP API id (the first label of `ApiUrl`)' },
      region: REGION_VARIABLE,
    },
    sigv4Service: 'execute-api',
  },
  LOCAL_SERVER,
];

const SIGV4_SCHEME = {
  // AWS's own form for IAM authorization (what API Gateway exports and imports): an apiKey
  // scheme on Authorization marked awsSigv4. Generators accept it and leave the header to a
  // middleware, which is where a per-request signature has to be computed anyway.
  type: 'apiKey',
  name: 'Authorization',
  in: 'header',
  'x-amazon-apigateway-authtype': 'awsSigv4',
  description:
    "AWS Signature Version 4 (IAM), not a static key: each request is signed with the caller's AWS credentials for the service named by the server (`x-keypool-sigv4-service`, `execute-api` for the API) in the API's region, which sets `Authorization`, `X-Amz-Date` and, with temporary credentials, `X-Amz-Security-Token`. The caller's IAM policy decides which routes (and pools) it may call.",
};

/** Statuses API Gateway may answer by itself, with `{ message }` instead of keypool's `{ error, message }`. */
const GATEWAY_STATUSES = new Set([403, 413, 429, 500, 503]);

/**
 * The body of an error answer: keypool's `Error` where the route answers codes of that status,
 * API Gateway's where it may answer it.
 */
function errorBody(status: number, spec: RouteSpec, codes: readonly string[]): JsonSchema {
  // API Gateway checks no signature on a public route, so it refuses none there.
  const gateway = GATEWAY_STATUSES.has(status) && !(status === 403 && spec.access === 'public');
  const own = codes.length > 0;
  if (gateway && own) return { anyOf: [ref('Error'), ref('GatewayError')] };
  return ref(gateway ? 'GatewayError' : 'Error');
}

/** The headers an answer of this status carries. */
function headersFor(status: number, allowed: string): JsonSchema | undefined {
  if (status === 405) {
    return {
      Allow: {
        description: 'the methods this path takes',
        required: true,
        schema: { type: 'string' },
        example: allowed,
      },
    };
  }
  if (status === 409 || status === 429 || status === 503)
    return { 'Retry-After': { $ref: '#/components/headers/RetryAfter' } };
  return undefined;
}

const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });

/** A body of any media type, passed through as bytes (proxy mode). */
const ANY_BYTES: JsonSchema = { type: 'string', contentMediaType: 'application/octet-stream' };

/** The headers an answer passed through carries, each a string. */
function passedHeaders(headers: Readonly<Record<string, string>> | undefined): JsonSchema {
  return Object.fromEntries(
    Object.entries(headers ?? {}).map(([name, description]) => [name, { description, schema: { type: 'string' } }]),
  );
}

/**
 * Drops what zod writes that says nothing to a reader or a generator: the ±2^53 bounds of every
 * integer (a count says `minimum: 0` itself), and the pattern beside `format: date-time` (every
 * time keypool writes is UTC with a Z, which the format names).
 */
function override(ctx: { jsonSchema: JsonSchema }): void {
  const schema = ctx.jsonSchema;
  if (schema.maximum === Number.MAX_SAFE_INTEGER) delete schema.maximum;
  if (schema.minimum === Number.MIN_SAFE_INTEGER) delete schema.minimum;
  if (schema.format === 'date-time') delete schema.pattern;
}

/** Rewrites the `$defs` references of a single conversion to the components they name. */
function toComponentRefs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toComponentRefs);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      k === '$ref' && typeof v === 'string' ? v.replace('#/$defs/', '#/components/schemas/') : toComponentRefs(v),
    ]),
  );
}

/** The registry of named schemas, and each schema's name. */
function namedSchemas(): { registry: z.core.$ZodRegistry<{ id: string }>; nameOf: Map<z.ZodMiniType, string> } {
  const registry = z.registry<{ id: string }>();
  const nameOf = new Map<z.ZodMiniType, string>();
  for (const [schema, id] of NAMED) {
    registry.add(schema, { id });
    nameOf.set(schema, id);
  }
  return { registry, nameOf };
}

function components(registry: z.core.$ZodRegistry<{ id: string }>): Record<string, JsonSchema> {
  const { schemas } = z.toJSONSchema(registry, {
    uri: (id) => `#/components/schemas/${id}`,
    io: 'input',
    unrepresentable: 'any',
    override,
  }) as { schemas: Record<string, JsonSchema> };
  return Object.fromEntries(
    Object.entries(schemas).map(([id, { $schema: _dialect, $id: _id, ...schema }]) => [id, schema]),
  );
}

/** A parameters object's JSON Schema as seen from one side of its zod schema. */
function parameterSchema(
  schema: z.ZodMiniType,
  registry: z.core.$ZodRegistry<{ id: string }>,
  io: 'input' | 'output',
): JsonSchema {
  const { $defs: _named, ...object } = toComponentRefs(
    z.toJSONSchema(schema, { metadata: registry, io, unrepresentable: 'any', override }),
  ) as JsonSchema;
  return object;
}

/**
 * A route's parameters. Their schemas describe the value a parameter carries (the output of its
 * zod schema): `limit` is an integer, though a query string brings its digits. A value JSON
 * Schema cannot state (a flag's word turned into a boolean) is described by what it accepts
 * instead (`true` or `false`), never left as "anything".
 */
function parameters(spec: RouteSpec, registry: z.core.$ZodRegistry<{ id: string }>): JsonSchema[] {
  const list: JsonSchema[] = [];
  for (const [where, schema] of [
    ['path', spec.params],
    ['query', spec.query],
    ['header', spec.headers],
  ] as const) {
    if (!schema) continue;
    const object = parameterSchema(schema, registry, 'output');
    const accepted = (parameterSchema(schema, registry, 'input').properties ?? {}) as Record<string, JsonSchema>;
    const required = new Set((object.required ?? []) as string[]);
    const properties = (object.properties ?? {}) as Record<string, JsonSchema>;
    for (const [name, property] of Object.entries(properties)) {
      const described = Object.keys(property).length > 0 ? property : (accepted[name] ?? property);
      list.push({ name, in: where, required: where === 'path' || required.has(name), schema: described });
    }
  }
  return list;
}

/** The path as the document writes it: a greedy `{path+}` of API Gateway is the parameter `{path}`. */
const documentPath = (path: string): string => path.replace(/\{(\w+)\+\}/g, '{$1}');

function serverObject(server: ServerSpec): JsonSchema {
  return {
    url: server.url,
    description: server.description,
    ...(server.variables ? { variables: server.variables } : {}),
    ...(server.sigv4Service ? { 'x-keypool-sigv4-service': server.sigv4Service } : {}),
  };
}

/** An answer's description with the error codes it may carry. */
function withCodes(description: string, codes: readonly string[]): string {
  return codes.length ? `${description}\n\n\`error\`: ${codes.map((c) => `\`${c}\``).join(', ')}.` : description;
}

const DEFAULT_ANSWER = {
  description: withCodes(
    "Any other error. keypool's own answers are `Error`; API Gateway's own (a function that failed or timed out) carry a message only.",
    codesOf(500),
  ),
  content: { 'application/json': { schema: { anyOf: [ref('Error'), ref('GatewayError')] } } },
};

/**
 * The codes an error answer names: each a code of the one table with this status. Throws where
 * an answer names none (the document lists only what a route answers, never a status's every code).
 */
function routeCodes(where: string, status: number, codes: readonly string[] | undefined): readonly string[] {
  if (!codes) throw new Error(`${where}: an error answer names the codes the route answers`);
  for (const code of codes)
    if (!ERROR_CODES.includes(code) || statusOfCode(code) !== status)
      throw new Error(`${where}: ${code} is not an error code of status ${status} (lib/http/errors.ts)`);
  return codes;
}

export interface RouteTable {
  routes: Readonly<Record<string, DocumentedRouteSpec>>;
  responses: Readonly<Record<string, RouteResponses>>;
}

/** Builds the document for a route table; throws on a body without a name or a repeated operationId. */
export function buildOpenApiDocument(table: RouteTable): JsonSchema {
  const { registry, nameOf } = namedSchemas();
  const named = (schema: z.ZodMiniType, where: string): JsonSchema => {
    const name = nameOf.get(schema);
    if (!name) throw new Error(`${where}: its schema has no name; add it to NAMED in lib/http/openapi.ts`);
    return ref(name);
  };
  const paths: Record<string, JsonSchema> = {};
  const operationIds = new Set<string>();
  const entries = Object.entries(table.routes);
  for (const [key, spec] of entries) {
    if (operationIds.has(spec.operationId)) throw new Error(`${key}: operationId ${spec.operationId} is taken`);
    operationIds.add(spec.operationId);
    const allowed = entries.filter(([, other]) => other.path === spec.path).map(([, other]) => other.method);
    const answers: RouteResponses = { ...sharedErrors(spec), ...table.responses[key] };
    const responses: Record<string, JsonSchema> = {};
    for (const [status, answer] of Object.entries(answers).sort(([a], [b]) => Number(a) - Number(b))) {
      const code = Number(status);
      const isError = answer.schema === r.ErrorResponse;
      const codes = isError ? routeCodes(`${key} ${status}`, code, answer.codes) : [];
      const schema = isError ? errorBody(code, spec, codes) : answer.schema && named(answer.schema, `${key} ${status}`);
      const headers = { ...headersFor(code, allowed.join(', ')), ...passedHeaders(answer.passthrough?.headers) };
      responses[status] = {
        description: isError ? withCodes(answer.description, codes) : answer.description,
        ...(Object.keys(headers).length ? { headers } : {}),
        ...(schema || answer.passthrough
          ? {
              content: {
                ...(schema ? { 'application/json': { schema } } : {}),
                ...(answer.passthrough ? { '*/*': { schema: ANY_BYTES } } : {}),
              },
            }
          : {}),
      };
    }
    responses.default = DEFAULT_ANSWER;
    const operation: JsonSchema = {
      operationId: spec.operationId,
      summary: spec.summary,
      security: spec.access === 'public' ? [] : [{ sigv4: [] }],
      'x-keypool-access': spec.access,
      parameters: parameters(spec, registry),
      ...(spec.body
        ? {
            requestBody: {
              required: !spec.bodyOptional,
              content: { 'application/json': { schema: named(spec.body, `${key} body`) } },
            },
          }
        : {}),
      ...(spec.rawBody
        ? {
            requestBody: {
              required: false,
              description: spec.rawBody.description,
              content: { '*/*': { schema: ANY_BYTES } },
            },
          }
        : {}),
      responses,
    };
    const item = (paths[documentPath(spec.path)] ??= spec.servers ? { servers: spec.servers.map(serverObject) } : {});
    item[spec.method.toLowerCase()] = operation;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'keypool',
      version: '1',
      description:
        'Least-recently-used leasing of API keys under a usage cap. A path no route takes answers 404 `not_found`; a method a path does not take, 405 `method_not_allowed` with `Allow`.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: API_SERVERS.map(serverObject),
    paths,
    components: {
      schemas: components(registry),
      headers: {
        RetryAfter: {
          description:
            "Seconds to wait before trying again, also `retryAfterSeconds` in the body: on 409 `no_usable_key` when a cooling key comes back, on keypool's 503s always. API Gateway's own 429 and 503 carry none.",
          schema: { type: 'integer', minimum: 0 },
        },
      },
      securitySchemes: { sigv4: SIGV4_SCHEME },
    },
  };
}

let cached: JsonSchema | undefined;

/** The document of this API's route table and proxy mode's route, built once. */
export function openApiDocument(): JsonSchema {
  cached ??= buildOpenApiDocument({
    routes: {
      ...Object.fromEntries(ROUTE_KEYS.map((key) => [key, { ...ROUTES[key], summary: ROUTE_SUMMARIES[key] }])),
      ...PROXY_ROUTES,
    },
    responses: { ...RESPONSES, ...PROXY_RESPONSES },
  });
  return cached;
}
