// `tally demo`: the local demo. The end-to-end flow lands with the walking-skeleton issue (#3);
// until then this says so plainly instead of pretending.
export async function demoCommand(_argv: string[]): Promise<number> {
  process.stdout.write(
    [
      'Tally demo: not there yet.',
      'The runnable demo (nats-server + the example Shopify order flow + simulated traffic) lands with',
      'the walking-skeleton issue. What works today:',
      '  npx tally validate -f examples/     # offline validation of the example resources',
      '  npm test                            # the whole test suite on a real nats-server and control plane',
      '',
    ].join('\n'),
  );
  return 0;
}
