/*
 * The tags patterns matched against a tree directly (see tagpatterns.py for the subset).
 *
 * The query engine keeps a set of in-progress states per pattern and updates all of them at
 * every node; for our patterns, which are small trees without quantifiers, it is cheaper to
 * look up the patterns rooted at a node's type and match their children there. The rules are
 * the engine's (vendor/tree-sitter/src/query.c, ts_query_cursor__advance):
 * - a type matches by the node's public symbol, so aliases and MISSING nodes match too;
 * - the wildcard (_) matches a named node that is not an ERROR;
 * - a field matches the field the cursor reports, through hidden wrapper nodes; the same
 *   function the engine calls (ts_tree_cursor_current_status) says so, and whether a named
 *   sibling follows, for the anchor;
 * - child patterns match children in order, not necessarily adjacent, and every way they can
 *   match is a match (the engine drops a state only when another's captures contain it; ours
 *   all bind the same two captures once).
 */
#include "_match.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "language.h"
#include "length.h"
#include "subtree.h"
#include "tree.h"
#include "tree_cursor.h"

#define MAX_DEPTH 16

typedef struct PatternNode {
    TSSymbol symbol; /* 0: the wildcard */
    TSFieldId field; /* 0: any */
    bool captures_name, captures_role, last;
    uint32_t slot_count;
    struct Slot *slots;
} PatternNode;

typedef struct Slot {
    uint32_t alt_count;
    PatternNode *alts;
} Slot;

typedef struct {
    uint32_t pattern;
    const PatternNode *node;
} Root;

struct Matcher {
    uint32_t pattern_count;
    PyObject **roles; /* str per pattern */
    PatternNode **pattern_roots;
    uint32_t *pattern_root_counts;
    uint32_t symbol_count;
    uint32_t *first_root; /* by symbol, symbol_count + 1 entries into roots */
    Root *roots;
};

typedef struct {
    TSNode node;
    TSFieldId field;
    bool later_named; /* a named sibling follows */
} Child;

typedef struct Frame {
    const PatternNode *pattern;
    size_t first, count; /* the node's children in the context's buffer */
    const struct Frame *up;
    uint32_t up_slot; /* the slot of up's pattern that this node matched, at child up_index */
    size_t up_index;
} Frame;

typedef struct {
    TSNode name, role;
    bool has_name, has_role;
} Binding;

typedef struct {
    Child *children;
    size_t size, capacity;
    TSTreeCursor cursor;
    uint32_t pattern;
    MatchSink sink;
    void *context;
    int failed;
} Walk;

/* ---- building ---- */

static void free_node(PatternNode *node) {
    for (uint32_t i = 0; i < node->slot_count; ++i) {
        for (uint32_t k = 0; k < node->slots[i].alt_count; ++k) {
            free_node(&node->slots[i].alts[k]);
        }
        PyMem_Free(node->slots[i].alts);
    }
    PyMem_Free(node->slots);
}

static int build_node(const TSLanguage *language, PyObject *spec, PatternNode *out, int depth);

