/**
 * Training losses: the DDPM hybrid loss (mse(eps) + vb in bits, detached mean, t = 0 decoder
 * NLL) and the rectified-flow loss, with their gradients w.r.t. the model output.
 *
 * Golden (golden/tiny.train.safetensors): out.mse, out.vb, out.loss, out.total, out.rf_loss,
 * out.rf_aux from the official training step on the tiny model. Tolerance 1e-4 relative to
 * max(1, |golden|): the model forward matches to ~1e-6 and the loss arithmetic rounds like
 * PyTorch's float32 (summation order aside); measured values are printed.
 * Gradients: against central finite differences of the float64 forward (h = 1e-6; truncation
 * ~h²·f''' and rounding ~1e-16/h are both < 1e-9, so 1e-7 absolute + 1e-5 relative).
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { golden, gt, expectClose, diff, GOLDEN_DIR } from './golden.js';
import { asFloat32, asNumbers } from '../io/safetensors.js';
import { DitMoeError } from '../core/errors.js';
import { loadModelFromSafetensors } from '../io/modelFile.js';
import { createDiffusion } from '../ref/diffusion/respace.js';
import { makeRng } from '../ref/diffusion/rng.js';
import { qSample } from '../ref/diffusion/gaussian.js';
import { ddpmLossForward, ddpmLossBackward, normalKl, approxStandardNormalCdf, discretizedGaussianLogLikelihood } from '../ref/diffusion/losses.js';
import { rfInterpolate, rfLossForward, rfLossBackward, rfSampleT } from '../ref/diffusion/rectifiedFlow.js';

const sched = createDiffusion({ respacing: '', noiseSchedule: 'linear', diffusionSteps: 1000 });

describe('golden training losses (tiny model)', () => {
  const g = golden('tiny.train.safetensors');
  const model = loadModelFromSafetensors(new Uint8Array(fs.readFileSync(path.join(GOLDEN_DIR, 'tiny.model.safetensors'))), 'tiny.model');
  const x0 = asFloat32(gt(g, 'in.x0'));
  const [B, C, H, W] = gt(g, 'in.x0').shape;
  const HW = H * W;
  const y = Int32Array.from(asNumbers(gt(g, 'in.y')));
  const RTOL = 1e-4;

  it('DDPM: mse, vb (t = 0 decoder NLL and t > 0 KL), loss, aux, total', () => {
    const recipe = JSON.parse(g.metadata.recipe);
    expect(recipe.ddpm).toMatchObject({ beta_schedule: 'linear', diffusion_steps: 1000 });
    expect(recipe.label_dropout).toBe(0);
    const noise = asFloat32(gt(g, 'in.noise'));
    const t = Int32Array.from(asNumbers(gt(g, 'in.t')));
    expect(Array.from(t)).toContain(0);
    const xT = new Float32Array(x0.length);
    qSample(xT, x0, noise, t, sched, B, C * HW);
    const fwd = model.forwardTrain(xT, [B, C, H, W], Float32Array.from(t), y);
    const terms = ddpmLossForward(sched, x0, xT, noise, t, fwd.out, B, C, HW);
    const dm = expectClose('out.mse', terms.mse, gt(g, 'out.mse'), RTOL);
    const dv = expectClose('out.vb', terms.vb, gt(g, 'out.vb'), RTOL);
    const dl = expectClose('out.loss', [terms.loss], gt(g, 'out.loss'), RTOL);
    expectClose('out.aux', fwd.aux, gt(g, 'out.aux'), RTOL);
    expectClose('out.total', [terms.loss + fwd.aux.reduce((a, b) => a + b, 0)], gt(g, 'out.total'), RTOL);
    const t64 = ddpmLossForward(sched, x0, xT, noise, t, fwd.out, B, C, HW, 'float64');
    const d64 = diff(t64.vb, asFloat32(gt(g, 'out.vb'))); // reported only: how much the float32 rounding matters here
    console.log(`DDPM loss: mse rel ${dm.rel.toExponential(2)}, vb rel ${dv.rel.toExponential(2)} (float64 arithmetic instead: ${d64.rel.toExponential(2)}), loss rel ${dl.rel.toExponential(2)}; vb = [${Array.from(terms.vb).map((v) => v.toPrecision(6))}] golden [${Array.from(asFloat32(gt(g, 'out.vb'))).map((v) => v.toPrecision(6))}]`);
  });

  it('rectified flow: x_t = (1 − t) x0 + t z1, loss = mean((z1 − x0 − v)²), aux', () => {
    const tRf = asFloat32(gt(g, 'in.rf_t'));
    const z1 = asFloat32(gt(g, 'in.rf_z1'));
    const xt = new Float32Array(x0.length);
    rfInterpolate(xt, x0, z1, tRf, B, C * HW);
    const fwd = model.forwardTrain(xt, [B, C, H, W], tRf, y);
    const outC = fwd.out.length / (B * HW);
    const terms = rfLossForward(fwd.out, x0, z1, B, C, HW, outC);
    const d = expectClose('out.rf_loss', [terms.loss], gt(g, 'out.rf_loss'), RTOL);
    expectClose('out.rf_aux', fwd.aux, gt(g, 'out.rf_aux'), RTOL);
    console.log(`RF loss: rel ${d.rel.toExponential(2)} (${terms.loss} vs ${asFloat32(gt(g, 'out.rf_loss'))[0]})`);
  });
});

/** Random inputs for a DDPM loss: x0 on the uint8 grid of [−1, 1] (with both edge bins), eps near the noise. */
function lossCase(seed: number, B: number, C: number, HW: number, t: number[]) {
  const rng = makeRng(seed);
  const D = B * C * HW;
  const x0 = new Float32Array(D);
  for (let i = 0; i < D; i++) x0[i] = i % 7 === 0 ? 1 : i % 11 === 0 ? -1 : -1 + (2 * Math.floor(rng.uniform() * 256)) / 255;
  const noise = rng.fillNormal(new Float32Array(D));
  const xT = new Float32Array(D);
  qSample(xT, x0, noise, t, sched, B, C * HW);
  const out = new Float32Array(2 * D);
  for (let b = 0; b < B; b++)
    for (let i = 0; i < C * HW; i++) {
      out[b * 2 * C * HW + i] = noise[b * C * HW + i] + 0.5 * rng.normal(); // eps
      out[b * 2 * C * HW + C * HW + i] = 2 * rng.uniform() - 1; // v ∈ [−1, 1)
    }
  return { x0, noise, xT, out };
}

