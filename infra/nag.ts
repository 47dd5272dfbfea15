/**
 * cdk-nag findings keypool accepts, each on the narrowest construct that produces it and
 * with the reason a reviewer would want. Anything not acknowledged here fails synthesis
 * (and test/infra/nag.test.ts).
 */
import { type CfnElement, Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { ANSWERS_PREFIX } from '../lib/domain/proxy-names.js';
import { PROXY_METHODS, proxyResourcePath } from '../lib/http/proxy-route.js';
import { CLIENT_ROUTE_KEYS, ROUTES, type RouteKey } from '../lib/http/routes.js';
import { type KeypoolHttpApi, routeResourcePath, STAGE_NAME } from './constructs/http-api.js';
import type { KeypoolProxyApi } from './constructs/proxy-api.js';
import type { StageConfig } from './config.js';
import type { KeypoolStatefulStack } from './stateful-stack.js';
import { answersObjectsArn, type KeypoolStatelessStack } from './stateless-stack.js';

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

/**
 * A value as cdk-nag writes it in a finding id: a reference to a resource of the stack as
 * `<logicalId>` (`<logicalId.Attr>` for an attribute), an import as its export name, joins
 * concatenated.
 */
function renderedForNag(scope: IConstruct, value: string): string {
  const render = (part: unknown): string => {
    if (typeof part === 'string') return part;
    const intrinsic = part as Record<string, unknown>;
    if ('Ref' in intrinsic) return `<${String(intrinsic.Ref)}>`;
    if ('Fn::GetAtt' in intrinsic) return `<${(intrinsic['Fn::GetAtt'] as string[]).join('.')}>`;
    if ('Fn::ImportValue' in intrinsic) return String(intrinsic['Fn::ImportValue']);
    if ('Fn::Join' in intrinsic) return (intrinsic['Fn::Join'] as [string, unknown[]])[1].map(render).join('');
    throw new Error(`no rendering for ${JSON.stringify(part)}`);
  };
  return render(Stack.of(scope).resolve(value));
}

/**
 * One acknowledgement per proxy ARN that still holds a `*`: the provider path always (every
 * path under the pool's proxy), the pool too in the operator's policy.
 */
function acknowledgeProxyWildcards(proxy: KeypoolProxyApi, policy: IConstruct, pool?: string): void {
  const apiId = Stack.of(proxy).getLogicalId(proxy.api.node.defaultChild as CfnElement);
  for (const method of PROXY_METHODS) {
    Validations.of(policy).acknowledge({
      id: `${NAG}AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<${apiId}>/${proxy.stageName}/${method}${proxyResourcePath(pool)}]`,
      reason:
        `The trailing wildcard is the provider path of proxy mode (${method} /pools/{pool}/proxy/{path+}): any path the ` +
        "provider serves, which keypool's own allow-list narrows (v1/, v2beta/, v2alpha/, never v1/user/). " +
        (pool === undefined
          ? 'The operator may proxy through every pool, so the pool is open too.'
          : `The pool is fixed ("${pool}") and pool names hold no "/" or "*", so it reaches no other pool's proxy.`),
    });
  }
}

/** Records every accepted finding of the proxy's REST API, its function and its answers bucket. */
function acknowledgeProxyFindings(stateless: KeypoolStatelessStack, stateful: KeypoolStatefulStack): void {
  const proxy = stateless.proxyApi;
  const http = stateless.httpApi;
  for (const [pool, policy] of http.clientPolicies) acknowledgeProxyWildcards(proxy, policy, pool);
  acknowledgeProxyWildcards(proxy, http.adminPolicy);
  Validations.of(proxy.api).acknowledge(
    {
      id: `${NAG}AwsSolutions-APIG2`,
      reason:
        'The path parameters (pool, provider path) are validated by API Gateway (a request validator on every method). ' +
        "The body is the provider's request (multipart, JSON or bytes) and goes through unchanged: no model describes it; " +
        'keypool refuses an oversized body (413) and a path outside the allow-list (403) before any key is used.',
    },
    {
      id: `${NAG}AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]`,
      reason:
        "A REST API stage writes its access and execution logs through the account's API Gateway CloudWatch role, " +
        'and AmazonAPIGatewayPushToCloudWatchLogs is the policy AWS documents for that role. Only API Gateway assumes it.',
    },
  );
  for (const method of proxy.methods) {
    Validations.of(method).acknowledge({
      id: `${NAG}AwsSolutions-COG4`,
      reason:
        "Callers are applications with AWS credentials, authorized by IAM (SigV4) per pool like the rest of keypool's API: " +
        'a keypool-client-<pool> policy allows exactly that pool. There are no end users, so no Cognito user pool.',
    });
  }
  Validations.of(proxy.api.deploymentStage).acknowledge({
    id: `${NAG}AwsSolutions-APIG3`,
    reason:
      'Every method requires IAM (SigV4) and the stage is throttled, as the HTTP API is; the callers are known ' +
      "applications, not the open web. A web ACL is the deployment's choice (it costs per request) and attaches to the stage.",
  });
  Validations.of(stateless.functions.proxy.role).acknowledge({
    id: `${NAG}AwsSolutions-IAM5[Resource::${renderedForNag(stateless, answersObjectsArn(stateful.answersBucketArn))}]`,
    reason:
      'The proxy keeps each answer under a name it makes at run time (one object per Idempotency-Key), so the grant is ' +
      `PutObject, GetObject and AbortMultipartUpload on the objects under "${ANSWERS_PREFIX}" of the one answers bucket: no delete.`,
  });
  Validations.of(stateful.answers).acknowledge({
    id: `${NAG}AwsSolutions-S1`,
    reason:
      'The bucket holds only encrypted proxied answers for a day; only the proxy function reads or writes them (its IAM ' +
      'grant, TLS only, public access blocked), and every KMS use of its key is in CloudTrail. Access logs would need a ' +
      'second bucket that outlives the data it describes.',
  });
}

/** Records every accepted finding of both stacks. */
export function acknowledgeFindings(
  stateless: KeypoolStatelessStack,
  config: StageConfig,
  stateful: KeypoolStatefulStack,
): void {
  acknowledgeProxyFindings(stateless, stateful);
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
