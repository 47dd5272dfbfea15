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
