/** The OpenAPI 3.1 document, generated from the route table and its zod schemas. */
import * as z from 'zod/mini';
import { RESPONSES } from './responses.js';
import { ROUTE_KEYS, ROUTES, type RouteSpec } from './routes.js';

type JsonSchema = Record<string, unknown>;

const schemaOf = (schema: z.ZodMiniType): JsonSchema => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return rest;
};

function parameters(spec: RouteSpec): JsonSchema[] {
  const list: JsonSchema[] = [];
  for (const [where, schema] of [
    ['path', spec.params],
    ['query', spec.query],
    ['header', spec.headers],
  ] as const) {
    if (!schema) continue;
    const properties = (schemaOf(schema).properties ?? {}) as Record<string, JsonSchema>;
    for (const [name, property] of Object.entries(properties)) {
      list.push({ name, in: where, required: where === 'path', schema: property });
    }
  }
  return list;
}

let cached: JsonSchema | undefined;

export function openApiDocument(): JsonSchema {
  if (cached) return cached;
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const key of ROUTE_KEYS) {
    const spec: RouteSpec = ROUTES[key];
    const operation: JsonSchema = {
      operationId: key.replace(/[^A-Za-z]+/g, '_').replace(/^_|_$/g, ''),
      summary: spec.summary,
      ...(spec.access === 'public' ? { security: [] } : { security: [{ sigv4: [] }] }),
      'x-keypool-access': spec.access,
      parameters: parameters(spec),
      responses: Object.fromEntries(
        Object.entries(RESPONSES[key]).map(([status, response]) => [
          status,
          {
            description: response.description,
            ...(response.schema ? { content: { 'application/json': { schema: schemaOf(response.schema) } } } : {}),
          },
        ]),
      ),
    };
    if (spec.body) {
      operation.requestBody = {
        required: !spec.bodyOptional,
        content: { 'application/json': { schema: schemaOf(spec.body) } },
      };
    }
    (paths[spec.path] ??= {})[spec.method.toLowerCase()] = operation;
  }
  cached = {
    openapi: '3.1.0',
    info: { title: 'keypool', version: '1', description: 'Least-recently-used leasing of API keys under a usage cap.' },
    components: {
      securitySchemes: {
        sigv4: { type: 'apiKey', name: 'Authorization', in: 'header', description: 'AWS Signature Version 4 (IAM)' },
      },
    },
    paths,
  };
  return cached;
}
