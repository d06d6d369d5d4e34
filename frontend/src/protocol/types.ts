// The dashd wire protocol (docs/protocol.md, version 1), typed once for the
// whole page: the socket hook, the dashboard stream hook and the components
// all import their message shapes from here.

/** Milliseconds or an ISO-8601 string, as the server sends times. */
export type IsoTime = string;

/** Every message in both directions: `{type, data, correlation_id?, seq?}`. */
export interface Envelope<T extends string = string, D = Record<string, unknown>> {
  type: T;
  data: D;
  correlation_id?: string | null;
  /** Stream messages only: the daemon-wide sequence number. */
  seq?: number;
  /** Set on messages replayed from the store during `resume`. */
  recovered?: boolean;
}

export type Role = 'viewer' | 'operator' | 'admin' | 'agent';

export interface CatalogueEntry {
  name: string;
  unit: string;
  description?: string;
}

export interface Limits {
  max_message_bytes?: number;
  max_rate_hz?: number;
  messages_per_second?: number;
  burst?: number;
  max_subscriptions?: number;
  max_history_points?: number;
  max_history_span?: number;
  max_query_cost?: number;
  send_queue_bytes?: number;
}

export interface ConnectionAckData {
  session_id: string;
  user: string;
  role: Role;
  protocol_version: number;
  endpoint: 'dashboard' | 'metrics' | 'notifications' | string;
  server_time: IsoTime;
  host: string;
  interval: number;
  seq: number;
  token_expires_at?: IsoTime | null;
  metrics?: CatalogueEntry[];
  subscription?: { metrics: string[]; hosts: string[] };
  rate?: { max_hz: number | null };
  limits?: Limits;
}

export interface MetricsWindow {
  samples: number;
  min: Record<string, number>;
  max: Record<string, number>;
  avg: Record<string, number>;
}

export interface MetricsUpdateData {
  timestamp: IsoTime | number;
  host?: string | null;
  metrics: Record<string, number>;
  recovered?: boolean;
  window?: MetricsWindow;
}

export type NotificationLevel = 'info' | 'warning' | 'critical';

export interface NotificationData {
  id: string;
  level: NotificationLevel;
  title: string;
  message: string;
  timestamp: IsoTime;
  source: string;
  state?: 'firing' | 'resolved';
  acknowledged_by: string | null;
  acknowledged_at: IsoTime | null;
  labels?: Record<string, string>;
  silenced?: boolean;
  /** Per-user read state (notification_state replies). */
  read?: boolean;
}

export interface NotificationAckData {
  id: string;
  acknowledged_by: string;
  acknowledged_at: IsoTime;
}

export type ErrorCode =
  | 'bad_json'
  | 'bad_message'
  | 'unknown_type'
  | 'unauthorized'
  | 'forbidden'
  | 'rate_limited'
  | 'too_large'
  | 'not_found'
  | 'unavailable'
  | 'internal';

export interface ErrorData {
  code: ErrorCode | string;
  message: string;
  details?: Record<string, unknown>;
}

export interface PongData {
  server_time: IsoTime;
  client_time?: unknown;
}

export interface StreamDegradedData {
  reason: 'slow_consumer' | 'recovered';
  coalesced?: number;
  effective_hz?: number;
}

export interface ResumeGapData {
  from_seq: number;
  to_seq: number;
  from?: IsoTime;
  to?: IsoTime;
}

export interface TokenExpiringData {
  expires_at: IsoTime;
}

export interface HistoryPoint {
  t: number;
  avg: number;
  min?: number;
  max?: number;
  count?: number;
}

export interface HistoryData {
  from?: IsoTime;
  to?: IsoTime;
  tier?: 'raw' | 'rollup' | string;
  bucket_ms?: number;
  host?: string;
  series: Record<string, HistoryPoint[]>;
}

export interface ActiveAlert {
  rule: string;
  host: string;
  metric?: string;
  title?: string;
  since: IsoTime;
  value: number;
  level?: NotificationLevel;
  notification_id?: string | null;
  acknowledged_by: string | null;
  acknowledged_at: IsoTime | null;
}

/** Reply to `notification_state`: the newest notifications with this user's `read`. */
export interface NotificationStateData {
  notifications: NotificationData[];
  unread: number;
  unacknowledged: number;
  read_through: IsoTime | null;
}