describe('DDPM loss: gradient and properties', () => {
  it('ddpmLossBackward equals central finite differences of the float64 forward (detached mean in the VB term)', () => {
    const [B, C, HW] = [3, 2, 5];
    const t = [0, 1, 600];
    const { x0, noise, xT, out } = lossCase(11, B, C, HW, t);
    const grad = new Float64Array(out.length);
    ddpmLossBackward(grad, sched, x0, xT, noise, t, out, B, C, HW);
    const D = C * HW;
    const h = 1e-6;
    // the official loss: mse sees eps, the VB term sees eps detached; so ∂/∂eps = ∂ mean(mse)/∂eps,
    // ∂/∂v = ∂ mean(mse + vb)/∂v. Float32Array inputs can't hold x ± 1e-6 exactly: use the actual step.
    const objective = (o: Float32Array, epsChannel: boolean) => {
      const r = ddpmLossForward(sched, x0, xT, noise, t, o, B, C, HW, 'float64');
      return epsChannel ? r.mse.reduce((a, b) => a + b, 0) / B : r.loss;
    };
    let checked = 0;
    for (let b = 0; b < B; b++)
      for (let i = 0; i < 2 * D; i++) {
        const k = b * 2 * D + i;
        const epsChannel = i < D;
        const p = Float32Array.from(out);
        const m = Float32Array.from(out);
        p[k] = out[k] + h;
        m[k] = out[k] - h;
        const fd = (objective(p, epsChannel) - objective(m, epsChannel)) / (p[k] - m[k]);
        expect(Math.abs(grad[k] - fd), `element ${k} (sample ${b}, t = ${t[b]}, ${epsChannel ? 'eps' : 'v'}): analytic ${grad[k]}, fd ${fd}`).toBeLessThan(1e-7 + 1e-5 * Math.abs(fd));
        checked++;
      }
    expect(checked).toBe(2 * B * D);
    // the VB term does reach the v channels at t = 0 and t > 0
    expect(Math.abs(grad[2 * D - 1])).toBeGreaterThan(0);
    expect(Math.abs(grad[2 * D + 2 * D - 1])).toBeGreaterThan(0);
  });

  it('VB ≥ 0 for t > 0 (float64 exactly up to 1e-12; float32 up to 1e-5, the rounding of −1 + lv2 − lv1 + e^{lv1−lv2} at |lv| ≤ 20)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 1, max: 999 }), fc.boolean(), (seed, t, exactEps) => {
        const [B, C, HW] = [1, 2, 4];
        const c = lossCase(seed, B, C, HW, [t]);
        if (exactEps) for (let i = 0; i < C * HW; i++) c.out[i] = c.noise[i]; // the model's mean equals the true one
        if (exactEps && seed % 2 === 0) c.out.fill(-1, C * HW); // and its variance too (v = −1: lv2 = lv1)
        const r64 = ddpmLossForward(sched, c.x0, c.xT, c.noise, [t], c.out, B, C, HW, 'float64');
        const r32 = ddpmLossForward(sched, c.x0, c.xT, c.noise, [t], c.out, B, C, HW, 'float32');
        expect(r64.vb[0]).toBeGreaterThanOrEqual(-1e-12);
        expect(r32.vb[0]).toBeGreaterThanOrEqual(-1e-5);
      }),
      { numRuns: 200, seed: 20261127 },
    );
  });

  it('normal_kl and the approximate normal CDF: known values', () => {
    expect(normalKl(0.3, -1, 0.3, -1)).toBe(0);
    // KL(N(0,1) ‖ N(1, e^2)) = ½ (−1 + 2 − 0 + e^{−2} + e^{−2})
    expect(normalKl(0, 0, 1, 2)).toBeCloseTo(0.5 * (1 + 2 * Math.exp(-2)), 14);
    expect(approxStandardNormalCdf(0)).toBe(0.5);
    // the tanh approximation is within 2e-4 of Φ: Φ(1) = 0.841344746
    expect(Math.abs(approxStandardNormalCdf(1) - 0.841344746)).toBeLessThan(2e-4);
  });

  it('the discretized Gaussian likelihood sums to 1 over the 256 bins (edge bins open to ±∞)', () => {
    fc.assert(
      fc.property(fc.double({ min: -1.2, max: 1.2, noNaN: true }), fc.double({ min: -6, max: 0, noNaN: true }), (mean, logScale) => {
        let total = 0;
        for (let k = 0; k < 256; k++) total += Math.exp(discretizedGaussianLogLikelihood(-1 + (2 * k) / 255, mean, logScale));
        // float64 differences of CDFs telescope; the 1e-12 clamp can add at most 256e-12
        expect(Math.abs(total - 1)).toBeLessThan(1e-9);
      }),
      { numRuns: 100, seed: 20261127 },
    );
  });

  it('bad input is a DitMoeError', () => {
    const [B, C, HW] = [1, 2, 3];
    const c = lossCase(1, B, C, HW, [5]);
    expect(() => ddpmLossForward(sched, c.x0, c.xT, c.noise, [1000], c.out, B, C, HW)).toThrow(/timestep 1000 out of range/);
    expect(() => ddpmLossForward(sched, c.x0, c.xT, c.noise, [5], c.out.subarray(0, C * HW), B, C, HW)).toThrow(/learned variance/);
    expect(() => ddpmLossBackward(new Float32Array(3), sched, c.x0, c.xT, c.noise, [5], c.out, B, C, HW)).toThrow(DitMoeError);
  });
});

