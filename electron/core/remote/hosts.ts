/**
 * Remote agents in one window: the `hosts.*` requests of the contract, answered by this service for
 * every page (browser mode and the Electron window alike), and each host's events relayed as
 * `host.event`. A page cannot trust a self-signed certificate, so this service connects on its behalf
 * (agent-link.ts). Every input is validated here; a token goes in with hosts.add and never comes out.
 */
import { isIP } from 'node:net';
import type { z } from 'zod';
import {
  type HostEvent,
  type HostInfo,
  type HostsRequestName,
  HostsRequestSchemas,
  PageRequestSchemas,
  ServiceError,
  isHostsRequestName,
  isPageRequestName,
} from '../../common/contract.js';
import { AgentLink, type LinkTiming } from './agent-link.js';
import { PinStore } from './pins.js';

export interface RemoteHostsOptions {
  pins?: PinStore;
  timing?: LinkTiming;
  /** At most this many hosts. */
  maxHosts?: number;
}

export type HostsListener = (event: 'hosts' | 'host.event', data: HostInfo[] | HostEvent) => void;

/**
 * What a page may ask of a remote host: the same contract, except files (their paths, uploads and
 * downloads live on that host: use its own page) and the hosts of that host (no chains).
 */
const NOT_RELAYED = new Set<string>(['file.open', 'export.start', 'files.list', 'spool.open']);

function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

function parsed<M extends HostsRequestName>(
  method: M,
  params: unknown,
): z.output<(typeof HostsRequestSchemas)[M]> {
  const result = (HostsRequestSchemas[method] as z.ZodType).safeParse(params ?? {});
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue && issue.path.length ? ` (${issue.path.join('.')})` : '';
    throw new ServiceError(
      'bad-request',
      `bad parameters for ${method}${where}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return result.data as z.output<(typeof HostsRequestSchemas)[M]>;
}

/** Checks the address of an agent; says what to give instead. */
export function agentUrl(text: string, allowInsecure: boolean): URL {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new ServiceError(
      'bad-request',
      `not an address: ${JSON.stringify(text.slice(0, 100))}; give the one the agent's \`icmpcap serve\` printed, e.g. https://192.0.2.7:8443/`,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new ServiceError(
      'bad-request',
      `an agent is reached by https:// (or http:// on loopback), not ${url.protocol}`,
    );
  if (url.username || url.password)
    throw new ServiceError('bad-request', 'give the token in its own field, not in the address');
  if (url.pathname !== '/' || url.search)
    throw new ServiceError('bad-request', `give the agent's address without a path: ${url.origin}/`);
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname) && !allowInsecure) {
    throw new ServiceError(
      'bad-request',
      `refused: http://${url.host} would send the token and the capture unencrypted over the network; ` +
        `start the agent with --listen (it serves HTTPS) and use https://${url.host}/, or allow plain http for this host`,
    );
  }
  return url;
}

export class RemoteHosts {
  private readonly links = new Map<string, AgentLink>();
  private readonly listeners = new Set<HostsListener>();
  private readonly pins: PinStore;
  private nextId = 1;
  private hostsQueued = false;

  constructor(private readonly opts: RemoteHostsOptions = {}) {
    this.pins = opts.pins ?? new PinStore();
  }

  on(listener: HostsListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  list(): HostInfo[] {
    return [...this.links.values()].map((l) => l.info);
  }

  /** True for the requests this object answers (the transports ask before passing on to the service). */
  static handles(method: unknown): boolean {
    return isHostsRequestName(method);
  }

  async handle(method: unknown, params: unknown): Promise<unknown> {
    if (!isHostsRequestName(method))
      throw new ServiceError('unknown-method', `unknown request ${String(method)}`);
    switch (method) {
      case 'hosts.list':
        parsed(method, params);
        return this.list();
      case 'hosts.add':
        return this.add(parsed(method, params));
      case 'hosts.remove': {
        const { host } = parsed(method, params);
        this.link(host).close();
        this.links.delete(host);
        this.emitHosts();
        return { removed: host };
      }
      case 'hosts.trust': {
        const { host, fingerprint } = parsed(method, params);
        const link = this.link(host);
        link.trust(fingerprint);
        return link.info;
      }
      case 'hosts.request': {
        const p = parsed(method, params);
        return this.relay(p.host, p.method, p.params);
      }
    }
  }

  private link(id: string): AgentLink {
    const link = this.links.get(id);
    if (!link) throw new ServiceError('not-found', `no host ${id}: hosts.list gives the hosts there are`);
    return link;
  }

  private add(p: z.output<(typeof HostsRequestSchemas)['hosts.add']>): HostInfo {
    const url = agentUrl(p.url, p.allowInsecure === true);
    for (const link of this.links.values()) {
      if (link.url.origin === url.origin)
        throw new ServiceError('bad-request', `${url.origin} is already added (as ${link.info.name})`);
    }
    if (this.links.size >= (this.opts.maxHosts ?? 32))
      throw new ServiceError('bad-request', 'too many hosts: remove one first');
    const id = `h${this.nextId++}`;
    const link = new AgentLink(
      id,
      p.name ?? url.host,
      url,
      p.token,
      this.pins,
      (event, data) => {
        if (event === 'hosts') this.emitHosts();
        else this.emit('host.event', data as HostEvent);
      },
      this.opts.timing,
    );
    this.links.set(id, link);
    link.connect();
    this.emitHosts();
    return link.info;
  }

  private async relay(host: string, method: string, params: unknown): Promise<unknown> {
    const link = this.link(host);
    if (!isPageRequestName(method) || isHostsRequestName(method))
      throw new ServiceError('unknown-method', `unknown request ${JSON.stringify(method)} for a remote host`);
    if (NOT_RELAYED.has(method)) {
      throw new ServiceError(
        'bad-request',
        `${method} is not relayed to ${link.info.name}: files stay on that host; open its own page (${link.info.url}) to open or export files`,
      );
    }
    const check = (PageRequestSchemas[method] as z.ZodType).safeParse(params ?? {});
    if (!check.success) {
      const issue = check.error.issues[0];
      const where = issue && issue.path.length ? ` (${issue.path.join('.')})` : '';
      throw new ServiceError(
        'bad-request',
        `bad parameters for ${method}${where}: ${issue?.message ?? 'invalid'}`,
      );
    }
    return link.request(method, params ?? {});
  }

  /** Host list changes come in bursts (a state and a fingerprint): one event per turn. */
  private emitHosts(): void {
    if (this.hostsQueued) return;
    this.hostsQueued = true;
    queueMicrotask(() => {
      this.hostsQueued = false;
      this.emit('hosts', this.list());
    });
  }

  private emit(event: 'hosts' | 'host.event', data: HostInfo[] | HostEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event, data);
      } catch {
        // one page's failure is not another's
      }
    }
  }

  close(): void {
    for (const link of this.links.values()) link.close();
    this.links.clear();
    this.listeners.clear();
  }
}
