/**
 * The HTTP API (API Gateway v2), built from ROUTES in lib/http/routes.ts: each route goes to
 * the function its spec names, with IAM (SigV4) authorization unless the spec's access is
 * `public` (GET /health only). `$default` answers everything else through the meta function
 * (404/405 JSON), also behind IAM. The callers' managed policies come from the same table:
 * one per configured pool for applications (that pool's client routes), one for operators.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  HttpApi,
  HttpMethod,
  HttpNoneAuthorizer,
  HttpRoute,
  HttpRouteKey,
  HttpStage,
  LogGroupLogDestination,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { ManagedPolicy, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import {
  CLIENT_ROUTE_KEYS,
  DEFAULT_ROUTE_FUNCTION,
  type FunctionName,
  ROUTE_KEYS,
  ROUTES,
  type RouteKey,
  type RouteSpec,
} from '../../lib/http/routes.js';

/** The stage every route is served from: the API's root URL. */
export const STAGE_NAME = '$default';

/** What IAM accepts as a managed policy name. */
const POLICY_NAME = /^[\w+=,.@-]{1,128}$/;

/**
 * The physical name of the policy that lets an application use one pool: `keypool-client-<pool>`,
 * the name operators and their tooling attach by. IAM policy names are unique per account, so
 * one account holds one keypool stage (docs/operations.md: a stage per account, as AWS's
 * multi-account guidance has it); a second stage in the same account fails to deploy with
 * "already exists" rather than sharing a policy.
 */
export function clientPolicyName(pool: string): string {
  return checkedPolicyName(`keypool-client-${pool}`);
}

/** The physical name of the operator's policy (every route of every pool). */
export function adminPolicyName(): string {
  return checkedPolicyName('keypool-admin');
}

function checkedPolicyName(name: string): string {
  if (!POLICY_NAME.test(name))
    throw new Error(`"${name}" is not a valid IAM policy name (letters, digits and _+=,.@-, at most 128)`);
  return name;
}

export interface KeypoolHttpApiProps {
  handlers: Record<FunctionName, IFunction>;
  /** the stage, named in the policies' descriptions */
  stage: string;
  /** the pools applications may be granted: one client policy each */
  pools: readonly string[];
  throttle: { rateLimit: number; burstLimit: number };
  logRetention: RetentionDays;
  removal: 'retain' | 'destroy';
}

/** A construct id from a route key: `POST /pools/{pool}/leases/{leaseId}/complete` -> `post-pools-pool-leases-lease-id-complete`. */
export function routeId(routeKey: string): string {
  return routeKey
    .replace(/([a-z])([A-Z])/g, '$1-$2')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
}

/**
 * The access log line: who called which route and how it ended. No request or response
 * body, no query string and no path (paths carry key and lease ids); never a secret.
 */
const ACCESS_LOG_FORMAT = AccessLogFormat.custom(
  JSON.stringify({
    requestId: '$context.requestId',
    time: '$context.requestTime',
    routeKey: '$context.routeKey',
    status: '$context.status',
    protocol: '$context.protocol',
    responseLength: '$context.responseLength',
    latencyMs: '$context.responseLatency',
    integrationLatencyMs: '$context.integrationLatency',
    integrationError: '$context.integrationErrorMessage',
    sourceIp: '$context.identity.sourceIp',
    caller: '$context.identity.userArn',
    authError: '$context.authorizer.error',
  }),
);

export class KeypoolHttpApi extends Construct {
  readonly api: HttpApi;
  readonly stage: HttpStage;
  /** by pool: allows exactly that pool's client routes */
  readonly clientPolicies: ReadonlyMap<string, ManagedPolicy>;
  readonly adminPolicy: ManagedPolicy;

  constructor(scope: Construct, id: string, props: KeypoolHttpApiProps) {
    super(scope, id);
    const integrations = new Map<FunctionName, HttpLambdaIntegration>();
    const integration = (name: FunctionName): HttpLambdaIntegration => {
      let found = integrations.get(name);
      if (!found) {
        found = new HttpLambdaIntegration(`${name}-integration`, props.handlers[name]);
        integrations.set(name, found);
      }
      return found;
    };
    const iam = new HttpIamAuthorizer();

    this.api = new HttpApi(this, 'api', {
      description: 'keypool: lease API keys from the pool (IAM-authorized)',
      createDefaultStage: false,
      defaultAuthorizer: iam,
      // `$default`: unmatched requests get the meta function's JSON 404/405, still behind IAM.
      defaultIntegration: integration(DEFAULT_ROUTE_FUNCTION),
    });

    const accessLogs = new LogGroup(this, 'access-logs', {
      retention: props.logRetention,
      removalPolicy: props.removal === 'retain' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    this.stage = new HttpStage(this, 'stage', {
      httpApi: this.api,
      stageName: STAGE_NAME,
      autoDeploy: true,
      throttle: props.throttle,
      accessLogSettings: { destination: new LogGroupLogDestination(accessLogs), format: ACCESS_LOG_FORMAT },
    });

    for (const routeKey of ROUTE_KEYS) {
      const spec = ROUTES[routeKey];
      new HttpRoute(this, routeId(routeKey), {
        httpApi: this.api,
        routeKey: HttpRouteKey.with(spec.path, HttpMethod[spec.method]),
        integration: integration(spec.function),
        // Only GET /health is open (a load balancer or uptime check carries no credentials).
        authorizer: spec.access !== 'public' ? iam : new HttpNoneAuthorizer(),
      });
    }

    // The pool is a path segment, so IAM can scope an application to the pools it may use.
    // A policy's description is immutable in IAM (a change replaces the policy), so it
    // names only what never changes: the stage and the pool.
    const clientPolicies = new Map<string, ManagedPolicy>();
    for (const pool of props.pools) {
      clientPolicies.set(
        pool,
        new ManagedPolicy(this, `client-policy-${pool}`, {
          managedPolicyName: clientPolicyName(pool),
          description: `keypool (${props.stage}): lease a key of pool "${pool}", complete the lease, count a use`,
          statements: [this.invokeStatement(CLIENT_ROUTE_KEYS, pool)],
        }),
      );
    }
    this.clientPolicies = clientPolicies;
    this.adminPolicy = new ManagedPolicy(this, 'admin-policy', {
      managedPolicyName: adminPolicyName(),
      description: `keypool (${props.stage}): every route of the keypool API, every pool`,
      statements: [this.invokeStatement(ROUTE_KEYS)],
    });
  }

  /**
   * The execute-api ARN of one route on the served stage. `{pool}` becomes `pool` when one is
   * given; every other path parameter (and `{pool}` without one) becomes `*`.
   */
  routeArn(routeKey: RouteKey, pool?: string): string {
    return this.api.arnForExecuteApi(ROUTES[routeKey].method, routeResourcePath(routeKey, pool), STAGE_NAME);
  }

  private invokeStatement(routeKeys: readonly RouteKey[], pool?: string): PolicyStatement {
    return new PolicyStatement({
      actions: ['execute-api:Invoke'],
      resources: routeKeys.map((key) => this.routeArn(key, pool)),
    });
  }
}

/** A route's path as its execute-api ARN names it: `{pool}` the given pool, other parameters `*`. */
export function routeResourcePath(routeKey: RouteKey, pool?: string): string {
  const spec: RouteSpec = ROUTES[routeKey];
  return spec.path.replace(/\{([^}]+)\}/g, (_, name: string) => (name === 'pool' && pool !== undefined ? pool : '*'));
}
