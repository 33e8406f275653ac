"""The name table's packed form: names in string order with each id's place, for the graph."""

from __future__ import annotations

import marshal

import pytest

from lsp_agent.index import symtab
from lsp_agent.index.symtab import NameTable

# Lone surrogates, non-ASCII, case, underscores and a prefix of another name: string order is
# code point order, and every str must come back as it went in.
NAMES = ["zeta", "Alpha", "alpha", "_private", "al", "é_accent", "\ud800lone", "ALPHA", "a" * 300]


def assert_ordered(table: NameTable) -> None:
    by_string, positions = table.order()
    names = table.names
    assert by_string == tuple(sorted(names))
    assert [by_string[p] for p in positions] == names


def test_a_packed_table_gives_its_string_order_without_building_the_list_by_id() -> None:
    table = NameTable()
    table.ids_of(NAMES)
    packed = table.pack()
    adopted = NameTable(packed)
    by_string, positions = adopted.order()
    assert adopted._names is None  # the graph's view, read straight from the bytes
    assert by_string == tuple(sorted(NAMES))
    assert [by_string[p] for p in positions] == NAMES
    assert adopted.names == NAMES  # and the list by id from the same bytes
    assert NameTable(adopted.packed()).names == NAMES


def test_names_added_after_the_order_are_merged_into_it() -> None:
    table = NameTable(NameTable(None).pack())
    table.ids_of(NAMES)
    assert_ordered(table)
    table.ids_of(["aa", "zz", "", "Alpha", "middle"])  # a few: merged, one already known
    assert_ordered(table)
    table.ids_of([f"n{i:05}" for i in range(symtab.MERGE_LIMIT + 1)])  # many: sorted again
    assert_ordered(table)
    again = NameTable(table.packed())
    assert again.names == table.names
    assert_ordered(again)


def test_a_name_holding_a_nul_is_packed_as_a_list() -> None:
    table = NameTable()
    table.ids_of(["a\0b", "c", "a"])
    packed = table.pack()
    assert marshal.loads(packed) == ["a\0b", "c", "a"]
    adopted = NameTable(packed)
    assert_ordered(adopted)
    assert adopted.names == ["a\0b", "c", "a"]


def test_an_empty_table_packs_and_orders() -> None:
    packed = NameTable().pack()
    assert NameTable(packed).order() == ((), symtab.array("i"))
    assert NameTable(packed).names == []


def test_ids_are_given_in_order_of_first_use_and_a_repeated_name_once() -> None:
    table = NameTable()
    assert list(table.ids_of(["b", "a"])) == [0, 1]
    # known, new, new twice, known, from a generator (not a sequence)
    assert list(table.ids_of(iter(["a", "c", "d", "c", "b"]))) == [1, 2, 3, 2, 0]
    assert table.names == ["b", "a", "c", "d"]
    assert list(table.ids_of(["d", "a"])) == [3, 1]
    assert len(table) == 4


def test_a_small_table_is_ordered_without_importing_numpy() -> None:
    # numpy's import (~0.1 s) outweighs the order of a small table: a cold `lsp-agent index`
    # of a small tree must not pay it.
    import subprocess
    import sys

    script = (
        "import sys\nfrom lsp_agent.index.symtab import NameTable\nt = NameTable()\n"
        "t.ids_of([f'n{i}' for i in range(5000, 0, -1)])\nby_string, positions = t.order()\n"
        "assert by_string == tuple(sorted(t.names)) and by_string[positions[0]] == 'n5000'\n"
        "t.pack()\nprint('numpy' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_a_files_names_are_read_from_the_string_order_without_the_list_by_id() -> None:
    table = NameTable()
    table.ids_of(NAMES)
    adopted = NameTable(table.pack())
    adopted.order()  # what building the reference graph leaves
    assert adopted.names_of([2, 0, 8]) == [NAMES[2], NAMES[0], NAMES[8]]
    hint = {name: i for i, name in enumerate(NAMES[:3])}
    assert list(adopted.ids_of(NAMES[:3][::-1], hint)) == [2, 1, 0]  # nothing new: no scan
    assert adopted._names is None  # an edit's hint and its ids cost a few lookups
    adopted.ids_of(["brand_new"], hint)
    assert adopted.names_of([len(NAMES), 1]) == ["brand_new", NAMES[1]]


def test_packing_frees_the_lookup_dict_without_waiting_for_the_collector() -> None:
    import gc
    import sys

    table = NameTable()
    name = "".join(["only", "_here"])  # a string no one else holds
    table.ids_of([name, "other"])
    held = sys.getrefcount(name)
    gc.disable()
    try:
        table.pack()
        # The dict's factory is its own bound __len__, a cycle: unbroken, the dict and its
        # keys outlive the pack until a full collection.
        assert sys.getrefcount(name) == held - 2  # the table's list and the dict's key
    finally:
        gc.enable()


def test_the_order_is_the_same_made_from_ids_or_from_the_dict() -> None:
    names = [*NAMES, *(f"n{i}" for i in range(symtab.NUMPY_ORDER_MIN, -1, -1))]  # numpy's path
    ids = {name: i for i, name in enumerate(names)}
    by_key = symtab._sorted_order(names)
    by_dict = symtab._sorted_order(names, ids)
    assert by_key == by_dict
    assert by_dict[0] == tuple(sorted(names))
    small = symtab._sorted_order(NAMES, {name: i for i, name in enumerate(NAMES)})
    assert small == symtab._sorted_order(NAMES)
    assert [small[0][p] for p in small[1]] == NAMES


def test_a_table_packed_in_pieces_is_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    # A server rewriting the cache's snapshot packs its unpacked table piece by piece (short
    # calls, so its edits are not held up): the pieces join to what one call makes.
    table = NameTable()
    table.ids_of(NAMES)
    whole = table.packed()
    monkeypatch.setattr(symtab, "ENCODE_PIECE", 2)
    pieces = table.packed_pieces()
    assert len(pieces) > 4 and b"".join(pieces) == whole == table.packed()
    assert NameTable(b"".join(pieces)).names == NAMES
    with_nul = NameTable()
    with_nul.ids_of(["c", "a", "b", "x\0y", "d"])  # the NUL in the last piece but one
    assert marshal.loads(b"".join(with_nul.packed_pieces())) == ["c", "a", "b", "x\0y", "d"]
    packed = NameTable(whole)
    assert packed.packed_pieces() == [whole]  # held packed: the bytes as they are


def test_the_string_order_is_left_out_of_full_collections() -> None:
    # The server freezes the index once it is built; what it makes after (the order the graph
    # unpacks: 2.3 M names on the kernel) is walked by every full collection if it is a list.
    import gc

    table = NameTable()
    table.ids_of(NAMES)
    adopted = NameTable(table.pack())
    for by_string in (adopted.order()[0], symtab._sorted_order(list(NAMES))[0]):
        gc.collect()
        assert not gc.is_tracked(by_string)
    added = NameTable(table.packed())
    added.order()
    added.ids_of(["new_name"])
    merged = added.order()[0]  # names added since: merged into a new order
    gc.collect()
    assert "new_name" in merged and not gc.is_tracked(merged)
