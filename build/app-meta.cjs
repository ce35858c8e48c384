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

module.exports = {
  version,
  serviceV8Flags,
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
