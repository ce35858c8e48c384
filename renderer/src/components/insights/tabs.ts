/** The answer views' tabs and their badges, for App.vue's tab bar. */
import { computed, type ComputedRef } from 'vue';
import { useInsightsStore } from '../../stores/insights';

export type InsightTab = 'problems' | 'paths' | 'neighbours' | 'alerts';
export const INSIGHT_TABS: { id: InsightTab; label: string }[] = [
  { id: 'problems', label: 'Problems' },
  { id: 'paths', label: 'Paths' },
  { id: 'neighbours', label: 'Neighbours' },
  { id: 'alerts', label: 'Alerts' },
];

/** Counts beside the tab names (the store is created here, at start, so firings notify from the first one). */
export function useInsightBadges(): ComputedRef<Partial<Record<string, number>>> {
  const insights = useInsightsStore();
  return computed(() => ({
    problems: insights.problems.length,
    paths: insights.paths.length,
    neighbours: insights.neighbours.findings.length,
    alerts: insights.unseen,
  }));
}
