/**
 * cdk-nag findings keypool accepts, each on the narrowest construct that produces it and
 * with the reason a reviewer would want. Anything not acknowledged here fails synthesis
 * (and test/infra/nag.test.ts).
 */
import { type CfnElement, Stack, Validations } from 'aws-cdk-lib';
import { ROUTES, type RouteKey, type RouteSpec } from '../lib/http/routes.js';
import { CLIENT_ROUTES, type KeypoolHttpApi, STAGE_NAME } from './constructs/http-api.js';
import type { StageConfig } from './config.js';
import type { KeypoolStatelessStack } from './stateless-stack.js';

const NAG = 'AwsSolutions::';

/** How cdk-nag spells a route ARN of the policies in a finding id. */
function renderedRouteArn(http: KeypoolHttpApi, routeKey: RouteKey): string {
  const spec: RouteSpec = ROUTES[routeKey];
  const apiId = Stack.of(http).getLogicalId(http.api.node.defaultChild as CfnElement);
  const path = spec.path.replace(/\{[^}]+\}/g, '*');
  return `arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<${apiId}>/${STAGE_NAME}/${spec.method}${path}`;
}

function acknowledgeRouteWildcards(http: KeypoolHttpApi, policy: KeypoolHttpApi['clientPolicy'], routeKeys: readonly RouteKey[]): void {
  for (const routeKey of routeKeys) {
    if (!ROUTES[routeKey].path.includes('{')) continue;
    Validations.of(policy).acknowledge({
      id: `${NAG}AwsSolutions-IAM5[Resource::${renderedRouteArn(http, routeKey)}]`,
      reason:
        `The only wildcard is the path parameter of "${routeKey}": execute-api ARNs cannot name a ` +
        'parameter, and the key or lease id is not known when the policy is written. Method, stage and ' +
        'the rest of the path are exact, so the grant is that one route.',
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
  acknowledgeRouteWildcards(http, http.clientPolicy, CLIENT_ROUTES);
  acknowledgeRouteWildcards(http, http.adminPolicy, Object.keys(ROUTES) as RouteKey[]);
}
