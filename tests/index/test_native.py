"""The C extractor (index/_tags.c) against symbols.extract_raw's Python loop, its specification.

Passing a tree to extract_raw takes the Python path; bytes alone take the C one. Both must give
the same tuples, to the character, on every file here and on the standard library.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

from lsp_agent.index import languages, native
from lsp_agent.index.symbols import extract_raw

LANGS = Path(__file__).resolve().parent.parent / "fixtures" / "index" / "langs"
STDLIB = Path(sysconfig.get_paths()["stdlib"])


def python_loop(language: str, data: bytes) -> tuple:
    return extract_raw(language, data, tree=languages.new_parser(language).parse(data))


def both(language: str, data: bytes) -> tuple[tuple, tuple]:
    extractor = native.extractor(language)
    assert extractor is not None
    return extractor.extract(data), python_loop(language, data)


def test_the_extension_is_built_and_used() -> None:
    # CI installs with a C compiler: a failed build must not pass as the Python fallback.
    assert native.available()
    data = b"def f():\n    return g()\n"
    assert extract_raw("python", data) == native.extractor("python").extract(data)


@pytest.mark.parametrize("name", sorted(p.name for p in LANGS.iterdir()))
def test_fixtures_match_the_python_loop(name: str) -> None:
    language = languages.language_for_path(name)
    assert language is not None
    made, expected = both(language, (LANGS / name).read_bytes())
    assert made == expected
    assert made[0] and made[1]


def test_a_stdlib_sample_matches_the_python_loop() -> None:
    files = sorted(p for p in STDLIB.rglob("*.py") if "site-packages" not in p.parts)
    sample = files[::7]
    assert len(sample) > 150
    definitions = 0
    for path in sample:
        made, expected = both("python", path.read_bytes())
        assert made == expected, path
        definitions += len(made[0])
    assert definitions > 5000


EDGE_CASES = {
    "python": [
        # classes in classes, methods, nested functions: scopes and the method rule
        b"class A:\n    class B:\n        def m(self):\n            def inner():\n"
        b"                return A()\n            return inner\n    def n(self): pass\n",
        # syntax errors, one inside another, and a MISSING token
        b"def broken(:\n    x = (1,\nclass C(:\n  pass\nprint(((\n",
        b"x = 1 +\n",
        # bytes that are not UTF-8, in a name's line and in a string
        b"def caf\xc3\xa9(s='\xff\xfe'):\n    return caf\xc3\xa9()\n",
        b"# \xff\xfe\xfd\ndef f(): pass\n",
        # a signature longer than MAX_SIGNATURE, and a line longer than 4 * MAX_SIGNATURE
        b"def long(" + b", ".join(b"a%d" % i for i in range(300)) + b"): pass\n",
        b"x = [" + b"1, " * 2000 + b"]\ndef after(): pass\n",
        # a multi-byte character cut at the 800-byte limit, then trailing spaces
        b"def f(): return '" + "é".encode() * 500 + b"'\n",
        b"def g():    \t\n    pass\n",
        b"\r\ndef crlf():\r\n    return crlf()\r\n",
        b"",
        b"\n\n\n",
        b"\xef\xbb\xbfdef bom(): pass\n",
        # two errors side by side (the count walks siblings), one nested (counted once)
        b"def f(:\n  pass\n\ndef g(:\n  pass\nx = )\ny = )\n",
    ],
    "c": [
        b"struct s { int a; struct t { int b; } inner; };\ntypedef struct s s_t;\n"
        b"#define M(x) ((x) + 1)\nint f(int x) { return g(M(x)); }\n",
        b"int broken( { return ; \nstatic void h(void) { f(1, ; }\n",
        b"enum e { A, B = A + 1 };\nunion u { int i; float f; };\n",
    ],
    "cpp": [
        b"namespace n { class K { public: void m(); int x; }; void K::m() { x = 1; } }\n"
        b"template <typename T> struct S { T get() const { return T(); } };\n",
        b"class Broken { void f( { } ;\n",
    ],
    "javascript": [
        b"class A { m() { return new B(); } static s() {} }\nfunction f() { A.s(); }\n"
        b"const g = () => f();\n",
        b"function ( { return }\n",
    ],
    "typescript": [
        b"interface I { m(): void }\nclass C implements I { m(): void {} }\n"
        b"type T = I | C;\nfunction f(x: T): C { return new C(); }\n",
    ],
    "tsx": [b"function App() { return <div onClick={() => go()}>hi</div>; }\n"],
    "go": [
        b"package p\ntype S struct{ x int }\nfunc (s *S) M() int { return f(s.x) }\n"
        b"func f(x int) int { return x }\n",
        b"package p\nfunc broken( {\n",
    ],
    "rust": [
        b"struct S { x: i32 }\nimpl S { fn m(&self) -> i32 { f(self.x) } }\n"
        b"trait T { fn t(&self); }\nfn f(x: i32) -> i32 { x }\nmacro_rules! m { () => {} }\n",
        b"fn broken( {\n",
    ],
    "java": [
        b"class A { class B { void m() { new A(); } } interface I { void i(); }\n"
        b"  enum E { X } void n() { m(); } }\n",
        b"class Broken { void f( { }\n",
    ],
}


@pytest.mark.parametrize(
    ("language", "index"),
    [(language, i) for language, cases in EDGE_CASES.items() for i in range(len(cases))],
)
def test_edge_cases_match_the_python_loop(language: str, index: int) -> None:
    made, expected = both(language, EDGE_CASES[language][index])
    assert made == expected


def test_edge_cases_exercise_what_they_claim() -> None:
    # The differential tests above prove nothing about a rule no case reaches.
    nested = native.extractor("python").extract(EDGE_CASES["python"][0])
    assert nested[0][3][:2] == ("inner", "function") and nested[0][3][7] == "A.B.m"
    assert nested[0][2][1] == "method"
    assert native.extractor("python").extract(EDGE_CASES["python"][-1])[2] == 3
    long_signature = native.extractor("python").extract(EDGE_CASES["python"][5])[0][0][6]
    assert len(long_signature) == 200
    cut = native.extractor("python").extract(EDGE_CASES["python"][7])[0][0][6]
    assert cut.startswith("def f(): return '") and len(cut) == 200
    not_utf8 = native.extractor("python").extract(EDGE_CASES["python"][3])[0][0]
    assert not_utf8[0] == "café" and "\ufffd" in not_utf8[6]


def test_a_runtime_other_than_the_vendored_one_takes_the_python_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(native.tree_sitter, "__version__", "0.25.0")
    native.available.cache_clear()
    native.extractor.cache_clear()
    try:
        assert not native.available()
        assert native.extractor("python") is None
        data = b"def f():\n    return g()\n"
        assert extract_raw("python", data) == python_loop("python", data)
    finally:
        monkeypatch.undo()
        native.available.cache_clear()
        native.extractor.cache_clear()
    assert native.available()


def test_bad_arguments_are_clear_errors() -> None:
    from lsp_agent.index import _tags

    with pytest.raises(TypeError):
        native.extractor("python").extract("not bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tags query"):
        _tags.Extractor(_grammar("python"), b"(nope")
    with pytest.raises(ValueError):
        _tags.Extractor(object(), b"")


def _grammar(language: str) -> object:
    import importlib

    spec = languages.BY_NAME[language]
    return getattr(importlib.import_module(spec.module), spec.loader)()