describe('rectified-flow loss: gradient and sampling of t', () => {
  it('rfLossBackward equals central finite differences; zero on the variance channels', () => {
    const [B, C, HW, outC] = [2, 3, 4, 6];
    const rng = makeRng(5);
    const x0 = rng.fillNormal(new Float32Array(B * C * HW));
    const z1 = rng.fillNormal(new Float32Array(B * C * HW));
    const out = rng.fillNormal(new Float32Array(B * outC * HW));
    const grad = new Float64Array(out.length);
    rfLossBackward(grad, out, x0, z1, B, C, HW, outC);
    const h = 1e-4; // the loss is quadratic: central differences are exact up to rounding
    for (let k = 0; k < out.length; k++) {
      const p = Float32Array.from(out);
      const m = Float32Array.from(out);
      p[k] += h;
      m[k] -= h;
      const fd = (rfLossForward(p, x0, z1, B, C, HW, outC, 'float64').loss - rfLossForward(m, x0, z1, B, C, HW, outC, 'float64').loss) / (p[k] - m[k]);
      expect(Math.abs(grad[k] - fd)).toBeLessThan(1e-9 + 1e-6 * Math.abs(fd));
      if (k % (outC * HW) >= C * HW) expect(grad[k]).toBe(0);
    }
  });

  it('t = sigmoid(N(0, 1)) lies in (0, 1) with median ≈ 1/2; uniform too', () => {
    const rng = makeRng(9);
    for (const mode of ['logit_normal', 'uniform'] as const) {
      const t = rfSampleT(rng, 4000, mode);
      expect(t.every((v) => v > 0 && v < 1)).toBe(true);
      const below = t.filter((v) => v < 0.5).length / t.length;
      // binomial(4000, ½): standard deviation 0.008; 0.04 is five of them
      expect(Math.abs(below - 0.5)).toBeLessThan(0.04);
    }
  });
});
