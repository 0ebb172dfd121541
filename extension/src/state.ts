/**
 * The `state` kind: an entity's state as a JSON tree, with the keys the last version
 * changed highlighted when the document carries `previous_state`.
 */

import { diffStates } from './diff';
import { h } from './dom';
import { formatTime } from './format';
import { jsonTree } from './jsontree';
import { isObject, JSONObject } from './types';

function footer(
  changes: Map<string, string> | undefined,
  counts: HTMLElement[],
  version: unknown
): (HTMLElement | string)[] {
  if (!changes) {
    return [version === 1 ? 'first version' : 'previous version not included: no diff'];
  }
  if (changes.size === 0) {
    return ['no change since the previous version'];
  }
  const since = typeof version === 'number' ? `version ${version - 1}` : 'the previous version';
  return [`changes since ${since}: `, ...counts];
}

export function renderState(doc: JSONObject): HTMLElement {
  const state = isObject(doc['state']) ? doc['state'] : {};
  const previous = isObject(doc['previous_state']) ? doc['previous_state'] : null;
  const version = doc['entity_version'];
  const moments: string[] = [];
  for (const [name, label] of [['as_of', 'as of'], ['known_at', 'known at']]) {
    const v = doc[name];
    if (typeof v === 'string') {
      moments.push(`${label} ${formatTime(v)}`);
    }
  }
  const changes = previous ? diffStates(previous, state) : undefined;
  const tree = jsonTree(state, { changes, previous: previous ?? undefined });
  tree.classList.add('asl-state-tree');
  const counts = changes
    ? ['added', 'changed', 'removed']
        .map(c => [c, [...changes.values()].filter(v => v === c).length] as const)
        .filter(([, n]) => n > 0)
        .map(([c, n]) => h('span', { class: `asl-chip asl-diff-${c}-count` }, `${n} ${c}`))
    : [];
  return h('div', { class: 'asl-state-doc' },
    h('div', { class: 'asl-header' },
      h('strong', {}, String(doc['entity_id'] ?? '')),
      typeof version === 'number' ? h('span', { class: 'asl-chip' }, `version ${version}`) : null,
      h('span', { class: 'asl-muted' }, moments.length ? ` ${moments.join(' · ')}` : ' now')
    ),
    tree,
    h('div', { class: 'asl-footer' }, ...footer(changes, counts, version))
  );
}
