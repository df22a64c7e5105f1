/** A progress bar on stderr for long work (steps done, steps/s, time left). */
import cliProgress from 'cli-progress';

export interface Progress {
  tick(payload?: Record<string, string | number>): void;
  stop(): void;
}

export function progressBar(total: number, label: string, extra = ''): Progress {
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {value}/{total} | {rate} steps/s | ETA {eta_formatted}${extra}`,
      stream: process.stderr,
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: 5000,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  let start = 0;
  let done = 0;
  // started at the first tick, so input errors found before any work print no bar
  return {
    tick(payload = {}) {
      if (done === 0) {
        start = Date.now();
        bar.start(total, 0, { rate: '0.00', ...payload }); // the first frame shows the payload too, not its {placeholders}
      }
      done++;
      const rate = done / Math.max(1e-3, (Date.now() - start) / 1000);
      bar.update(done, { rate: rate.toFixed(2), ...payload });
    },
    stop() {
      if (done > 0) bar.stop();
    },
  };
}
