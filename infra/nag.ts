/**
 * cdk-nag findings keypool accepts, each on the narrowest construct that produces it and
 * with the reason a reviewer would want. Anything not acknowledged here fails synthesis
 * (and test/infra/nag.test.ts).
 */
import { type CfnElement, Stack, Validations } from 'aws-cdk-lib';
import { CLIENT_ROUTE_KEYS, ROUTES, type RouteKey } from '../lib/http/routes.js';
import { type KeypoolHttpApi, routeResourcePath, STAGE_NAME } from './constructs/http-api.js';
import type { StageConfig } from './config.js';
import type { KeypoolStatelessStack } from './stateless-stack.js';

const NAG = 'AwsSolutions::';

/** How cdk-nag spells a route ARN of the policies in a finding id. */
function renderedRouteArn(http: KeypoolHttpApi, routeKey: RouteKey, pool?: string): string {
  const apiId = Stack.of(http).getLogicalId(http.api.node.defaultChild as CfnElement);
  return `arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<${apiId}>/${STAGE_NAME}/${ROUTES[routeKey].method}${routeResourcePath(routeKey, pool)}`;
}

/**
 * One acknowledgement per route ARN of the policy that still holds a `*`: with a pool, the
 * client routes' key or lease id; without, every path parameter of the operator's routes.
 */
function acknowledgeRouteWildcards(
  http: KeypoolHttpApi,
  policy: KeypoolHttpApi['adminPolicy'],
  routeKeys: readonly RouteKey[],
  pool?: string,
): void {
  for (const routeKey of routeKeys) {
    if (!routeResourcePath(routeKey, pool).includes('*')) continue;
    const scope =
      pool === undefined
        ? 'The operator may act on every pool and key, so the pool, key and lease ids are left open; '
        : `The pool is fixed ("${pool}"); the wildcard is the key or lease id, which is not known when the policy is written; `;
    Validations.of(policy).acknowledge({
      id: `${NAG}AwsSolutions-IAM5[Resource::${renderedRouteArn(http, routeKey, pool)}]`,
      reason:
        `The only wildcards are path parameters of "${routeKey}": execute-api ARNs cannot name a parameter. ${scope}` +
        'method, stage and the rest of the path are exact, so the grant is that one route.',
    });
  }
}

/** Records every accepted finding of the stateless stack (the stateful stack has none). */
export function acknowledgeFindings(stateless: KeypoolStatelessStack, config: StageConfig): void {
  const http = stateless.httpApi;
  const health = http.node.tryFindChild('get-health');
  if (health) {
    Validations.of(health).acknowledge({
      id: `${NAG}AwsSolutions-APIG4`,
      reason:
        'GET /health is the one unauthenticated route on purpose: uptime checks and load balancers call it ' +
        'without AWS credentials. It reads nothing (no table access in its function, no key, no secret) and ' +
        'answers {"status":"ok"}; every other route and $default require IAM (SigV4).',
    });
  }
  const { sourceBucket } = config.migration;
  if (sourceBucket) {
    Validations.of(stateless.functions.migrate.role).acknowledge({
      id: `${NAG}AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::${sourceBucket}/*]`,
      reason:
        `The one-off migration reads the export object the operator names at invoke time, so the grant is ` +
        `s3:GetObject (read only, no list, no write) on the objects of the one configured bucket "${sourceBucket}". ` +
        'It exists only while the stage sets a migration bucket, and only the migrate function holds it.',
    });
  }
  for (const [pool, policy] of http.clientPolicies) acknowledgeRouteWildcards(http, policy, CLIENT_ROUTE_KEYS, pool);
  acknowledgeRouteWildcards(http, http.adminPolicy, Object.keys(ROUTES) as RouteKey[]);
}
