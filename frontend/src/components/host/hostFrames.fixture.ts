// Recorded frames for the host panel tests. The labelled series of
// HOST_METRICS were read on the development machine by the collectors in
// src/dashd/collect/ (filesystems, disks, netifs, cgroups; it has no
// sensors); the service/container cgroups and the sensors of
// SENSOR_METRICS are in the form those collectors write them. The process
// tables follow docs/protocol.md's `processes` message, as an operator and as
// a viewer receive them (a viewer's rows have no `user` and no `cmdline`).

export const T0 = Date.parse('2026-12-07T15:00:00.000Z');

export const HOST_METRICS: Record<string, number> = {
  cpu_usage: 23.5,
  memory_usage: 41.2,
  'disk_size_bytes{fstype="ext4",mount="/"}': 270553174016.0,
  'disk_used_bytes{fstype="ext4",mount="/"}': 28249321472.0,
  'disk_free_bytes{fstype="ext4",mount="/"}': 80694972416.0,
  'disk_used_percent{fstype="ext4",mount="/"}': 25.93,
  'disk_inodes_used_percent{fstype="ext4",mount="/"}': 3.29,
  'disk_size_bytes{fstype="xfs",mount="/var/lib/data"}': 107374182400.0,
  'disk_used_bytes{fstype="xfs",mount="/var/lib/data"}': 103079215104.0,
  'disk_free_bytes{fstype="xfs",mount="/var/lib/data"}': 4294967296.0,
  'disk_used_percent{fstype="xfs",mount="/var/lib/data"}': 96.0,
  'disk_io_read_bytes_per_second{device="vda"}': 762430.99,
  'disk_io_write_bytes_per_second{device="vda"}': 7991406.33,
  'disk_io_reads_per_second{device="vda"}': 87.65,
  'disk_io_writes_per_second{device="vda"}': 545.62,
  'disk_io_busy_percent{device="vda"}': 4.33,
  'net_rx_bytes_per_second{iface="lo"}': 13106.73,
  'net_rx_packets_per_second{iface="lo"}': 71.89,
  'net_rx_errors_per_second{iface="lo"}': 0.0,
  'net_rx_drops_per_second{iface="lo"}': 0.0,
  'net_tx_bytes_per_second{iface="lo"}': 13106.73,
  'net_tx_packets_per_second{iface="lo"}': 71.89,
  'net_tx_errors_per_second{iface="lo"}': 0.0,
  'net_tx_drops_per_second{iface="lo"}': 0.0,
  'net_rx_bytes_per_second{iface="ifb0"}': 0.0,
  'net_tx_bytes_per_second{iface="ifb0"}': 0.0,
  'net_rx_bytes_per_second{iface="eth0"}': 52000.5,
  'net_rx_packets_per_second{iface="eth0"}': 40.0,
  'net_rx_errors_per_second{iface="eth0"}': 0.0,
  'net_rx_drops_per_second{iface="eth0"}': 0.5,
  'net_tx_bytes_per_second{iface="eth0"}': 7100.0,
  'net_tx_packets_per_second{iface="eth0"}': 30.0,
  'net_tx_errors_per_second{iface="eth0"}': 0.0,
  'net_tx_drops_per_second{iface="eth0"}': 0.0,
  'net_link_up{iface="lo"}': 1.0,
  'net_link_up{iface="ifb0"}': 0.0,
  'net_link_up{iface="eth0"}': 1.0,
  'net_speed_mbps{iface="eth0"}': 10000.0,
  'cgroup_memory_used_bytes{cgroup="/process_api"}': 2957824000.0,
  'cgroup_memory_used_bytes{cgroup="/process_api/050db79b260e2074706424f5674658e7"}': 146685952.0,
  'cgroup_cpu_percent{cgroup="/system.slice/nginx.service",unit="nginx.service"}': 12.5,
  'cgroup_memory_used_bytes{cgroup="/system.slice/nginx.service",unit="nginx.service"}': 52428800.0,
  'cgroup_memory_limit_bytes{cgroup="/system.slice/nginx.service",unit="nginx.service"}': 9223372036854771712,
  'cgroup_pids{cgroup="/system.slice/nginx.service",unit="nginx.service"}': 5,
  'cgroup_cpu_percent{cgroup="/system.slice/docker-3f2a9c1b7d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a.scope",container="3f2a9c1b7d4e"}': 48.0,
  'cgroup_memory_used_bytes{cgroup="/system.slice/docker-3f2a9c1b7d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a.scope",container="3f2a9c1b7d4e"}': 268435456.0,
  'cgroup_memory_limit_bytes{cgroup="/system.slice/docker-3f2a9c1b7d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a.scope",container="3f2a9c1b7d4e"}': 536870912.0,
  'cgroup_io_read_bytes_per_second{cgroup="/system.slice/docker-3f2a9c1b7d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a.scope",container="3f2a9c1b7d4e"}': 1024.0,
  'cgroup_io_write_bytes_per_second{cgroup="/system.slice/docker-3f2a9c1b7d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a.scope",container="3f2a9c1b7d4e"}': 2048.0,
  'tcp_connections{state="established"}': 12,
  tcp_listening_ports: 4,
};

