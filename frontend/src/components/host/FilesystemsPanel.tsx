// File systems as usage bars: per mount point used of size, free, and inode
// use, coloured at 85 % (warning) and 95 % (critical). The bar is decoration;
// the text beside it says the same for screen readers.
import { useId } from 'react';
import { usageLevel, type Filesystem } from '../../services/hostModel';
import { formatBytes } from '../../services/format';

export default function FilesystemsPanel({ filesystems }: { filesystems: readonly Filesystem[] }) {
  const headingId = useId();
  return (
    <section className="panel host-panel" aria-labelledby={headingId} data-testid="host-filesystems">
      <h3 id={headingId}>File systems</h3>
      {filesystems.length ? (
        <ul className="fs-list">
          {filesystems.map((fs) => {
            const level = usageLevel(fs.usedPercent);
            const pct = fs.usedPercent === null ? 0 : Math.min(100, Math.max(0, fs.usedPercent));
            return (
              <li key={fs.mount} className={`fs-item level-${level}`} data-mount={fs.mount}>
                <div className="fs-head">
                  <span className="fs-mount" title={fs.mount}>{fs.mount}</span>
                  <span className="fs-type">{fs.fstype}</span>
                  <span className="fs-percent">{fs.usedPercent === null ? '—' : `${fs.usedPercent.toFixed(1)} %`}</span>
                </div>
                <div className="usage-bar" aria-hidden="true">
                  <span className="usage-fill" style={{ width: `${pct}%` }} />
                </div>
                <p className="fs-text">
                  {fs.usedBytes !== null && fs.sizeBytes !== null ? `${formatBytes(fs.usedBytes, 1)} of ${formatBytes(fs.sizeBytes, 1)} used` : 'size unknown'}
                  {fs.freeBytes !== null ? ` · ${formatBytes(fs.freeBytes, 1)} free` : ''}
                  {fs.inodesUsedPercent !== null ? ` · inodes ${fs.inodesUsedPercent.toFixed(0)} %` : ''}
                  {level !== 'ok' ? <span className="sr-only">{level === 'crit' ? ', critical' : ', warning'}</span> : null}
                </p>
              </li>
            );
          })}
        </ul>
      ) : (
        <p className="muted">Waiting for the first reading…</p>
      )}
    </section>
  );
}
