"""The tags queries compiled to plain patterns (tagpatterns.py) and matched in C (_match.c).

The matcher stands in for tree-sitter's query engine on the subset our queries use; every test
here holds it to the engine's output on the same tree: the shipped queries through
test_native.py (native extractor against the Python loop, which runs the engine), and the
rules one by one below, with small queries written to exercise each.
"""

from __future__ import annotations

import pytest

from lsp_agent.index import languages, native, tagpatterns
from lsp_agent.index.native import grammar
from lsp_agent.index.tagpatterns import Unsupported, compile_patterns

pytestmark = pytest.mark.skipif(not native.available(), reason="the C extension is not built")


def engine_and_matcher(language: str, query: str) -> tuple[object, object]:
    from lsp_agent.index import _tags

    capsule = grammar(language)
    engine = _tags.Extractor(capsule, query.encode())
    matcher = _tags.Extractor(capsule, query.encode(), compile_patterns(query))
    assert not engine.uses_matcher and matcher.uses_matcher
    return engine, matcher


@pytest.mark.parametrize("language", sorted(languages.BY_NAME))
def test_every_shipped_query_compiles_to_the_engines_patterns(language: str) -> None:
    spec = languages.BY_NAME[language]
    patterns = compile_patterns(spec.query_path.read_text())
    assert len(patterns) == languages.load_query(language).pattern_count
    extractor = native.extractor(language)
    assert extractor is not None and extractor.uses_matcher


# (language, query, sources): each source's symbols must be the engine's, and at least one
# source must give some, so the rule is exercised rather than vacuously equal.
RULES = [
    # every child that matches is a match of its own
    ("python", "(argument_list (identifier) @name) @reference.call", [b"f(a, b, c)\n"]),
    # children in order, not necessarily adjacent; the second may not come first
    (
        "python",
        "(argument_list (identifier) (integer) @name) @reference.call",
        [b"f(a, 1, b, 2)\n", b"f(1, a)\n", b"f(1, 2, a, 3)\n"],
    ),
    # one child matches one slot: two slots need two children
    (
        "python",
        "(argument_list (identifier) (identifier) @name) @reference.call",
        [b"f(a)\n", b"f(a, 1)\n", b"f(a, b)\n"],
    ),
    # the anchor: the last named child, with anonymous tokens and comments after it
    (
        "python",
        "(argument_list (identifier) @name .) @reference.call",
        [b"f(a, b)\n", b"f(a, b,)\n", b"f(a, 1)\n", b"f(a, b  # c\n)\n", b"f(a)\n"],
    ),
    # the wildcard matches named nodes, not ERROR nodes
    ("python", "(argument_list (_) @name) @reference.call", [b"f(a, ??)\n", b"f(a, $b)\n"]),
    (
        "python",
        "(function_definition name: (identifier) @name body: (_)) @definition.function",
        [b"def f(): pass\n", b"def g(:\n  ?? )\n", b"def h(x):\n    return x\n"],
    ),
    # fields, also through the grammar's hidden wrapper nodes
    (
        "c",
        "(init_declarator declarator: (_) value: (identifier) @name) @reference.call",
        [b"int a = b, *c = d;\nint e = 1;\n"],
    ),
    # top-level alternation: each alternative a root of the same pattern
    (
        "c",
        "[(call_expression function: (identifier) @name) "
        "(preproc_def name: (identifier) @name)] @reference.call",
        [b"#define X 1\nint f(void) { return g(X); }\n"],
    ),
    # alternation in a child slot, with the capture after it
    (
        "python",
        "(call function: [(identifier) (attribute attribute: (identifier))] @name) @reference.call",
        [b"f(x)\na.b.c(y)\n(lambda: 0)()\n"],
    ),
    # definitions: the lowest pattern wins a node matched by two
    (
        "python",
        "(function_definition name: (identifier) @name) @definition.method\n"
        "(function_definition name: (identifier) @name) @definition.function\n"
        "(class_definition name: (identifier) @name) @definition.class",
        [b"class A:\n    def f(self): pass\n"],
    ),
    # MISSING nodes are matched by their type, as the engine does
    (
        "c",
        "(init_declarator value: (identifier) @name) @reference.call\n"
        "(binary_expression right: (identifier) @name) @reference.call",
        [b"int x = ;\nint f() { a = ; b + ; }\n"],
    ),
    # errors and recovery inside a large tree
    (
        "c",
        "(call_expression function: (identifier) @name) @reference.call\n"
        "(type_identifier) @name @reference.type",
        [b"int f( { g(1; h(2); } struct s *p = (T)q(r(;\n"],
    ),
]