export type ConnectionAck = Envelope<'connection_ack', ConnectionAckData>;
export type MetricsUpdate = Envelope<'metrics_update', MetricsUpdateData>;
export type NotificationMessage = Envelope<'notification', NotificationData>;
export type NotificationAck = Envelope<'notification_ack', NotificationAckData>;
export type ErrorMessage = Envelope<'error', ErrorData>;
export type PongMessage = Envelope<'pong', PongData>;
export type StreamDegraded = Envelope<'stream_degraded', StreamDegradedData>;
export type ResumeGap = Envelope<'resume_gap', ResumeGapData>;
export type TokenExpiring = Envelope<'token_expiring', TokenExpiringData>;
export type HistoryReply = Envelope<'history', HistoryData>;

/** Server messages the page handles, discriminated by `type`. */
export type ServerMessage =
  | ConnectionAck
  | MetricsUpdate
  | NotificationMessage
  | NotificationAck
  | ErrorMessage
  | PongMessage
  | StreamDegraded
  | ResumeGap
  | TokenExpiring
  | HistoryReply;

export type StreamMessageType = 'metrics_update' | 'notification' | 'notification_ack';

export type RuleOp = '>' | '>=' | '<' | '<=';

/** An alert rule as `rule_set` takes it (docs/protocol.md, *Alert rules*). */
export interface AlertRule {
  name: string;
  metric: string;
  op: RuleOp;
  threshold: number;
  /** Seconds the condition must hold before the rule fires. */
  for?: number;
  level: NotificationLevel;
  /** Hysteresis threshold (default: `threshold`). */
  clear?: number;
  enabled?: boolean;
  labels?: Record<string, string>;
}

/** A rule as `rule_list` lists it: the rule plus its current state. */
export interface RuleStatus extends AlertRule {
  firing?: string[];
  pending?: string[];
  clear_threshold?: number;
  state?: 'firing' | 'pending' | 'ok' | 'disabled';
}

export interface Subscription {
  metrics: string[];
  hosts: string[];
}

/** Client requests (docs/protocol.md, *Requests*): type and data. */
export interface RequestMap {
  auth: { token: string; resume_after_seq?: number };
  ping: { client_time?: unknown };
  subscribe: { metrics?: string[]; hosts?: string[] };
  unsubscribe: { metrics?: string[]; hosts?: string[] };
  set_rate: { max_hz: number | null };
  resume: { after_seq: number };
  history: { metrics: string[]; from?: string | number; to?: string | number; max_points?: number; host?: string };
  stats: { window?: string | number; metrics?: string[]; host?: string };
  notifications: { limit?: number; unacknowledged?: boolean };
  notification_state: { limit?: number };
  notification_read: { ids: string[] } | { all: true };
  ack: { notification_id: string };
  alerts: Record<string, never>;
  rule_list: Record<string, never>;
  rule_set: AlertRule;
  rule_delete: { name: string };
  broadcast: { level: NotificationLevel; title: string; message: string };
  settings_get: Record<string, never>;
  settings_set: { interval: number };
}
export type RequestType = keyof RequestMap;

/** The `data` of each request's reply (docs/protocol.md, *Requests*). */
export interface ReplyMap {
  auth: { role: Role; expires_at: IsoTime | null };
  ping: PongData;
  subscribe: Subscription;
  unsubscribe: Subscription;
  set_rate: { max_hz: number | null; effective_hz: number | null };
  resume: { after_seq: number; replayed: number; recovered: number; gaps: number; seq: number };
  history: HistoryData;
  stats: Record<string, unknown>;
  notifications: { notifications: NotificationData[] };
  notification_state: NotificationStateData;
  notification_read: { ids: string[]; all: boolean; unread: number; unacknowledged: number; read_through: IsoTime | null };
  ack: NotificationAckData;
  alerts: { alerts: ActiveAlert[] };
  rule_list: { rules: RuleStatus[] };
  rule_set: { rule: RuleStatus };
  rule_delete: { name: string };
  broadcast: { id: string };
  settings_get: { interval: number };
  settings_set: { interval: number };
}

/** Sends one request and resolves with its reply's `data` (rejects on `error`). */
export type RequestSender = <T extends RequestType>(type: T, data: RequestMap[T]) => Promise<ReplyMap[T]>;

/** A parsed `metrics_update` as the charts and tiles keep it. */
export interface Sample {
  t: number;
  seq: number | undefined;
  host: string | null;
  values: Record<string, number>;
  recovered: boolean;
}

/** A chart point. */
export interface Point {
  x: number;
  y: number;
}