export const SENSOR_METRICS: Record<string, number> = {
  'sensor_temperature_celsius{chip="coretemp",sensor="Core 0"}': 91.0,
  'sensor_temperature_high_celsius{chip="coretemp",sensor="Core 0"}': 90.0,
  'sensor_temperature_critical_celsius{chip="coretemp",sensor="Core 0"}': 100.0,
  'sensor_temperature_celsius{chip="coretemp",sensor="Package id 0"}': 55.0,
  'sensor_fan_rpm{chip="thinkpad",sensor="fan1"}': 2900,
  'battery_percent{battery="BAT0"}': 87,
  'battery_charging{battery="BAT0"}': 1,
};

export function metricsUpdate(metrics: Record<string, number>, t = T0, seq = 1) {
  return { type: 'metrics_update', seq, data: { timestamp: new Date(t).toISOString(), host: 'web-1', metrics } };
}

const OPERATOR_ROWS = [
  {
    pid: 4242,
    ppid: 1,
    name: 'postgres',
    user: 'postgres',
    state: 'R',
    cpu_percent: 87.5,
    memory_percent: 12.25,
    rss: 1073741824,
    threads: 8,
    read_bytes_per_second: 4096,
    write_bytes_per_second: 1048576,
    started: '2026-12-07T13:00:00Z',
    cmdline: 'postgres: writer process --password=hunter2',
  },
  {
    pid: 1,
    ppid: 0,
    name: 'systemd',
    user: 'root',
    state: 'S',
    cpu_percent: 0.1,
    memory_percent: 0.3,
    rss: 12582912,
    threads: 1,
    read_bytes_per_second: null,
    write_bytes_per_second: null,
    started: '2026-12-01T08:00:00Z',
    cmdline: '/sbin/init',
  },
  {
    pid: 5150,
    ppid: 4242,
    name: 'python3',
    user: 'alice',
    state: 'S',
    cpu_percent: null,
    memory_percent: 30.5,
    rss: 2684354560,
    threads: 3,
    read_bytes_per_second: 0,
    write_bytes_per_second: 0,
    started: '2026-12-07T14:59:58Z',
    cmdline: 'python3 train.py',
  },
];

export function processesFrame({ viewer = false, sort = 'cpu', t = T0 } = {}) {
  const rows = OPERATOR_ROWS.map((r) => {
    if (!viewer) return { ...r };
    const { user: _user, cmdline: _cmdline, ...rest } = r;
    return rest;
  });
  return {
    type: 'processes',
    data: { timestamp: new Date(t).toISOString(), host: 'web-1', sort, total: 312, running: 3, processes: rows },
  };
}