@pytest.mark.parametrize(("language", "query", "sources"), RULES, ids=range(len(RULES)))
def test_the_matcher_gives_the_engines_symbols(language: str, query: str, sources: list) -> None:
    engine, matcher = engine_and_matcher(language, query)
    found = 0
    for source in sources:
        expected = engine.extract(source)
        assert matcher.extract(source) == expected, source
        found += len(expected[0]) + len(expected[1])
    assert found > 0


def test_the_rules_tell_what_they_claim() -> None:
    # Guards against a vacuous table: these outcomes are what each rule above is about.
    _, matcher = engine_and_matcher("python", "(argument_list (identifier) @name) @reference.call")
    assert [r[0] for r in matcher.extract(b"f(a, b, c)\n")[1]] == ["a", "b", "c"]
    last = "(argument_list (identifier) @name .) @reference.call"
    _, matcher = engine_and_matcher("python", last)
    assert [r[0] for r in matcher.extract(b"f(a, b)\n")[1]] == ["b"]
    assert matcher.extract(b"f(a, 1)\n")[1] == ()
    ordered = "(argument_list (identifier) (integer) @name) @reference.call"
    _, matcher = engine_and_matcher("python", ordered)
    assert [r[0] for r in matcher.extract(b"f(a, 1, b, 2)\n")[1]] == ["1", "2"]
    assert matcher.extract(b"f(1, a)\n")[1] == ()
    _, matcher = engine_and_matcher("python", "(argument_list (_) @name) @reference.call")
    assert [r[0] for r in matcher.extract(b"f(a, $b)\n")[1]] == ["a", "b"]
    two = "(argument_list (identifier) (identifier) @name) @reference.call"
    _, matcher = engine_and_matcher("python", two)
    assert matcher.extract(b"f(a)\n")[1] == ()


@pytest.mark.parametrize(
    "query",
    [
        '(function_definition name: (identifier) @name (#eq? @name "f")) @definition.function',
        "(block (expression_statement)* @name) @reference.call",
        '(call function: "print" @name) @reference.call',
        "(block . (expression_statement) @name) @reference.call",
        "(_ (identifier) @name) @reference.call",
        "(call function: (identifier) @name) @reference.call @other",
        "(call function: (identifier) @name arguments: (argument_list (identifier) @name))"
        " @reference.call",
        "(call function: [(identifier) @name (attribute)]) @reference.call",
        "(function_definition !name) @definition.function",
        "(call function: (identifier) @name)",
        "(call function: (identifier) @name",
    ],
)
def test_what_the_matcher_does_not_do_is_refused(query: str) -> None:
    with pytest.raises(Unsupported):
        compile_patterns(query)


def test_a_node_type_the_grammar_lacks_is_a_clear_error() -> None:
    from lsp_agent.index import _tags

    patterns = compile_patterns("(no_such_node name: (identifier) @name) @definition.function")
    with pytest.raises(ValueError, match="no node type no_such_node"):
        _tags.Extractor(grammar("python"), b"", patterns)
    patterns = compile_patterns("(call no_such_field: (identifier) @name) @reference.call")
    with pytest.raises(ValueError, match="no field no_such_field"):
        _tags.Extractor(grammar("python"), b"", patterns)
    with pytest.raises(TypeError):
        _tags.Extractor(grammar("python"), b"", (("reference.call", ("call",)),))


def test_a_query_outside_the_subset_keeps_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(source: str) -> tuple:
        raise Unsupported("say a predicate")

    monkeypatch.setattr(tagpatterns, "compile_patterns", refuse)
    native.extractor.cache_clear()
    try:
        extractor = native.extractor("python")
        assert extractor is not None and not extractor.uses_matcher
        symbols = extractor.extract(b"def f():\n    return g()\n")
        assert [d[0] for d in symbols[0]] == ["f"] and [r[0] for r in symbols[1]] == ["g"]
    finally:
        native.extractor.cache_clear()
