import { describe, expect, it } from 'vitest';
import { adviceFor, grantHelperCommand } from './advice.js';
import { loadNative } from './native.js';

describe('advice for capture failures', () => {
  it('every hint that says setcap also says chgrp and chmod 0750, setcap last', () => {
    const g = grantHelperCommand('/opt/icmpcap/icmpcap-helper');
    expect(g).toBe(
      'sudo chgrp icmpcap /opt/icmpcap/icmpcap-helper && sudo chmod 0750 /opt/icmpcap/icmpcap-helper && ' +
        'sudo setcap cap_net_raw+ep /opt/icmpcap/icmpcap-helper',
    );
    for (const kind of ['helper-missing', 'helper-not-executable', 'helper-no-capability', 'helper-failed']) {
      const a = adviceFor({ kind, helperPath: '/x/h' }) ?? '';
      expect(a).toContain('setcap cap_net_raw+ep /x/h');
      expect(a.indexOf('chgrp icmpcap /x/h')).toBeLessThan(a.indexOf('setcap'));
      expect(a).toContain('chmod 0750 /x/h');
    }
  });

  it('names the group to join, modprobe for a missing module, ip link for a missing interface', () => {
    expect(adviceFor({ kind: 'helper-group', group: 'pcap' })).toContain('usermod -aG pcap');
    expect(adviceFor({ kind: 'module-permission', group: 'icmpcap' })).toContain('usermod -aG icmpcap');
    expect(adviceFor({ kind: 'module-missing' })).toContain('modprobe icmpcap');
    expect(adviceFor({ kind: 'no-such-interface' })).toContain('ip link');
    expect(adviceFor({ kind: 'module-no-addr-rules' })).toContain('update icmpcap-dkms');
    expect(adviceFor({})).toBeUndefined();
  });

  it('errors from the addon reach the app with their advice', () => {
    const native = loadNative();
    const helperPath = '/nonexistent/icmpcap-helper';
    let err: (Error & { code?: string; fix?: string }) | undefined;
    try {
      native.open({ source: 'afpacket', helperPath });
    } catch (e) {
      err = e as typeof err;
    }
    expect(err?.code).toBe('ENOENT');
    expect(err?.message).toContain(`icmpcap: helper ${helperPath}: ENOENT`);
    expect(err?.message).toContain('npm run build:native');
    expect(err?.fix).toContain(grantHelperCommand(helperPath));
    const p = native.probe({ helperPath }).find((s) => s.source === 'afpacket');
    expect(p?.available).toBe(false);
    expect(p?.fix).toContain(grantHelperCommand(helperPath));
  });
});
