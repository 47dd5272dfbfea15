/**
 * A fake Stability AI on loopback (the one the tests use, test/support/fake-provider.ts), for
 * trying `keypool maintain` and withKey on a laptop without the real service:
 *
 *   npx tsx docs/examples/fake-stability.ts sk-test-aaaaaaaaaaaaaaaa=100 sk-test-bbbbbbbbbbbbbbbb=1
 *
 * Each KEY=CREDITS argument gives a key a balance (a Core image costs 3 credits); a key it was
 * not given is answered 401, as the real service answers an invalid key. It prints the URL to
 * give keypool as STABILITY_API_BASE_URL and runs until Ctrl-C.
 */
import { IMAGE_COST, startFakeProvider } from '../../test/support/fake-provider.js';

const keys = process.argv.slice(2).map((argument) => {
  const match = /^(\S+)=(\d+(?:\.\d+)?)$/.exec(argument);
  if (!match?.[1] || !match[2]) {
    process.stderr.write(`fake-stability: "${argument.slice(0, 8)}..." is not KEY=CREDITS\n`);
    process.exit(2);
  }
  return { apiKey: match[1], credits: Number(match[2]) };
});

const provider = await startFakeProvider();
for (const { apiKey, credits } of keys) provider.setKey(apiKey, { credits });
process.stdout.write(
  [
    `fake Stability AI at ${provider.url} (${keys.length} key(s); others answer 401; an image costs ${IMAGE_COST} credits)`,
    `  STABILITY_API_BASE_URL=${provider.url}`,
    'Ctrl-C stops it.',
    '',
  ].join('\n'),
);
process.on('SIGINT', () => provider.server.close(() => process.exit(0)));
