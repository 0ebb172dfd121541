"""Does a later JSON Schema accept every document an earlier one accepts? The proof.

``Comparison`` walks two schemas side by side (each resolved against its own root by a
``Side``) and lists the problems: the ways a document valid under the earlier schema may
be invalid under the later one. It applies the per-keyword rules of
:mod:`allsource_lab.schemas.keyword_rules` and, itself, the rules that need the whole
comparison: ``allOf``/``anyOf``/``oneOf``/``not``, dependencies, properties against
``patternProperties`` and ``additionalProperties``, arrays, and equivalence. Each rule
that proves a change compatible beyond "unchanged" is noted in ``rules``. The table is
in :mod:`allsource_lab.schemas.compat`, the public face.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from allsource_lab.schemas import dialect
from allsource_lab.schemas.keyword_rules import (
    ANNOTATIONS,
    ANYTHING,
    CONTEXTUAL,
    DEPENDENCIES,
    GROUPS,
    LEGACY_DRAFTS,
    NOTHING,
    RULED,
    SCHEMA_LISTS,
    SCHEMA_MAPS,
    SCHEMA_VALUED,
    UNEVALUATED,
    UNORDERED,
    Schema,
    allowed_values,
    constraints,
    count_problems,
    descends,
    escape,
    format_problems,
    has_nested_id,
    is_open,
    json_equal,
    json_type,
    listed_properties,
    number_problems,
    overlap,
    pattern_properties,
    required_names,
    same_members,
    string_problems,
    type_problems,
    types_of,
    uses_unevaluated,
    value_problems,
)

__all__ = ["Comparison", "Side", "Unresolved"]


@dataclass(frozen=True, slots=True)
class Unresolved:
    """A ``$ref`` (or a non-schema) this module cannot follow; ``why`` says which."""

    why: str


@dataclass(frozen=True, slots=True)
class Side:
    """One schema document: its root, its draft's rules, and its ``$ref`` resolution."""

    root: Schema
    legacy: bool  # draft-07 or older: $ref hides its siblings, no prefixItems
    local_refs: bool  # False when a nested $id changes what "#/..." means below it

    @classmethod
    def of(cls, root: Schema) -> Side:
        declared = root.get("$schema", "") if isinstance(root, dict) else ""
        legacy = isinstance(declared, str) and any(d in declared for d in LEGACY_DRAFTS)
        if isinstance(root, dict) and "$schema" not in root:
            legacy = dialect.is_draft_7(root)  # draft-07-only keywords and no $schema
        return cls(root, legacy, not has_nested_id(root, top=True))

    def view(self, node: Any) -> Schema | Unresolved:
        """``node`` with any local ``$ref`` replaced by what it refers to."""
        return self.widened_view(node)[0]

    def widened_view(self, node: Any, widen: bool = False) -> tuple[Schema | Unresolved, bool]:
        """``view``, and with ``widen`` the view of a schema that accepts at least as much.

        In 2020-12 a ``$ref`` with siblings is ``allOf: [target, siblings]``, exactly,
        unless a sibling is ``unevaluated*``: beside the ``$ref`` it sees what the target
        evaluated, inside an ``allOf`` member it would not, and so refuse more. The view
        of a schema that must accept less (whose documents are the premise) drops those
        siblings when ``widen`` is set, and says so with the second value.
        """
        seen: list[object] = []
        widened = False
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            target = self._target(ref)
            if target is None or any(target is s for s in seen):
                return Unresolved(f"$ref {ref!r} cannot be resolved"), widened
            seen.append(target)
            rest = {k: v for k, v in node.items() if k != "$ref" and k not in ANNOTATIONS}
            if widen and not self.legacy and set(rest) & UNEVALUATED:
                rest = {k: v for k, v in rest.items() if k not in UNEVALUATED}
                widened = True
            if rest and not self.legacy:  # 2020-12 applies the ref *and* its siblings
                return {"allOf": [target, rest]}, widened
            node = target
        if isinstance(node, bool | dict):
            return node, widened
        return Unresolved(f"{node!r} is not a schema"), widened

    def _target(self, ref: object) -> Any:
        if not isinstance(ref, str) or not self.local_refs:
            return None
        base, _, fragment = ref.partition("#")
        root_id = self.root.get("$id", "") if isinstance(self.root, dict) else ""
        if base and base != str(root_id).partition("#")[0]:
            return None
        if not fragment:
            return self.root
        if not fragment.startswith("/"):
            return None  # a plain-name fragment ($anchor)
        node: Any = self.root
        for token in fragment[1:].split("/"):
            token = unquote(token).replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                return None
        return node

    def array_model(self, node: dict[str, Any]) -> tuple[list[Any], Any, str, str]:
        """(positional schemas, schema of the rest, and the keywords naming each)."""
        items = node.get("items", True)
        if isinstance(items, list):
            return items, node.get("additionalItems", True), "items", "additionalItems"
        prefix = node.get("prefixItems")
        if isinstance(prefix, list) and not self.legacy:
            return prefix, items, "prefixItems", "items"
        return [], items, "prefixItems", "items"


