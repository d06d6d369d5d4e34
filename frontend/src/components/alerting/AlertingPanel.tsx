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

export interface AlertingPanelProps {
  getToken: () => string | null;
  role: string;
  /** Tests pass a fake; the page builds the HTTP client from getToken. */
  api?: AlertingApi;
}

export default function AlertingPanel({ getToken, role, api: given }: AlertingPanelProps) {
  const api = useMemo(() => given || createAlertingApi(getToken), [given, getToken]);
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
