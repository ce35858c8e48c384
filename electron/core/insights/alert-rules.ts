/**
 * The alert rules the UI edits: alerts.conf (one rule per line, `#` comments) plus the read-only `--alert`
 * rules of the command line. Every rule is checked as the CLI checks it (errors point at the bad part);
 * the file is written only when all of its rules are good, so `icmpcap serve` never meets a bad one.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { AlertRuleInfo, AlertRulesInfo, RuleCheck } from '../../common/insights.js';
import { AlertRuleError, type AlertRule, parseAlertRule } from '../alerts/rule.js';

export function checkRule(text: string): { check: RuleCheck; rule: AlertRule | null } {
  try {
    const rule = parseAlertRule(text);
    return { check: { ok: true, name: rule.name }, rule };
  } catch (e) {
    if (e instanceof AlertRuleError) {
      // The first line of the message is the reason; the rest repeats the rule with a caret the UI draws.
      return { check: { ok: false, message: e.message.split('\n')[0]!, position: e.position }, rule: null };
    }
    return {
      check: { ok: false, message: e instanceof Error ? e.message : String(e), position: 0 },
      rule: null,
    };
  }
}

/** The rule lines of a rules file's text (comments and blank lines left out). */
export function ruleLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

const HEADER =
  '# icmpcap alert rules, one per line (see `icmpcap help serve` and the README, "Alerts").\n' +
  '# Written by icmpcap; lines starting with # are comments.\n';

export class AlertRuleStore {
  private fileRules: string[] = [];
  private message: string | undefined;

  constructor(
    readonly file: string,
    private readonly commandLine: readonly string[],
    /** Whether to read the file at all (`--no-alert-file`). */
    private readonly useFile: boolean,
  ) {
    this.reload();
  }

  reload(): void {
    this.message = undefined;
    if (!this.useFile || !existsSync(this.file)) {
      this.fileRules = [];
      return;
    }
    try {
      this.fileRules = ruleLines(readFileSync(this.file, 'utf8'));
    } catch (e) {
      this.fileRules = [];
      this.message = `cannot read ${this.file}: ${e instanceof Error ? e.message : String(e)}`;
    }
  }

  /** The good rules in force, file first. */
  rules(): AlertRule[] {
    const out: AlertRule[] = [];
    for (const text of [...(this.useFile ? this.fileRules : []), ...this.commandLine]) {
      const { rule } = checkRule(text);
      if (rule) out.push(rule);
    }
    return out;
  }

  info(saved?: boolean): AlertRulesInfo {
    const rules: AlertRuleInfo[] = [
      ...this.fileRules.map((text) => ({ text, origin: 'file' as const, check: checkRule(text).check })),
      ...this.commandLine.map((text) => ({
        text,
        origin: 'command-line' as const,
        check: checkRule(text).check,
      })),
    ];
    return {
      file: this.file,
      rules,
      ...(saved === undefined ? {} : { saved }),
      ...(this.message ? { message: this.message } : {}),
    };
  }

  /** Replaces the file's rules; returns false (and changes nothing) while any rule is bad. */
  set(texts: readonly string[]): { saved: boolean; info: AlertRulesInfo; checks: RuleCheck[] } {
    const lines = texts.map((t) => t.trim()).filter((t) => t !== '');
    const checks = lines.map((t) => checkRule(t).check);
    if (!this.useFile) {
      const info = this.info(false);
      return {
        saved: false,
        checks,
        info: {
          ...info,
          message: 'the rules file is switched off (--no-alert-file): restart without it to edit rules here',
        },
      };
    }
    if (checks.some((c) => !c.ok)) {
      const bad: AlertRuleInfo[] = lines.map((text, i) => ({ text, origin: 'file', check: checks[i]! }));
      const info = this.info(false);
      return {
        saved: false,
        checks,
        info: { ...info, rules: [...bad, ...info.rules.filter((r) => r.origin !== 'file')] },
      };
    }
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      // Written beside and renamed over: a crash never leaves half a rules file.
      const tmp = `${this.file}.tmp-${process.pid}`;
      writeFileSync(tmp, HEADER + lines.map((l) => `${l}\n`).join(''), { mode: 0o600 });
      renameSync(tmp, this.file);
    } catch (e) {
      const info = this.info(false);
      return {
        saved: false,
        checks,
        info: {
          ...info,
          message: `cannot write ${this.file}: ${e instanceof Error ? e.message : String(e)}; check that the folder is writable`,
        },
      };
    }
    this.fileRules = lines;
    this.message = undefined;
    return { saved: true, checks, info: this.info(true) };
  }
}
