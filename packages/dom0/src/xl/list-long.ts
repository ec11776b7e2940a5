/**
 * `xl list -l`: a JSON array with one `{"domid": N, "config": ...}` per
 * domain, the config in libxl_domain_config's shape (libxl_types.idl:
 * c_info, b_info, disks, nics, on_* actions) as xl prints it through
 * libxl_domain_config_gen_json — fields at their defaults left out.
 * Domains xl did not create (Domain-0, driver domains) have only c_info,
 * which is what libxl can say about them.
 */
import type { DomainInfo } from '@xenbox/abi';
import type { DomainConfig } from '../xlcfg/domain-config.js';
import { formatMac } from '../xlcfg/vif-spec.js';

type Json = Record<string, unknown>;

function cInfo(info: DomainInfo, cfg: DomainConfig | null): Json {
  const type = cfg ? cfg.type : info.kind === 'hvm' ? 'hvm' : 'pvh';
  return { type, name: info.name, uuid: info.uuid, ...(cfg?.pool ? { pool_name: cfg.pool } : {}) };
}

function bInfo(info: DomainInfo, cfg: DomainConfig): Json {
  const b: Json = {
    max_vcpus: cfg.maxVcpus,
    avail_vcpus: Array.from({ length: cfg.vcpus }, (_, i) => i),
    max_memkb: cfg.maxMemoryMiB * 1024,
    target_memkb: cfg.memoryMiB * 1024,
    sched_params: { weight: cfg.sched.weight, cap: cfg.sched.cap, ...(cfg.sched.period ? { period: cfg.sched.period } : {}), ...(cfg.sched.slice ? { budget: cfg.sched.slice } : {}) },
    event_channels: cfg.maxEventChannels,
  };
  if (cfg.kernel) b.kernel = cfg.kernel;
  if (cfg.cmdline) b.cmdline = cfg.cmdline;
  if (cfg.type === 'hvm') b['type.hvm'] = { ...(cfg.firmware ? { firmware: cfg.firmware } : {}), ...(cfg.boot ? { boot: cfg.boot } : {}) };
  else b['type.pvh'] = {};
  void info;
  return b;
}

function disks(cfg: DomainConfig): Json[] {
  return cfg.disks.map((d) => ({
    ...(d.backendDomname ? { backend_domname: d.backendDomname } : {}),
    ...(d.pdevPath ? { pdev_path: d.pdevPath } : {}),
    vdev: d.vdev,
    format: d.format,
    ...(d.readwrite ? { readwrite: 1 } : {}),
    ...(d.isCdrom ? { is_cdrom: 1, removable: 1 } : {}),
  }));
}

function nics(cfg: DomainConfig): Json[] {
  return cfg.nics.map((n, i) => ({
    ...(n.backendDomname ? { backend_domname: n.backendDomname } : {}),
    devid: n.devid ?? i,
    ...(n.mac ? { mac: formatMac(n.mac) } : {}),
    ...(n.ip ? { ip: n.ip } : {}),
    ...(n.bridge ? { bridge: n.bridge } : {}),
    ...(n.rateBytesPerInterval ? { rate_bytes_per_interval: Number(n.rateBytesPerInterval), rate_interval_usecs: n.rateIntervalUsecs } : {}),
  }));
}

export function domainConfigJson(info: DomainInfo, cfg: DomainConfig | null): Json {
  if (!cfg) return { c_info: cInfo(info, null) };
  return {
    c_info: cInfo(info, cfg),
    b_info: bInfo(info, cfg),
    ...(cfg.disks.length ? { disks: disks(cfg) } : {}),
    ...(cfg.nics.length ? { nics: nics(cfg) } : {}),
    on_poweroff: cfg.onPoweroff,
    on_reboot: cfg.onReboot,
    on_watchdog: cfg.onWatchdog,
    on_crash: cfg.onCrash,
    on_soft_reset: cfg.onSoftReset,
  };
}

/** The whole `xl list -l` output: yajl-pretty JSON (4-space indent) and a newline. */
export function formatListLong(entries: Array<{ info: DomainInfo; cfg: DomainConfig | null }>): string {
  return JSON.stringify(entries.map(({ info, cfg }) => ({ domid: info.domid, config: domainConfigJson(info, cfg) })), null, 4) + '\n';
}
