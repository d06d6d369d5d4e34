// The Chart.js test double (jsdom has no canvas), one for every test that
// renders a chart. A test replaces the real module with it:
//
//   vi.mock('chart.js', () => import('../test/chartDouble'));
//
// and reads the charts the page built from `FakeChart.instances` (or
// `chartWith(metric)`): their datasets (the same objects the page keeps,
// updated in place), their options and every `update(mode)` call.
// This module must not import 'chart.js' itself: it *is* 'chart.js' there.

/** A dataset as the dashboard builds it (components/MetricsChart). */
export interface FakeDataset {
  metric: string;
  label: string;
  hidden?: boolean;
  data: Array<{ x: number; y: number | null }>;
}

/** The chart options tests read (components/chartSetup lineChartOptions). */
export interface FakeChartOptions {
  spanGaps?: boolean | number;
  scales: {
    x: { min: number; max: number };
    y: { ticks: { callback(this: unknown, value: number): string } };
  };
  plugins: { outages?: { spans: Array<{ from: number; to: number }> } };
}

export interface FakeChartConfig {
  data: { datasets: FakeDataset[] };
  options: FakeChartOptions;
}

export class FakeChart {
  /** Every chart built since the last `resetCharts()`, oldest first. */
  static instances: FakeChart[] = [];
  static register(): void {}

  canvas: unknown;
  data: FakeChartConfig['data'];
  options: FakeChartOptions;
  /** The mode of each `update()` call, in order ('none' = redrawn without animation). */
  updates: Array<string | undefined> = [];
  destroyed = false;

  constructor(canvas: unknown, config: FakeChartConfig) {
    this.canvas = canvas;
    this.data = config.data;
    this.options = config.options;
    FakeChart.instances.push(this);
  }

  update(mode?: string): void {
    this.updates.push(mode);
  }

  /** Repaints without a layout or data pass (the crosshair and the zoom selection). */
  draws = 0;
  draw(): void {
    this.draws += 1;
  }

  destroy(): void {
    this.destroyed = true;
  }
}

/** Forget the charts of earlier tests (call in beforeEach). */
export function resetCharts(): void {
  FakeChart.instances = [];
}

/** The first chart built that draws `metric`; throws when there is none. */
export function chartWith(metric: string): FakeChart {
  const chart = FakeChart.instances.find((c) => c.data.datasets.some((d) => d.metric === metric));
  if (!chart) throw new Error(`no chart draws ${metric}`);
  return chart;
}

// The parts chartSetup registers: only their identity matters here.
const part = (id: string) => ({ id });

export const Chart = FakeChart;
export const Decimation = part('decimation');
export const Filler = part('filler');
export const Legend = part('legend');
export const LineController = part('line');
export const LineElement = part('lineElement');
export const LinearScale = part('linear');
export const PointElement = part('point');
export const Tooltip = part('tooltip');
