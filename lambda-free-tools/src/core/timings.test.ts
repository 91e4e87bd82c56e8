import { performance } from 'perf_hooks';
import { phaseRss, phaseTimes, timed, timedAsync } from './timings';

test('phases add up over a run, thrown errors included; start is the time before the first import', async () => {
  const busy = (ms: number) => {
    const end = performance.now() + ms;
    while (performance.now() < end);
  };
  expect(timed('a', () => (busy(5), 1))).toBe(1);
  expect(() =>
    timed(
      'a',
      () => (
        busy(5),
        (() => {
          throw new Error('x');
        })()
      ),
    ),
  ).toThrow('x');
  await expect(timedAsync('b', () => new Promise((r) => setTimeout(() => r(2), 20)))).resolves.toBe(2);
  const t = phaseTimes();
  expect(Object.keys(t)).toEqual(['start', 'a', 'b']);
  expect(t.a).toBeGreaterThanOrEqual(9);
  expect(t.b).toBeGreaterThanOrEqual(15);
  expect(t.start).toBeGreaterThan(0);
  const rss = phaseRss();
  expect(Object.keys(rss)).toEqual(['start', 'a', 'b']);
  expect(rss.a).toBeGreaterThan(10);
});
