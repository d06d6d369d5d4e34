// Alert delivery in the dashboard (issue 14): channels and "send test" for
// admins, the delivery log for operators, silences and the alert timeline
// for everyone (operators create silences).

import { useMemo } from 'react';
import { createAlertingApi, type AlertingApi } from '../../services/alertingApi';
import { roleAtLeast } from '../../services/roles';
import AlertTimeline from './AlertTimeline';
import ChannelsCard from './ChannelsCard';
import DeliveryLog from './DeliveryLog';
import SilencesCard from './SilencesCard';

/** Who is looking, and either the HTTP client (tests pass a fake) or the token it needs. */
export type AlertingPanelProps = { role: string } & (
  | { api: AlertingApi; getToken?: undefined }
  | { getToken: () => string | null; api?: undefined }
);

export default function AlertingPanel({ getToken, role, api: given }: AlertingPanelProps) {
  const api = useMemo(() => given ?? createAlertingApi(getToken), [given, getToken]);
  const operator = roleAtLeast(role, 'operator');
  return (
    <section className="panel alerting" aria-labelledby="alerting-heading">
      <div className="panel-head">
        <h2 id="alerting-heading">Alert delivery</h2>
      </div>
      <div className="admin-grid">
        {roleAtLeast(role, 'admin') ? <ChannelsCard api={api} /> : null}
        <SilencesCard api={api} canEdit={operator} />
        {operator ? <DeliveryLog api={api} /> : null}
        <AlertTimeline api={api} />
      </div>
    </section>
  );
}
