/** Test support: real ICMP traffic captured to files by tcpdump and tshark in several link types and formats. */
import path from 'node:path';
import { H2_V4, H2_V6, UNREACHABLE_V4, UNREACHABLE_V6, type NetnsLab } from './lab.js';

export interface CaptureSet {
  /** Ethernet, pcap, nanosecond timestamps (tcpdump). */
  ethPcapNs: string;
  /** Ethernet, pcap, microsecond timestamps (tcpdump). */
  ethPcapUs: string;
  /** Linux cooked v1 (SLL), pcap, microseconds (tcpdump -i any -y LINUX_SLL). */
  sllPcap: string;
  /** Linux cooked v2 (SLL2), pcap, nanoseconds (tcpdump -i any -y LINUX_SLL2). */
  sll2Pcap: string;
  /** pcapng with two interfaces, eth0 and lo (tshark -i eth0 -i lo). */
  multiPcapng: string;
  /** pcapng of the `any` device (tshark -i any). */
  anyPcapng: string;
}

/**
 * Captures echo v4/v6, time exceeded, unreachable, fragmentation needed / packet too big, fragmented echo and
 * loopback pings from h1. `full: false` sends a shorter mix (for tests that only need small real files).
 */
export async function captureRealTraffic(lab: NetnsLab, dir: string, full = true): Promise<CaptureSet> {
  const files: CaptureSet = {
    ethPcapNs: path.join(dir, 'eth-ns.pcap'),
    ethPcapUs: path.join(dir, 'eth-us.pcap'),
    sllPcap: path.join(dir, 'sll.pcap'),
    sll2Pcap: path.join(dir, 'sll2.pcap'),
    multiPcapng: path.join(dir, 'multi.pcapng'),
    anyPcapng: path.join(dir, 'any.pcapng'),
  };
  const h1 = lab.h1;
  const nano = ['--time-stamp-precision', 'nano'];
  // Without immediate mode libpcap hands packets over in blocks and SIGINT can drop the last, partial one.
  const tcpdump = (...args: string[]) => lab.startCapture(h1, 'tcpdump', ['--immediate-mode', '-U', ...args]);
  await Promise.all([
    tcpdump('-i', 'eth0', ...nano, '-w', files.ethPcapNs),
    tcpdump('-i', 'eth0', '-w', files.ethPcapUs),
    tcpdump('-i', 'any', '-y', 'LINUX_SLL', '-w', files.sllPcap),
    tcpdump('-i', 'any', '-y', 'LINUX_SLL2', ...nano, '-w', files.sll2Pcap),
    lab.startCapture(h1, 'tshark', ['-i', 'eth0', '-i', 'lo', '-w', files.multiPcapng]),
    lab.startCapture(h1, 'tshark', ['-i', 'any', '-w', files.anyPcapng]),
  ]);
  // tshark reports "Capturing on" slightly before its capture child is really reading.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const fast = ['-i', '0.05'];
  lab.ping('-c', '3', ...fast, H2_V4);
  lab.ping('-6', '-c', '3', ...fast, H2_V6);
  lab.ping('-c', '2', ...fast, '127.0.0.1');
  if (full) {
    lab.ping('-c', '2', ...fast, '-t', '1', H2_V4); // Time Exceeded from r
    lab.ping('-6', '-c', '2', ...fast, '-t', '1', H2_V6); // Hop Limit Exceeded from r
    lab.ping('-c', '2', ...fast, '-w', '1', UNREACHABLE_V4); // Destination Unreachable (route)
    lab.ping('-6', '-c', '2', ...fast, '-w', '1', UNREACHABLE_V6);
    lab.ping('-c', '2', ...fast, '-w', '1', '-M', 'do', '-s', '1400', H2_V4); // Fragmentation Needed
    lab.ping('-6', '-c', '2', ...fast, '-w', '1', '-s', '1400', H2_V6); // Packet Too Big
    lab.ping('-6', '-c', '2', ...fast, '-w', '1', '-M', 'want', '-s', '1400', H2_V6); // fragmented echo
    lab.ping('-c', '2', ...fast, '-w', '1', '-M', 'dont', '-s', '1400', H2_V4); // fragmented replies
  }
  // dumpcap (behind tshark) delivers in blocks too; give it time to write the last packets.
  await new Promise((resolve) => setTimeout(resolve, 700));
  await lab.stopCaptures();
  if (lab.earlyExits.length > 0) throw new Error(`a capturer stopped early: ${lab.earlyExits.join('; ')}`);
  return files;
}
