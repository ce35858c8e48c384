/**
 * Alert rules for `icmpcap serve` and `icmpcap capture`: `--alert RULE` (repeatable) and the rules file
 * `$XDG_CONFIG_HOME/icmpcap/alerts.conf` (one rule per line, `#` comments). Every rule is checked before
 * the capture starts; a bad one stops the command with the file, line and a caret under the bad part.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { forEachRecord, decodeRecord } from '../record.js';
import type { CaptureService } from '../service.js';
import { AlertRuleError, type AlertRule, parseAlertRule } from './rule.js';
import { AlertRunner } from './index.js';

export const ALERT_FLAGS = {
  alert: { type: 'string', multiple: true },
  'alert-commands': { type: 'boolean', default: false },
  'alert-dir': { type: 'string' },
  'no-alert-file': { type: 'boolean', default: false },
} as const;

export const ALERT_USAGE = `                  --alert RULE    raise an alert when RULE holds (repeatable), e.g.
                                  'icmp.type == 3 rate > 50/s for 5s; cooldown 60s; webhook URL; snapshot 10s'
                                  'peer 192.0.2.1 loss > 5% over 60s', 'new router', 'neighbour dad-conflict'
                                  rules are also read from $XDG_CONFIG_HOME/icmpcap/alerts.conf
                  --alert-dir DIR   where snapshots go (default $XDG_DATA_HOME/icmpcap/snapshots)
                  --alert-commands  let rules run their 'command' (off by default)
                  --no-alert-file   ignore alerts.conf
`;

export function alertsFile(env: NodeJS.ProcessEnv = process.env): string {
  const base = env['XDG_CONFIG_HOME'] || join(env['HOME'] || homedir(), '.config');
  return join(base, 'icmpcap', 'alerts.conf');
}

export function snapshotDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env['XDG_DATA_HOME'] || join(env['HOME'] || homedir(), '.local', 'share');
  return join(base, 'icmpcap', 'snapshots');
}

/** Parses the rules of a file's text; errors name the file and line. */
export function parseAlertFile(text: string, file: string): AlertRule[] {
  const rules: AlertRule[] = [];
  text.split('\n').forEach((line, i) => {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) return;
    try {
      rules.push(parseAlertRule(t));
    } catch (e) {
      if (e instanceof AlertRuleError) throw new Error(`${file}:${i + 1}: ${e.message}`);
      throw e;
    }
  });
  return rules;
}

export interface AlertFlagValues {
  alert?: string[];
  'alert-commands'?: boolean;
  'alert-dir'?: string;
  'no-alert-file'?: boolean;
}

/** The rules of the flags and the rules file; throws with a message that says what to fix. */
export function alertRulesFromFlags(values: AlertFlagValues): AlertRule[] {
  const rules: AlertRule[] = [];
  const file = alertsFile();
  if (!values['no-alert-file'] && existsSync(file))
    rules.push(...parseAlertFile(readFileSync(file, 'utf8'), file));
  for (const text of values.alert ?? []) {
    try {
      rules.push(parseAlertRule(text));
    } catch (e) {
      if (e instanceof AlertRuleError) throw new Error(`--alert: ${e.message}`);
      throw e;
    }
  }
  return rules;
}

/** Runs the rules over everything the service captures; returns the runner (null: no rules). */
export function attachAlerts(
  service: CaptureService,
  values: AlertFlagValues,
  linkBase?: string,
): AlertRunner | null {
  const rules = alertRulesFromFlags(values);
  if (rules.length === 0) return null;
  const needsDir = rules.some((r) => r.snapshotSeconds !== null);
  const dir = values['alert-dir'] ?? snapshotDir();
  if (needsDir) {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new Error(
        `cannot create the alert snapshot folder ${dir} (${why}): give a writable one with --alert-dir DIR`,
        {
          cause: err,
        },
      );
    }
  }
  const runner = new AlertRunner(rules, {
    ...(needsDir ? { snapshotDir: dir } : {}),
    allowCommands: values['alert-commands'] === true,
    ...(linkBase ? { linkBase } : {}),
    matcher: (filter, fields) => service.ruleMatcher(filter, fields),
  });
  service.tapRecords((batch, firstNo, ifname, byteOffset, byteLength, firstIndex) => {
    let no = firstNo;
    let index = firstIndex;
    forEachRecord(
      batch,
      (view, offset) => {
        const record = decodeRecord(view, offset);
        runner.observe(record, no++, ifname(record.ifindex), index++);
      },
      byteOffset,
      byteLength,
    );
  });
  return runner;
}
