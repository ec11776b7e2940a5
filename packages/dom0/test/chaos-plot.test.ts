import { describe, expect, it } from 'vitest';
import { niceMax, ratesFromCounters, renderChaosSvg } from '../src/supervisor/chaos-plot.js';

describe('the chaos plot', () => {
  const svg = renderChaosSvg({
    title: 'disktest under blkback kills',
    unit: 'MB/s',
    series: [
      { name: 'g1 disk', points: [{ t: 0.5, v: 10 }, { t: 1, v: 12 }, { t: 1.5, v: 0 }, { t: 2, v: 11 }] },
      { name: 'g2 <net>', points: [{ t: 0.5, v: 3 }, { t: 2, v: 3 }] },
    ],
    events: [{ t: 1.2, kind: 'kill', label: 'kill blkback' }, { t: 1.6, kind: 'recovered', label: 'blkback ready (400 ms)' }],
  });

  it('draws one line per series and one marker per kill and recovery', () => {
    expect(svg.match(/<polyline class="series"/g)).toHaveLength(2);
    expect(svg.match(/<line class="kill"/g)).toHaveLength(1);
    expect(svg.match(/<line class="recovered"/g)).toHaveLength(1);
    expect(svg).toContain('g2 &lt;net&gt;');
  });

  it('nests its elements properly (every tag closed, in order)', () => {
    const stack: string[] = [];
    for (const m of svg.matchAll(/<(\/?)([a-z]+)[^>]*?(\/?)>/g)) {
      const [, close, name, selfClose] = m;
      if (selfClose) continue;
      if (close) expect(stack.pop()).toBe(name);
      else stack.push(name!);
    }
    expect(stack).toEqual([]);
  });

  it('plots an empty run without failing', () => {
    expect(renderChaosSvg({ title: 't', unit: 'MB/s', series: [], events: [] })).toMatch(/^<svg[\s\S]*<\/svg>\n$/);
  });

  it('turns cumulative counters into rates, counting a reset counter from zero', () => {
    const r = ratesFromCounters([{ t: 0, total: 0 }, { t: 1, total: 2048 }, { t: 2, total: 100 }], 512 / 1e6);
    expect(r.map((p) => p.t)).toEqual([1, 2]);
    expect(r[0]!.v).toBeCloseTo((2048 * 512) / 1e6, 9);
    expect(r[1]!.v).toBeCloseTo((100 * 512) / 1e6, 9);
  });

  it('picks axis maxima of 1, 2 or 5 times a power of ten', () => {
    expect([niceMax(0), niceMax(0.3), niceMax(7), niceMax(12), niceMax(100)]).toEqual([1, 0.5, 10, 20, 100]);
  });
});
