// What the packages say about the app: read by build/electron-builder.cjs and by scripts/package.sh (which
// assembles the debs with dpkg-deb where electron-builder would download fpm), so both write the same thing.
'use strict';

const { version } = require('../package.json');

const fileAssociations = [
  {
    ext: 'pcapng',
    name: 'pcapng capture',
    description: 'Packet capture (pcapng)',
    mimeType: 'application/x-pcapng',
    role: 'Viewer',
  },
  {
    ext: 'pcap',
    name: 'pcap capture',
    description: 'Packet capture (pcap)',
    mimeType: 'application/vnd.tcpdump.pcap',
    role: 'Viewer',
  },
];

/**
 * V8 flags of every process that runs the capture service (the window's main process, `icmpcap serve`, the
 * CLI). The service's own JavaScript heap is small (~22 MB: its records live in typed arrays outside it) and its
 * young generation large, and V8 starts a full marking whenever the old generation's room is below the young
 * generation's size: at 500 k records/s that was a full collection every ~150 ms (142-178 in a 35 s capture,
 * the ingest-load bench; 17-18 with this flag, the process's peak memory the same). V8 reads it only at start,
 * so each launcher passes it (test/unit/v8-flags.test.ts checks that they all do, and that it still works).
 */
const serviceV8Flags = ['--initial-old-space-size=512'];

/**
 * Node's own flags for the processes that run the service on Node (`icmpcap serve`, the CLI, the packages'
 * /usr/bin/icmpcap), after serviceV8Flags. V8's helper threads (garbage collection, compilation) number 4 on
 * Node whatever the machine; they run at the event loop's priority, and on 2 cores four of them busy with a
 * collection kept the event loop waiting for a core for 15-38 ms at a time during a 20 M-record capture
 * (schedstat of its thread). `--v8-pool-size=0` sizes them to the cores less one (at least one). The capture's
 * longest turn at 20 M records, three interleaved runs each: 46-64 ms with 4 helpers, 35-37 ms with 2, 25-36 ms
 * with 1 (this flag on 2 cores; its one 58 ms turn was the capture's cold start, since sliced). Ingest kept its
 * pace (service-bench at 10 M, two interleaved runs each: 2.52-2.69 M records/s without, 2.61-2.72 with).
 * Electron (the window's main process, and the packages' CLI run as Node) runs V8 on Chromium's thread pool,
 * which this flag does not size: there it only has an effect under plain Node.
 */
const serviceNodeFlags = ['--v8-pool-size=0'];

module.exports = {
  version,
  serviceV8Flags,
  serviceNodeFlags,
  maintainer: 'icmpcap maintainers <icmpcap@users.noreply.github.com>',
  synopsis: 'live ICMP and ICMPv6 capture with RTT and loss per peer',
  description:
    'icmpcap captures ICMP and ICMPv6 live and shows who is pinging this host and how often, the RTT and ' +
    'loss to each peer, and which flow got a Destination Unreachable or a Packet Too Big.',
  fileAssociations,
  // [Desktop Entry] keys beyond Name/Exec/Icon/Type/MimeType, which the builders fill in.
  desktopEntry: {
    Name: 'icmpcap',
    GenericName: 'ICMP Capture',
    Comment: 'Live ICMP and ICMPv6 capture with RTT and loss per peer',
    Categories: 'Network;Monitor;',
    Keywords: 'ping;icmp;icmpv6;traceroute;capture;pcap;pcapng;',
    StartupWMClass: 'icmpcap',
  },
  // Electron's runtime libraries (electron-builder's default deb Depends, plus what Electron 45 links) and
  // setcap for postinst. Both builders add `icmpcap-dkms (= <version>)`: the module, group and udev rule.
  debDepends: [
    'libcap2-bin',
    'libgtk-3-0',
    'libnotify4',
    'libnss3',
    'libxss1',
    'libxtst6',
    'xdg-utils',
    'libatspi2.0-0',
    'libuuid1',
    'libsecret-1-0',
    'libasound2',
    'libgbm1',
    'libdrm2',
  ],
};
