/**
 * Every relative link in README.md and docs/**\/*.md leads somewhere: the file it names exists,
 * and an anchor names a heading of the target as GitHub slugs it (lowercase, punctuation dropped,
 * each space a hyphen, a repeated heading -1, -2, ...). Links to other sites are not followed.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** GitHub's slug of a heading's text: lowercase; only letters, marks, digits, `_`, `-` and spaces kept; spaces to hyphens. */
function githubSlug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-');
}

/** A heading's text as GitHub renders it: code spans keep their content, links their text, markup goes. */
function headingText(raw: string): string {
  return raw
    .replace(/`([^`]*)`/g, '$1')
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .trim();
}

/** The lines of a markdown text outside fenced code blocks, with their 1-based numbers. */
function proseLines(markdown: string): { line: number; text: string }[] {
  const lines: { line: number; text: string }[] = [];
  let fence: string | undefined;
  markdown.split('\n').forEach((text, index) => {
    const marker = /^ {0,3}(`{3,}|~{3,})/.exec(text)?.[1];
    if (marker && (fence === undefined || marker.startsWith(fence))) {
      fence = fence === undefined ? marker : undefined;
      return;
    }
    if (fence === undefined) lines.push({ line: index + 1, text });
  });
  return lines;
}

/** The anchors a markdown text's headings get on GitHub, duplicates numbered as GitHub numbers them. */
function headingAnchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const { text } of proseLines(markdown)) {
    const heading = /^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(text)?.[1];
    if (heading === undefined) continue;
    const base = githubSlug(headingText(heading));
    let slug = base;
    while (anchors.has(slug)) {
      const count = (seen.get(base) ?? 0) + 1;
      seen.set(base, count);
      slug = `${base}-${count}`;
    }
    anchors.add(slug);
  }
  return anchors;
}

interface Link {
  line: number;
  target: string;
}

/** The link targets of a markdown text: inline links and images, reference definitions, HTML hrefs; code is skipped. */
function linksIn(markdown: string): Link[] {
  const links: Link[] = [];
  for (const { line, text } of proseLines(markdown)) {
    const prose = text.replace(/(`+)[^`]*?\1/g, (span) => ' '.repeat(span.length));
    for (const match of prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g))
      links.push({ line, target: match[1] ?? '' });
    const definition = /^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?/.exec(prose)?.[1];
    if (definition !== undefined) links.push({ line, target: definition });
    for (const match of prose.matchAll(/\bhref="([^"]+)"/g)) links.push({ line, target: match[1] ?? '' });
  }
  return links;
}

/** Why a relative link of `file` (absolute) leads nowhere, or undefined when it leads somewhere (or elsewhere: another site). */
function brokenReason(root: string, file: string, target: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) return undefined;
  const hash = target.indexOf('#');
  const pathPart = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
  const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
  const resolved =
    pathPart === '' ? file : pathPart.startsWith('/') ? join(root, pathPart) : resolve(dirname(file), pathPart);
  if (!existsSync(resolved)) return `${relative(root, resolved)} does not exist`;
  if (anchor === undefined) return undefined;
  if (!resolved.endsWith('.md')) {
    // GitHub's line anchors on a source file; nothing else is an anchor there.
    return /^L\d+(-L\d+)?$/.test(anchor) ? undefined : `#${anchor} is not a line anchor of ${relative(root, resolved)}`;
  }
  return headingAnchors(readFileSync(resolved, 'utf8')).has(anchor)
    ? undefined
    : `${relative(root, resolved)} has no heading with the anchor #${anchor}`;
}

/** README.md and every markdown file under docs/, as absolute paths. */
function documents(root: string): string[] {
  const found = [join(root, 'README.md')];
  const walk = (dir: string): void => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.md')) found.push(path);
    }
  };
  walk(join(root, 'docs'));
  return found;
}

/** Every broken relative link of the documents under `root`, as `file:line: target: why`. */
function brokenLinks(root: string): { checked: number; broken: string[] } {
  let checked = 0;
  const broken: string[] = [];
  for (const file of documents(root)) {
    for (const { line, target } of linksIn(readFileSync(file, 'utf8'))) {
      checked++;
      const why = brokenReason(root, file, target);
      if (why !== undefined) broken.push(`${relative(root, file)}:${line}: ${target}: ${why}`);
    }
  }
  return { checked, broken };
}

describe('anchors are slugged as GitHub slugs headings', () => {
  it('lowercases, drops punctuation, keeps underscores and hyphens, and turns each space into a hyphen', () => {
    // Prepare
    const markdown = [
      '# keypool',
      '## `409 no_usable_key` but the pool has keys',
      "## What's a [lease](leasing.md)?",
      '## Rotation & keys',
      '## Re-sharding 1 → 8',
    ].join('\n');
    // Act
    const anchors = headingAnchors(markdown);
    // Assess
    expect([...anchors]).toEqual([
      'keypool',
      '409-no_usable_key-but-the-pool-has-keys',
      'whats-a-lease',
      'rotation--keys',
      're-sharding-1--8',
    ]);
  });

  it('numbers repeated headings -1, -2 and ignores headings inside code blocks', () => {
    // Prepare
    const markdown = ['## Tests', '```sh', '## Tests', '```', '## Tests', '### Tests'].join('\n');
    // Act
    const anchors = headingAnchors(markdown);
    // Assess
    expect([...anchors]).toEqual(['tests', 'tests-1', 'tests-2']);
  });
});

describe('the link checker', () => {
  const root = mkdtempSync(join(tmpdir(), 'keypool-docs-links-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('reports a missing file and a missing anchor with their line, and passes good, external and code links', () => {
    // Prepare
    mkdirSync(join(root, 'docs', 'examples'), { recursive: true });
    writeFileSync(join(root, 'docs', 'examples', 'run.ts'), 'export {};\n');
    writeFileSync(join(root, 'docs', 'guide.md'), '# Guide\n\n## Setting up\n\nSee [the readme](../README.md#top).\n');
    writeFileSync(
      join(root, 'README.md'),
      [
        '# Top',
        '[guide](docs/guide.md) [setup](docs/guide.md#setting-up) [self](#top) [code](docs/examples/run.ts#L1)',
        '[gone](docs/missing.md) [no anchor](docs/guide.md#installing) [site](https://example.com/x#y)',
        '`[not a link](nowhere.md)`',
        '```md',
        '[in a fence](nowhere.md)',
        '```',
      ].join('\n'),
    );
    // Act
    const { checked, broken } = brokenLinks(root);
    // Assess
    expect(checked).toBe(8);
    expect(broken).toEqual([
      'README.md:3: docs/missing.md: docs/missing.md does not exist',
      'README.md:3: docs/guide.md#installing: docs/guide.md has no heading with the anchor #installing',
    ]);
  });
});

describe('README.md and docs/', () => {
  it('have no broken relative link or anchor', () => {
    // Act
    const { checked, broken } = brokenLinks(ROOT);
    // Assess: the documents were found and hold links, and every one leads somewhere.
    expect(documents(ROOT).map((file) => relative(ROOT, file))).toContain('docs/local.md');
    expect(checked).toBeGreaterThan(20);
    expect(broken).toEqual([]);
  });
});
