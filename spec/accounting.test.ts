/**
 * Table 1 of the paper (arXiv 2407.11633): parameters, activated parameters and GMACs of
 * the linear layers per 256×256 image (32×32 latent, 4 channels, 1000 classes, learned sigma).
 * The paper prints 2–4 digits and is not consistent in how it rounds (71.9M activated is
 * printed 71M, 1.49B is printed 1.5B), so each count must lie within one unit of the
 * paper's last printed digit; the GMACs, printed with two decimals, must round to it.
 */
import { describe, it, expect } from 'vitest';
import { presetConfig } from '../ref/config.js';
import { accounting } from '../ref/accounting.js';

// [preset, experts, total, activated, unit of the last printed digit, GMACs]
const table1: [string, number, number, number, number, number][] = [
  ['S/2', 8, 199e6, 71e6, 1e6, 15.43],
  ['B/2', 8, 795e6, 286e6, 1e6, 61.68],
  ['XL/2', 8, 4.1e9, 1.5e9, 0.1e9, 323.74],
  ['G/2', 16, 16.5e9, 3.1e9, 0.1e9, 690.94],
];

describe('parameter accounting (paper Table 1)', () => {
  it.each(table1)('%s with %i experts, top-2', (preset, experts, total, activated, unit, gmacs) => {
    const a = accounting(presetConfig(preset, { num_experts: experts }));
    expect(Math.abs(a.totalParams - total)).toBeLessThan(unit);
    expect(Math.abs(a.activatedParams - activated)).toBeLessThan(unit);
    expect((a.linearMacs / 1e9).toFixed(2)).toBe(gmacs.toFixed(2));
  });

  it('more experts add parameters but, at the same k, only the router rows to the activated count', () => {
    const e8 = accounting(presetConfig('S/2', { num_experts: 8 }));
    const e16 = accounting(presetConfig('S/2', { num_experts: 16 }));
    const expert = 3 * 384 * 4 * 384; // gate, up, down of width 4·384
    expect(e16.totalParams - e8.totalParams).toBe(12 * 8 * (expert + 384));
    expect(e16.activatedParams - e8.activatedParams).toBe(12 * 8 * 384);
    const k1 = accounting(presetConfig('S/2', { num_experts: 8, num_experts_per_tok: 1 }));
    expect(e8.activatedParams - k1.activatedParams).toBe(12 * expert);
  });
});
