/**
 * The capture filter the kernel applies (`icmpcap capture -f`, the UI's capture options): the module turns
 * it into its filter attributes, AF_PACKET into a classic BPF program. Fields are AND-ed; addresses are
 * OR-ed; an absent field lets everything through. No runtime imports: the page uses it too.
 */
export interface CaptureFilterSpec {
  /** absent/empty: both */
  families?: (4 | 6)[];
  /** absent: every ICMPv4 type */
  typesV4?: number[];
  /** absent: every ICMPv6 type */
  typesV6?: number[];
  /** absent: every code */
  codes?: number[];
  directions?: ('in' | 'out' | 'forward')[];
  /** OR-ed */
  addresses?: CaptureFilterAddress[];
}

export interface CaptureFilterAddress {
  family: 4 | 6;
  address: string;
  prefixLength: number;
  side: 'any' | 'src' | 'dst';
}