class Comparison:
    """Does ``new`` accept everything ``old`` does? One instance per pair of roots."""

    def __init__(self, old: Side, new: Side):
        self.old = old
        self.new = new
        # Pairs being compared right now, with the path where. Meeting one again means a
        # $ref cycle: assuming it holds is sound when the lap went into a part of the
        # document (a strictly smaller one), and not when it stayed in place (through
        # allOf/anyOf/oneOf/not). The nodes are kept so that their ids are not reused.
        self._active: dict[tuple[int, int], tuple[object, object, str]] = {}
        self._same_active: dict[tuple[int, int], tuple[object, object]] = {}
        # The rules that proved a change compatible (see backward_verdict).
        self.rules: list[str] = []
        self._reversed: Comparison | None = None

    def problems(self, old: Any, new: Any, path: str) -> list[str]:
        key = (id(old), id(new))
        if key in self._active:
            if descends(path, self._active[key][2]):
                return []
            return [f"$ref cycle that stays in place at {path}; cannot prove compatibility"]
        self._active[key] = (old, new, path)
        try:
            before, widened = self.old.widened_view(old, widen=True)
            if widened and self.same(old, new):
                return []  # unchanged: widening the premise must not make it a problem
            return self._views(before, self.new.view(new), path)
        finally:
            del self._active[key]

    def proves(self, old: Any, new: Any, path: str) -> bool:
        """Whether ``new`` accepts all ``old`` does, keeping the rules only if it does."""
        mark = len(self.rules)
        if self.problems(old, new, path):
            del self.rules[mark:]
            return False
        return True

    def reversed(self) -> Comparison:
        """The comparison with the roles swapped (for ``not``, whose inclusion flips)."""
        if self._reversed is None:
            self._reversed = Comparison(self.new, self.old)
        return self._reversed

    def _views(self, old: Schema | Unresolved, new: Schema | Unresolved, path: str) -> list[str]:
        if old is False:
            return []
        if isinstance(new, Unresolved):
            return [f"{new.why} at {path}; cannot prove compatibility"]
        if new is True:
            return []
        if new is False:
            return [f"schema now rejects everything at {path}"]
        was = old if isinstance(old, dict) else ANYTHING  # True, or a ref we cannot follow
        return self._keywords(was, new, path)

    def _keywords(self, old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
        problems = [*type_problems(old, new, path), *value_problems(old, new, path)]
        problems += self._opaque_problems(old, new, path)
        problems += self._applicator_problems(old, new, path)
        problems += self._dependency_problems(old, new, path)
        if uses_unevaluated(new) and not self.same(old, new):
            problems.append(f"unevaluated* keyword in use and schema changed at {path}; "
                            "cannot prove compatibility")  # fmt: skip
        problems += format_problems(old, new, path)
        types = types_of(old)
        if types is None or types & {"number", "integer"}:
            problems += number_problems(old, new, path)
        if types is None or "string" in types:
            problems += string_problems(old, new, path)
        if types is None or "array" in types:
            problems += self._array_problems(old, new, path)
        if types is None or "object" in types:
            problems += self._object_problems(old, new, path)
        return problems

    def _opaque_problems(self, old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
        problems = []
        for key, value in new.items():
            if key in ANNOTATIONS or key in RULED:
                continue
            if key in CONTEXTUAL:
                problems.append(f"{key} at {path}; cannot prove compatibility")
            elif key not in old:
                problems.append(f"{key} added at {path}; cannot prove compatibility")
            elif not self._same_keyword(key, old[key], value):
                problems.append(f"{key} changed at {path}; cannot prove compatibility")
        for group in GROUPS:
            if group[0] in new and not all(self._same_member(k, old, new) for k in group):
                problems.append(f"{'/'.join(group)} changed at {path}; cannot prove compatibility")
        return problems

    def _array_problems(self, old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
        problems = [*count_problems(old, new, path, "minItems", "maxItems")]
        if new.get("uniqueItems") is True and old.get("uniqueItems") is not True:
            problems.append(f"uniqueItems turned on at {path}")
        old_at, old_rest, _, _ = self.old.array_model(old)
        new_at, new_rest, at_key, rest_key = self.new.array_model(new)
        for i in range(max(len(old_at), len(new_at))):
            before = old_at[i] if i < len(old_at) else old_rest
            after = new_at[i] if i < len(new_at) else new_rest
            where = f"{path}/{at_key}/{i}" if i < len(new_at) else f"{path}/{rest_key}"
            problems += self.problems(before, after, where)
        return problems + self.problems(old_rest, new_rest, f"{path}/{rest_key}")

    # -- applicators: allOf, anyOf, oneOf, not -------------------------------------------

    def _applicator_problems(
        self, old: dict[str, Any], new: dict[str, Any], path: str
    ) -> list[str]:
        problems = self._all_of_problems(old, new, path)
        problems += self._any_of_problems(old, new, path)
        problems += self._one_of_problems(old, new, path)
        return problems + self._not_problems(old, new, path)

    def _all_of_problems(self, old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
        after = new.get("allOf")
        if not isinstance(after, list):
            return []
        found = old.get("allOf")
        before: list[Any] = found if isinstance(found, list) else []
        problems: list[str] = []
        for j, member in enumerate(after):
            where = f"{path}/allOf/{j}"
            # An old document meets every old member, and the old schema as a whole.
            if any(self.proves(b, member, where) for b in before) or self.proves(
                old, member, where
            ):
                continue
            problems += self.problems(before[j] if j < len(before) else old, member, where)
        if not problems and not json_equal(before, after):
            self.rules.append(
                f"allOf: every later member contains an earlier member or the earlier "
                f"schema, at {path}"
            )
        return problems

    def _branches(self, old: dict[str, Any], key: str) -> tuple[list[Any], bool]:
        """The old schema's branches under ``key`` (itself when it has none), and whether
        they are its own branches."""
        branches = old.get(key)
        if isinstance(branches, list):
            return branches, True
        return [old], False

    def _any_of_problems(self, old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
        after = new.get("anyOf")
        if not isinstance(after, list):
            return []
        # An old document lies in some old branch (of anyOf, or the one oneOf gives).
        key = "anyOf" if isinstance(old.get("anyOf"), list) else "oneOf"
        before, own = self._branches(old, key)
        problems: list[str] = []
        for i, branch in enumerate(before):
            where = f"{path}/{key}/{i}" if own else path
            if any(self.proves(branch, c, f"{path}/anyOf/{j}") for j, c in enumerate(after)):
                continue
            target = after[i] if i < len(after) else after[0] if after else False
            found = self.problems(branch, target, f"{path}/anyOf/{min(i, len(after) - 1)}")
            problems += found or [f"anyOf: no later branch accepts all of {where}"]
        if not problems and not (own and key == "anyOf" and json_equal(before, after)):
            what = (
                "every earlier branch lies within a later one"
                if own
                else ("the earlier schema lies within a branch")
            )
            self.rules.append(f"anyOf{'' if own else ' where there was none'}: {what}, at {path}")
        return problems

    def _one_of_problems(self, old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
        after = new.get("oneOf")
        if not isinstance(after, list):
            return []
        before, own = self._branches(old, "oneOf")
        problems: list[str] = []
        matched: list[int] = []
        for i, branch in enumerate(before):
            where = f"{path}/oneOf/{i}" if own else path
            home = next(
                (j for j, c in enumerate(after) if self.proves(branch, c, f"{path}/oneOf/{j}")),
                None,
            )
            if home is None:
                target = after[i] if i < len(after) else after[0] if after else False
                found = self.problems(branch, target, f"{path}/oneOf/{min(i, len(after) - 1)}")
                problems += found or [f"oneOf: no later branch accepts all of {where}"]
                continue
            matched.append(home)
            # The document must match no other later branch: one that is an earlier
            # branch unchanged (the document matched only its own), or one disjoint
            # from the branch it came from.
            for j, other in enumerate(after):
                if j == home or self._disjoint(branch, other):
                    continue
                if own and any(self.same(b, other) for k, b in enumerate(before) if k != i):
                    continue
                problems.append(
                    f"oneOf: a document of {where} may also match branch {j} at "
                    f"{path}/oneOf/{j}; cannot prove compatibility"
                )
        if not problems and not (own and json_equal(before, after)):
            if own:
                what = (
                    "every earlier branch lies within one later branch, and the branches "
                    "added are disjoint from it"
                )
            else:
                what = (
                    f"the earlier schema lies within branch {matched[0]}, and the other "
                    "branches are disjoint from it"
                )
            self.rules.append(f"oneOf{'' if own else ' where there was none'}: {what}, at {path}")
        return problems

    def _not_problems(self, old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
        if "not" not in new:
            return []
        after = new["not"]
        if "not" in old:
            if self.same(old["not"], after):
                return []
            # Rejecting less: every document the new `not` matches, the old one matched.
            if not self.reversed().problems(after, old["not"], f"{path}/not"):
                self.rules.append(f"not narrowed: it matches only what it matched, at {path}")
                return []
        if self._disjoint(old, after):
            self.rules.append(f"not: matches no document of the earlier schema, at {path}")
            return []
        verb = "changed" if "not" in old else "added"
        return [f"not {verb} at {path}; cannot prove compatibility"]

    # -- dependencies ---------------------------------------------------------------------

    def _dependency_problems(
        self, old: dict[str, Any], new: dict[str, Any], path: str
    ) -> list[str]:
        problems: list[str] = []
        for key in DEPENDENCIES[self.new.legacy]:
            read = key in DEPENDENCIES[self.old.legacy]
            found = old.get(key)
            before: dict[str, Any] = found if read and isinstance(found, dict) else {}
            after = new.get(key, {})
            if not isinstance(after, dict):
                continue
            for name, rule in after.items():
                where = f"{path}/{key}/{escape(name)}"
                if name not in before:
                    problems.append(f"{key} entry added: {name} at {where}")
                elif isinstance(rule, list) or isinstance(before[name], list):
                    if not isinstance(rule, list) or not isinstance(before[name], list):
                        if not self.same(before[name], rule):
                            problems.append(f"{key} entry changed: {name} at {where}")
                        continue
                    more = [n for n in rule if not any(json_equal(n, m) for m in before[name])]
                    if more:
                        problems.append(
                            f"{key} entry requires more: {name} now also needs "
                            f"{', '.join(map(str, more))} at {where}"
                        )
                else:
                    problems += self.problems(before[name], rule, where)
            gone = [name for name in before if name not in after]
            if gone and not problems:
                self.rules.append(f"{key} entry removed: {', '.join(gone)} at {path}")
        return problems

    # -- disjointness: no document valid under both ---------------------------------------

    def _disjoint(self, old: Any, new: Any) -> bool:
        """Whether no document is valid under both ``old`` (old side) and ``new`` (new
        side), judged from ``type``, ``enum``/``const`` and a required property whose two
        schemas are disjoint (a tagged union). False when it cannot tell."""
        a, b = self.old.view(old), self.new.view(new)
        if a is False or b is False:
            return True
        if not isinstance(a, dict) or not isinstance(b, dict):
            return False
        types_a, types_b = types_of(a), types_of(b)
        if types_a is not None and types_b is not None and not overlap(types_a, types_b):
            return True
        values_a, values_b = allowed_values(a), allowed_values(b)
        if (
            values_a is not None
            and values_b is not None
            and not any(json_equal(x, y) for x in values_a for y in values_b)
        ):
            return True
        for values, types in ((values_a, types_b), (values_b, types_a)):
            if (
                values is not None
                and types is not None
                and not any(overlap(frozenset({json_type(v)}), types) for v in values)
            ):
                return True
        if frozenset({"object"}) in (types_a, types_b):
            shared = set(required_names(a)) & set(required_names(b))
            for name in sorted(shared):
                one, two = listed_properties(a).get(name), listed_properties(b).get(name)
                if one is not None and two is not None and self._disjoint(one, two):
                    return True
        return False

    # -- objects: required, properties, patternProperties, additionalProperties ----------

    def _object_problems(self, old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
        had = required_names(old)
        problems = [
            f"required property added: {path}/required/{escape(name)}"
            for name in required_names(new)
            if name not in had
        ]
        problems += count_problems(old, new, path, "minProperties", "maxProperties")
        problems += self._pattern_problems(old, new, path)
        names = dict.fromkeys([*listed_properties(old), *listed_properties(new)])
        for name in names:
            problems += self._property_problems(old, new, name, path)
        return problems + self._additional_problems(old, new, path)

    def _property_problems(
        self, old: dict[str, Any], new: dict[str, Any], name: str, path: str
    ) -> list[str]:
        """A name listed in either schema: each schema the new one applies to its value
        must accept everything one of the old one's schemas for it accepts."""
        before = constraints(old, name, certain=True)
        where = f"{path}/properties/{escape(name)}"
        old_patterns = pattern_properties(old)
        problems: list[str] = []
        for kind, pattern, after in constraints(new, name, certain=False):
            if kind == "pattern" and pattern in old_patterns:
                continue  # the same pattern matches the name in the old schema: see below
            at = f"{path}/patternProperties/{escape(pattern)}" if kind == "pattern" else where
            if any(self.proves(schema, after, at) for _, _, schema in before):
                if kind == "pattern" and name in listed_properties(old):
                    self.rules.append(
                        f"property moved into patternProperties: {name} is matched by "
                        f"{pattern!r}, whose schema accepts all it did, at {path}"
                    )
                continue
            first = before[0][2]
            found = self.problems(first, after, at)
            if found and name not in listed_properties(old) and is_open(first):
                # Old documents may carry this name with any value (Confluent's
                # PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL); close the old model to add freely.
                found = [f"property added to open content model at {where}"]
            elif found and name not in listed_properties(new) and after is False:
                found = [f"property removed from closed content model at {where}"]
            problems += found
        return problems

    def _pattern_problems(self, old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
        """The names no schema lists: under each new pattern, their value was valid under
        the old schema's pattern (the same one) or under any of the old schemas that
        could apply to an unlisted name."""
        before, after = pattern_properties(old), pattern_properties(new)
        unlisted = [old.get("additionalProperties", True), *before.values()]
        problems: list[str] = []
        for pattern, schema in after.items():
            where = f"{path}/patternProperties/{escape(pattern)}"
            if pattern in before:
                problems += self.problems(before[pattern], schema, where)
                continue
            failing = [u for u in unlisted if not self.proves(u, schema, where)]
            if failing:
                problems += self.problems(failing[0], schema, where)
            else:
                self.rules.append(
                    f"patternProperties added: {pattern!r} accepts all an unlisted name "
                    f"could carry before, at {path}"
                )
        return problems

    def _additional_problems(
        self, old: dict[str, Any], new: dict[str, Any], path: str
    ) -> list[str]:
        """Names neither listed nor matched in the new schema: before, their value met the
        old additionalProperties or an old pattern that the new schema dropped."""
        before = old.get("additionalProperties", True)
        after = new.get("additionalProperties", True)
        where = f"{path}/additionalProperties"
        found = self.problems(before, after, where)
        if found and (is_open(before) or after is False):
            found = [f"additionalProperties closed at {path}"]
        elif not found and before is not True and not self.same(before, after):
            self.rules.append(f"additionalProperties widened: accepts all it did, at {path}")
        kept = pattern_properties(new)
        for pattern, schema in pattern_properties(old).items():
            if pattern not in kept and not self.proves(schema, after, where):
                found += [
                    f"patternProperties {pattern!r} removed at {path}: {problem}"
                    for problem in self.problems(schema, after, where)
                ]
        return found

    # -- equivalence: for keywords that are only judged as "unchanged or not" ------------

    def same(self, old: Any, new: Any) -> bool:
        """Whether two schemas (``old`` in the old root, ``new`` in the new) are the same."""
        key = (id(old), id(new))
        if key in self._same_active:
            return True
        self._same_active[key] = (old, new)
        try:
            before, after = self.old.view(old), self.new.view(new)
            if isinstance(before, Unresolved) or isinstance(after, Unresolved):
                return before == after
            before = NOTHING if before is False else ANYTHING if before is True else before
            after = NOTHING if after is False else ANYTHING if after is True else after
            keys = set(before) - ANNOTATIONS
            if keys != set(after) - ANNOTATIONS:
                return False
            return all(self._same_keyword(k, before[k], after[k]) for k in keys)
        finally:
            del self._same_active[key]

    def _same_keyword(self, key: str, old: Any, new: Any) -> bool:
        if key in SCHEMA_LISTS and isinstance(old, list) and isinstance(new, list):
            return len(old) == len(new) and all(map(self.same, old, new))
        if key in SCHEMA_VALUED and not isinstance(old, list) and not isinstance(new, list):
            return self.same(old, new)
        if key in SCHEMA_MAPS and isinstance(old, dict) and isinstance(new, dict):
            return old.keys() == new.keys() and all(
                json_equal(old[k], new[k])
                if isinstance(new[k], list)
                else self.same(old[k], new[k])
                for k in new
            )
        if key in UNORDERED and isinstance(old, list) and isinstance(new, list):
            return same_members(old, new)
        return json_equal(old, new)

    def _same_member(self, key: str, old: dict[str, Any], new: dict[str, Any]) -> bool:
        if key not in old or key not in new:
            return key not in old and key not in new
        return self._same_keyword(key, old[key], new[key])
