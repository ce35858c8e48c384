/** Help texts: `icmpcap --help` lists the commands, `icmpcap help COMMAND` (or `COMMAND -h`) describes one. */
import { METRICS_USAGE } from '../metrics/index.js';
import { SERVE_SECURITY_USAGE } from '../web/serve-setup.js';
import { ALERT_USAGE } from '../alerts/cli.js';
import { SPOOL_USAGE } from '../spool-cli.js';
import { REMOTE_USAGE } from '../remote/cli.js';

const SERVE = `usage: icmpcap serve [options]
  serve the app in a browser (127.0.0.1 and a random token by default)
  --listen ADDR          listen on ADDR instead of 127.0.0.1 (HTTPS; the token is still required)
${SERVE_SECURITY_USAGE.replace(/^ {16}/gm, '').trimEnd()}
${REMOTE_USAGE.replace(/^ {16}/gm, '').trimEnd()}
  -Z, --user USER        started as root: run as USER after preparing the capture helper
                         (default: SUDO_USER, else the system account icmpcap)
  --port N               port (default: any free port)
  -i, --interface NAME   capture on NAME (repeatable; default: all)
  --source auto|module|afpacket
  -B, --buffer-size MiB  kernel buffer of every capture, as for capture -B
  --no-start             do not start capturing until asked from the UI
  --ring-records N       keep about the newest N records (at least 131072); older ones are dropped
                         in units of about N/8, as dumpcap's ring buffer
  --ring-seconds S       keep the records of the last S seconds (at least 10)
${METRICS_USAGE.replace(/^ {16}/gm, '')}${ALERT_USAGE.replace(/^ {16}/gm, '')}`;

const CAPTURE = `usage: icmpcap capture [options] [capture filter]
  capture ICMP and ICMPv6 live (or read a file) and print or write it; tshark's and tcpdump's flags

input
  -i, --interface NAME   capture on NAME (repeatable; "any" or none: all interfaces)
  -r, --read FILE        read a pcap or pcapng file instead of capturing ("-": standard input)
  -f, --capture-filter F capture filter, applied in the kernel (a subset of pcap-filter for ICMP:
                         icmp, icmp6, host, net, src, dst, icmp[icmptype] == icmp-echo, and/or/not)
  -s, --snapshot-length N  bytes kept per packet from the IP header on (64..65535, 0: all; default all)
  -D, --list-interfaces  list the interfaces and exit
  --source auto|module|afpacket
  -B, --buffer-size MiB  kernel buffer, as tshark's -B: the memory of all the capture's kernel rings
                         together; the module splits it over its rings (one per CPU, each a power of two,
                         rounded down), AF_PACKET over its rings (one per -i, or one for all). Default:
                         module 4 MiB a CPU up to 16 MiB, AF_PACKET 4 MiB a ring. Raise it when the
                         summary reports packets dropped by the kernel; not with -r
  -Z, --user USER        started as root: run as USER once the output file is open (default:
                         SUDO_USER, else the system account icmpcap), as tcpdump -Z

what to keep and when to stop
  -Y, --display-filter F keep only packets matching the display filter
                         (e.g. 'icmp.type == echo-reply && rtt > 10')
  -c, --count N          stop after N packets (those -Y keeps)
  -a, --autostop COND    stop on duration:SECONDS, packets:N, filesize:KB or files:N (a bare number:
                         seconds); repeatable, the first reached wins
  --ring-records N, --ring-seconds S   bound memory and spool as for serve
  --alert RULE, --alert-dir DIR, --alert-commands, --no-alert-file   alert rules, as for serve

output
  -w, --write FILE       write FILE as packets arrive (format from its extension, or -F);
                         "-": pcapng or pcap to standard output (icmpcap capture -w - | tshark -r -)
  -F, --format pcapng|pcap|csv|ndjson
  -b, --ring-buffer COND switch files on duration:SECONDS, filesize:KB, interval:SECONDS or
                         packets:N; files:N keeps the newest N; names as dumpcap's:
                         FILE_00001_YYYYmmddHHMMSS.pcapng
  -P, --print            print packets to standard output while writing a file too
  -T, --output-format text|fields|json|ndjson
  -e, --field FIELD      a field to print with -T fields (repeatable), named as in Wireshark
  -E, --field-option OPT header=y|n, separator=/t|/s|C, quote=d|s|n, occurrence=f|l|a, aggregator=C
  -z, --statistics STAT  icmp,srt[,FILTER], icmpv6,srt[,FILTER], icmpcap,peers: printed at the end
                         icmpcap,paths (traceroute/mtr runs rebuilt), icmpcap,problems (errors by flow)
                         icmpcap,procs (the local processes that sent ICMP, and what came back)
  -q, --quiet            no packet lines (with -z) and no progress (with -w)
  -l, --line-buffered    write each packet line as it comes
  -n                     print addresses (the default); -N, --resolve: print DNS names

Without -w, one line per packet goes to standard output; progress and the summary go to standard error.
SIGINT, SIGTERM, SIGHUP and a closed output pipe end the capture with every file whole.
Exit status: 0 done, 1 a failure at run time (the message says what), 2 a mistake on the command line.
`;

const DOCTOR = `usage: icmpcap doctor
  check the module, device permissions, Secure Boot, capabilities and the helper, and say what to fix;
  exit status 1 when no capture source is usable
`;

const INTERFACES = `usage: icmpcap interfaces
  list the interfaces capture can use: index, name, state, addresses
`;

const SOURCES = `usage: icmpcap sources
  show which capture sources are available (the kernel module, AF_PACKET), and why not
`;

const FIELDS = `usage: icmpcap fields
  list the fields of -T fields -e (and -Y): name, type, description, with Wireshark's names
`;

const HELP = `usage: icmpcap help [COMMAND]
  describe COMMAND, or list the commands
`;

export const COMMAND_HELP: Record<string, string> = {
  serve: SERVE,
  capture: CAPTURE,
  doctor: DOCTOR,
  interfaces: INTERFACES,
  sources: SOURCES,
  fields: FIELDS,
  spool: `${SPOOL_USAGE}\n`,
  help: HELP,
};

export const USAGE = `usage: icmpcap <command> [options]

commands:
  serve         serve the app in a browser (127.0.0.1 and a random token by default)
  capture       capture to a file or the terminal, or read a file (tshark's and tcpdump's flags)
  doctor        check the module, device permissions, Secure Boot, capabilities and the helper
  interfaces    list the interfaces capture can use
  sources       show which capture sources are available, and why not
  fields        list the fields -T fields -e prints, with Wireshark's names
  spool         captures left behind by a crash: list, recover ID|latest -w FILE, clean [ID]
  help COMMAND  describe a command and its options

  --version     print the version

\`icmpcap help COMMAND\` or \`icmpcap COMMAND -h\` describes a command; \`man icmpcap\` has it all.
`;

export function commandHelp(command: string): string {
  return COMMAND_HELP[command] ?? USAGE;
}
