// The time under a click on a line chart, for MetricsChart's
// `onPointClick(timeMs)` (the CPU and memory charts open the processes at
// that moment). Kept here so the chart component only wires one handler.

interface ChartLike {
  scales?: { x?: { getValueForPixel(pixel: number): number | undefined } };
}

interface ClickLike {
  clientX: number;
  currentTarget: { getBoundingClientRect(): { left: number } };
}

/** Epoch ms at the click's x position on the chart's time axis, or null. */
export function timeAtClick(chart: ChartLike | null | undefined, event: ClickLike): number | null {
  const x = chart?.scales?.x;
  if (!x) return null;
  const t = x.getValueForPixel(event.clientX - event.currentTarget.getBoundingClientRect().left);
  return typeof t === 'number' && Number.isFinite(t) ? Math.round(t) : null;
}

/** A canvas click handler calling `onPointClick` with the time clicked (undefined when there is no callback). */
export function pointClickHandler(
  getChart: () => ChartLike | null | undefined,
  onPointClick: ((timeMs: number) => void) | undefined | null,
): ((event: ClickLike) => void) | undefined {
  if (!onPointClick) return undefined;
  return (event) => {
    const t = timeAtClick(getChart(), event);
    if (t !== null) onPointClick(t);
  };
}
