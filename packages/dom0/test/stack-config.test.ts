import { describe, expect, it } from 'vitest';
import { DEFAULT_STACK_CONFIG, parseStackConfig } from '../src/supervisor/stack-config.js';
import { formatStatusTable, formatUptime } from '../src/supervisor/status-table.js';
import { prettyLogLine } from '../src/supervisor/log-view.js';

describe('the stack config', () => {
  it('defaults to one netback serving xenbr0 and one blkback', () => {
    expect(parseStackConfig({})).toEqual(DEFAULT_STACK_CONFIG);
    expect(DEFAULT_STACK_CONFIG.services.map((s) => [s.name, s.kind])).toEqual([['netback', 'netback'], ['blkback', 'blkback']]);
  });

  it('takes several driver domains with their own names and policies', () => {
    const c = parseStackConfig({ services: [{ name: 'nb-a', kind: 'netback', args: { bridges: ['xenbr1'] } }, { name: 'nb-b', kind: 'netback', restart: 'never' }], restart: { policy: 'on-failure' } });
    expect(c.services.map((s) => [s.name, s.restart])).toEqual([['nb-a', 'on-failure'], ['nb-b', 'never']]);
  });

  it.each([
    [[], 'stack config: must be a JSON object'],
    [{ servics: [] }, "unknown key 'servics'"],
    [{ services: {} }, 'services: must be a list'],
    [{ services: [{ kind: 'tapback' }] }, 'services[0].kind: must be one of netback, blkback'],
    [{ services: [{ kind: 'netback', name: 'xenstored' }] }, "'xenstored' is reserved"],
    [{ services: [{ kind: 'netback', name: 'a b' }] }, 'services[0].name: must be'],
    [{ services: [{ kind: 'netback' }, { kind: 'netback' }] }, "two services are named 'netback'"],
    [{ restart: { policy: 'sometimes' } }, 'restart.policy: must be one of always, on-failure, never'],
    [{ restart: { maxRestarts: -1 } }, 'restart.maxRestarts: must be a non-negative integer'],
  ])('refuses %j naming the problem', (cfg, msg) => {
    expect(() => parseStackConfig(cfg)).toThrow(msg);
  });
});

describe('status output', () => {
  it('prints uptime as xl uptime does', () => {
    expect(formatUptime(0)).toBe('0:00:00');
    expect(formatUptime(3_723_000)).toBe('1:02:03');
    expect(formatUptime(2 * 86_400_000 + 5000)).toBe('2 days, 0:00:05');
  });

  it('aligns the columns', () => {
    const t = formatStatusTable([{ name: 'netback', kind: 'netback', domid: 12, pid: 4242, state: 'ready', startedAt: 0, restarts: 3, lastExit: null, recoveryMs: [] }], 61_000);
    expect(t.split('\n')).toEqual(['NAME     DOMID   PID  STATE   UPTIME  RESTARTS', 'netback     12  4242  ready  0:01:01         3']);
  });

  it('pretty-prints a pino line and passes other text through', () => {
    const line = JSON.stringify({ level: 50, time: '2026-11-22T02:31:09.001Z', pid: 1, name: 'xenbox', msg: 'service died', service: 'netback', exit: 'killed by SIGKILL' });
    expect(prettyLogLine(line).text).toBe('02:31:09.001 ERROR xenbox service died service=netback exit="killed by SIGKILL"');
    expect(prettyLogLine('plain text').text).toBe('plain text');
  });
});
