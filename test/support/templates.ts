/**
 * Reading synthesized CloudFormation in the infra tests: the resource shape they assert on,
 * lookups by logical id and by type, and the context that skips bundling.
 */
import type { Template } from 'aws-cdk-lib/assertions';

export type Json = Record<string, unknown>;

/** A template resource, as far as the infra tests read it. */
export interface Resource {
  Type: string;
  Properties: Json;
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
}

/** Bundling is the bundling test's job; here the asset is a placeholder and synthesis is fast. */
export const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] as string[] };

/** One resource of a template by logical id; throws naming the id when there is none. */
export function resource(template: Template, logicalId: string): Resource {
  const all = (template.toJSON() as { Resources: Record<string, Resource> }).Resources;
  const found = all[logicalId];
  if (!found) throw new Error(`no resource ${logicalId}`);
  return found;
}

/** Every resource of one type, as [logical id, resource] pairs in template order. */
export function resources(template: Template, type: string): [string, Resource][] {
  return Object.entries(template.findResources(type)) as [string, Resource][];
}

/**
 * A CloudFormation intrinsic (`{ Ref }`, `{ Fn::GetAtt }`, `{ Fn::ImportValue }`...) as text
 * that can stand inside a JSON string: its JSON without quotes or backslashes, e.g.
 * `{Fn::GetAtt:[alarmsapi5xx2D03A96F,Arn]}`. The same intrinsic always reads the same.
 */
export function intrinsicText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value).replace(/["\\]/g, '');
}

/**
 * A JSON document CloudFormation assembles with `Fn::Join` (a dashboard's body), parsed: each
 * intrinsic among the parts is read as intrinsicText, so the document parses and the tokens
 * it names can be compared with the template's.
 */
export function parseJoinedJson(value: unknown): unknown {
  if (typeof value === 'string') return JSON.parse(value);
  const join = (value as Json)['Fn::Join'] as [string, unknown[]] | undefined;
  if (!join) throw new Error(`not a string or an Fn::Join: ${JSON.stringify(value).slice(0, 200)}`);
  const [separator, parts] = join;
  return JSON.parse(parts.map(intrinsicText).join(separator));
}

/** The literal tail of a `Fn::Join` ARN, e.g. `/$default/POST/pools/stability/leases`. */
export function joinTail(arn: unknown): string {
  const parts = ((arn as Json)['Fn::Join'] as [string, unknown[]])[1];
  const last = parts[parts.length - 1];
  return typeof last === 'string' ? last : '';
}

/** Whether IAM matches a request's ARN tail against an allowed tail (`*` matches any run, `/` included). */
export function iamMatches(pattern: string, request: string): boolean {
  return new RegExp(
    `^${pattern
      .split('*')
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  ).test(request);
}
