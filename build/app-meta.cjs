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

module.exports = {
  version,
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
