// The scrolling box around a host table. Should a table still be wider than
// its panel (a very narrow window), the box can be focused and scrolled
// with the keyboard (WCAG 2.1.1; axe "scrollable-region-focusable").
import type { ReactNode } from 'react';

export default function TableWrap({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="table-wrap host-table-wrap" tabIndex={0} role="region" aria-label={label}>
      {children}
    </div>
  );
}