static int build_alts(const TSLanguage *language, PyObject *alts, Slot *out, int depth) {
    if (!PyTuple_Check(alts) || PyTuple_GET_SIZE(alts) == 0) {
        PyErr_SetString(PyExc_TypeError, "a slot is a non-empty tuple of pattern nodes");
        return -1;
    }
    out->alt_count = (uint32_t)PyTuple_GET_SIZE(alts);
    out->alts = PyMem_Calloc(out->alt_count, sizeof(PatternNode));
    if (out->alts == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (uint32_t k = 0; k < out->alt_count; ++k) {
        if (build_node(language, PyTuple_GET_ITEM(alts, k), &out->alts[k], depth) < 0) {
            return -1;
        }
    }
    return 0;
}

static int build_node(const TSLanguage *language, PyObject *spec, PatternNode *out, int depth) {
    const char *type, *field;
    Py_ssize_t type_length, field_length;
    int captures_name, captures_role, last;
    PyObject *slots;
    if (depth > MAX_DEPTH) {
        PyErr_SetString(PyExc_ValueError, "pattern nested too deep");
        return -1;
    }
    if (!PyTuple_Check(spec)) {
        PyErr_SetString(PyExc_TypeError, "a pattern node is a tuple");
        return -1;
    }
    if (!PyArg_ParseTuple(spec, "z#z#pppO!:pattern node", &type, &type_length, &field,
                          &field_length, &captures_name, &captures_role, &last, &PyTuple_Type,
                          &slots)) {
        return -1;
    }
    out->captures_name = captures_name;
    out->captures_role = captures_role;
    out->last = last;
    if (type != NULL) {
        out->symbol = ts_language_symbol_for_name(language, type, (uint32_t)type_length, true);
        if (out->symbol == 0) {
            PyErr_Format(PyExc_ValueError, "no node type %s in this grammar", type);
            return -1;
        }
        if (ts_language_symbol_type(language, out->symbol) == TSSymbolTypeSupertype) {
            /* the engine matches a supertype by its subtypes; the matcher does not */
            PyErr_Format(PyExc_ValueError, "%s is a supertype", type);
            return -1;
        }
    }
    if (field != NULL) {
        out->field = ts_language_field_id_for_name(language, field, (uint32_t)field_length);
        if (out->field == 0) {
            PyErr_Format(PyExc_ValueError, "no field %s in this grammar", field);
            return -1;
        }
    }
    out->slot_count = (uint32_t)PyTuple_GET_SIZE(slots);
    if (out->slot_count == 0) {
        return 0;
    }
    out->slots = PyMem_Calloc(out->slot_count, sizeof(Slot));
    if (out->slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (uint32_t i = 0; i < out->slot_count; ++i) {
        if (build_alts(language, PyTuple_GET_ITEM(slots, i), &out->slots[i], depth + 1) < 0) {
            return -1;
        }
    }
    return 0;
}

void matcher_free(Matcher *matcher) {
    if (matcher == NULL) {
        return;
    }
    for (uint32_t p = 0; p < matcher->pattern_count; ++p) {
        if (matcher->roles != NULL) {
            Py_XDECREF(matcher->roles[p]);
        }
        if (matcher->pattern_roots != NULL && matcher->pattern_roots[p] != NULL) {
            for (uint32_t k = 0; k < matcher->pattern_root_counts[p]; ++k) {
                free_node(&matcher->pattern_roots[p][k]);
            }
            PyMem_Free(matcher->pattern_roots[p]);
        }
    }
    PyMem_Free(matcher->roles);
    PyMem_Free(matcher->pattern_roots);
    PyMem_Free(matcher->pattern_root_counts);
    PyMem_Free(matcher->first_root);
    PyMem_Free(matcher->roots);
    PyMem_Free(matcher);
}

static int compare_roots(const void *a, const void *b) {
    const Root *x = a, *y = b;
    if (x->node->symbol != y->node->symbol) {
        return x->node->symbol < y->node->symbol ? -1 : 1;
    }
    if (x->pattern != y->pattern) {
        return x->pattern < y->pattern ? -1 : 1;
    }
    return x->node < y->node ? -1 : (x->node > y->node);
}

Matcher *matcher_new(const TSLanguage *language, PyObject *patterns) {
    if (!PyTuple_Check(patterns)) {
        PyErr_SetString(PyExc_TypeError, "patterns must be a tuple");
        return NULL;
    }
    Matcher *m = PyMem_Calloc(1, sizeof(Matcher));
    if (m == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    m->pattern_count = (uint32_t)PyTuple_GET_SIZE(patterns);
    uint32_t slots = m->pattern_count ? m->pattern_count : 1;
    m->roles = PyMem_Calloc(slots, sizeof(PyObject *));
    m->pattern_roots = PyMem_Calloc(slots, sizeof(PatternNode *));
    m->pattern_root_counts = PyMem_Calloc(slots, sizeof(uint32_t));
    if (m->roles == NULL || m->pattern_roots == NULL || m->pattern_root_counts == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    size_t root_total = 0;
    for (uint32_t p = 0; p < m->pattern_count; ++p) {
        PyObject *role, *alts, *pattern = PyTuple_GET_ITEM(patterns, p);
        if (!PyTuple_Check(pattern)) {
            PyErr_SetString(PyExc_TypeError, "a pattern is a (role, roots) tuple");
            goto fail;
        }
        if (!PyArg_ParseTuple(pattern, "UO!:pattern", &role, &PyTuple_Type,
                              &alts)) {
            goto fail;
        }
        Py_INCREF(role);
        m->roles[p] = role;
        Slot roots;
        if (build_alts(language, alts, &roots, 0) < 0) {
            m->pattern_roots[p] = roots.alts;
            m->pattern_root_counts[p] = roots.alt_count;
            goto fail;
        }
        m->pattern_roots[p] = roots.alts;
        m->pattern_root_counts[p] = roots.alt_count;
        for (uint32_t k = 0; k < roots.alt_count; ++k) {
            if (roots.alts[k].symbol == 0 || roots.alts[k].field != 0) {
                PyErr_SetString(PyExc_ValueError, "a pattern's root needs a node type");
                goto fail;
            }
        }
        root_total += roots.alt_count;
    }
    m->symbol_count = ts_language_symbol_count(language);
    m->first_root = PyMem_Calloc(m->symbol_count + 1, sizeof(uint32_t));
    m->roots = PyMem_Calloc(root_total ? root_total : 1, sizeof(Root));
    if (m->first_root == NULL || m->roots == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    size_t n = 0;
    for (uint32_t p = 0; p < m->pattern_count; ++p) {
        for (uint32_t k = 0; k < m->pattern_root_counts[p]; ++k) {
            m->roots[n++] = (Root){.pattern = p, .node = &m->pattern_roots[p][k]};
        }
    }
    qsort(m->roots, n, sizeof(Root), compare_roots);
    /* first_root[s] .. first_root[s + 1]: the roots for symbol s */
    size_t r = 0;
    for (uint32_t s = 0; s <= m->symbol_count; ++s) {
        while (r < n && m->roots[r].node->symbol < s) {
            ++r;
        }
        m->first_root[s] = (uint32_t)r;
    }
    return m;
fail:
    matcher_free(m);
    return NULL;
}

uint32_t matcher_pattern_count(const Matcher *matcher) { return matcher->pattern_count; }

const char *matcher_role(const Matcher *matcher, uint32_t pattern, Py_ssize_t *length) {
    return PyUnicode_AsUTF8AndSize(matcher->roles[pattern], length);
}

/* ---- matching ---- */

/* Appends node's children to the buffer; false (exception set) when out of memory. */
static bool gather(Walk *walk, TSNode node) {
    ts_tree_cursor_reset(&walk->cursor, node);
    if (!ts_tree_cursor_goto_first_child(&walk->cursor)) {
        return true;
    }
    do {
        if (walk->size == walk->capacity) {
            size_t capacity = walk->capacity ? 2 * walk->capacity : 64;
            Child *bigger = realloc(walk->children, capacity * sizeof(Child));
            if (bigger == NULL) {
                PyErr_NoMemory();
                return false;
            }
            walk->children = bigger;
            walk->capacity = capacity;
        }
        Child *child = &walk->children[walk->size++];
        bool later, can_have_later_field;
        TSSymbol supertypes[8];
        unsigned supertype_count = 8;
        child->node = ts_tree_cursor_current_node(&walk->cursor);
        ts_tree_cursor_current_status(&walk->cursor, &child->field, &later, &child->later_named,
                                      &can_have_later_field, supertypes, &supertype_count);
    } while (ts_tree_cursor_goto_next_sibling(&walk->cursor));
    return true;
}

static void match_slots(Walk *walk, const Frame *frame, uint32_t slot, size_t start,
                        Binding binding);

/* node matched its pattern node (with all its children): go on with the parent's next slot,
 * or report the match at the root. */
static void matched(Walk *walk, const Frame *up, uint32_t up_slot, size_t up_index,
                    Binding binding) {
    if (up != NULL) {
        match_slots(walk, up, up_slot + 1, up_index + 1, binding);
    } else if (binding.has_name && binding.has_role &&
               walk->sink(walk->context, walk->pattern, binding.name, binding.role) < 0) {
        walk->failed = 1;
    }
}

static void try_node(Walk *walk, const PatternNode *pattern, TSNode node, Binding binding,
                     const Frame *up, uint32_t up_slot, size_t up_index) {
    if (walk->failed) {
        return;
    }
    TSSymbol symbol = ts_node_symbol(node);
    if (pattern->symbol != 0 ? symbol != pattern->symbol
                             : !ts_node_is_named(node) || symbol == ts_builtin_sym_error) {
        return;
    }
    if (pattern->captures_name && !binding.has_name) {
        binding.name = node;
        binding.has_name = true;
    }
    if (pattern->captures_role && !binding.has_role) {
        binding.role = node;
        binding.has_role = true;
    }
    if (pattern->slot_count == 0) {
        matched(walk, up, up_slot, up_index, binding);
        return;
    }
    size_t first = walk->size;
    if (!gather(walk, node)) {
        walk->failed = 1;
        return;
    }
    Frame frame = {pattern, first, walk->size - first, up, up_slot, up_index};
    match_slots(walk, &frame, 0, 0, binding);
    walk->size = first;
}

static void match_slots(Walk *walk, const Frame *frame, uint32_t slot, size_t start,
                        Binding binding) {
    if (slot == frame->pattern->slot_count) {
        matched(walk, frame->up, frame->up_slot, frame->up_index, binding);
        return;
    }
    const Slot *alternatives = &frame->pattern->slots[slot];
    for (size_t j = start; j < frame->count && !walk->failed; ++j) {
        /* a copy: deeper matches grow (and may move) the buffer */
        Child child = walk->children[frame->first + j];
        for (uint32_t k = 0; k < alternatives->alt_count; ++k) {
            const PatternNode *alt = &alternatives->alts[k];
            if ((alt->field != 0 && alt->field != child.field) ||
                (alt->last && child.later_named)) {
                continue;
            }
            try_node(walk, alt, child.node, binding, frame, slot, j);
        }
    }
}

/* A hidden or visible node whose children the walk is inside. */
typedef struct {
    Subtree parent;
    const TSSymbol *aliases;
    uint32_t next, structural; /* the next child, and its index among the non-extra ones */
    Length position;           /* where the next child starts, its padding skipped */
} Level;

static void try_roots(Matcher *matcher, Walk *walk, const TSTree *tree, const Subtree *subtree,
                      Length position, TSSymbol alias) {
    TSSymbol symbol = ts_language_public_symbol(
        tree->language, alias != 0 ? alias : ts_subtree_symbol(*subtree));
    if (symbol >= matcher->symbol_count) { /* ERROR */
        return;
    }
    uint32_t first = matcher->first_root[symbol], end = matcher->first_root[symbol + 1];
    if (first == end) {
        return;
    }
    TSNode node = ts_node_new(tree, subtree, position, alias);
    const Binding none = {0};
    for (uint32_t r = first; r < end && !walk->failed; ++r) {
        walk->pattern = matcher->roots[r].pattern;
        try_node(walk, matcher->roots[r].node, node, none, NULL, 0, 0);
    }
}

/* Every visible node in document order, as a tree cursor visits them, but reading the subtrees
 * directly: the cursor's bookkeeping (descendant indexes, a stack of entries, a node made at
 * every step) cost as much as the matching itself. The visibility and alias rules are
 * ts_tree_cursor_child_iterator_next's. */
int matcher_run(Matcher *matcher, TSNode root, MatchSink sink, void *context) {
    const TSTree *tree = root.tree;
    Walk walk = {.sink = sink, .context = context, .cursor = ts_tree_cursor_new(root)};
    Level *levels = NULL;
    size_t depth = 0, capacity = 0;
    const Subtree *top = (const Subtree *)root.id;
    try_roots(matcher, &walk, tree, top, ts_subtree_padding(*top), 0);
    Subtree next_parent = *top;
    Length next_position = ts_subtree_padding(*top);
    bool descend = ts_subtree_child_count(*top) > 0;
    while (!walk.failed) {
        if (descend) {
            if (depth == capacity) {
                size_t bigger_capacity = capacity ? 2 * capacity : 64;
                Level *bigger = realloc(levels, bigger_capacity * sizeof(Level));
                if (bigger == NULL) {
                    PyErr_NoMemory();
                    walk.failed = 1;
                    break;
                }
                levels = bigger;
                capacity = bigger_capacity;
            }
            levels[depth++] = (Level){
                .parent = next_parent,
                .aliases =
                    ts_language_alias_sequence(tree->language, next_parent.ptr->production_id),
                .position = next_position,
            };
            descend = false;
        }
        if (depth == 0) {
            break;
        }
        Level *level = &levels[depth - 1];
        if (level->next == level->parent.ptr->child_count) {
            --depth;
            continue;
        }
        const Subtree *children = ts_subtree_children(level->parent);
        const Subtree *child = &children[level->next];
        TSSymbol alias = 0;
        bool visible = ts_subtree_visible(*child);
        if (!ts_subtree_extra(*child)) {
            if (level->aliases != NULL) {
                alias = level->aliases[level->structural];
                visible |= alias != 0;
            }
            level->structural++;
        }
        Length position = level->position;
        level->next++;
        level->position = length_add(level->position, ts_subtree_size(*child));
        if (level->next < level->parent.ptr->child_count) {
            level->position = length_add(level->position, ts_subtree_padding(children[level->next]));
        }
        if (visible) {
            try_roots(matcher, &walk, tree, child, position, alias);
        }
        if (ts_subtree_child_count(*child) > 0) { /* a hidden node's children are its parent's */
            next_parent = *child;
            next_position = position;
            descend = true;
        }
    }
    free(levels);
    ts_tree_cursor_delete(&walk.cursor);
    free(walk.children);
    return walk.failed ? -1 : 0;
}
