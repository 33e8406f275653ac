/*
 * lsp_agent.index._tags: symbols.extract_raw's whole-file path in C.
 *
 * A cold index spends as long in extract_raw's per-match Python loop (and in the Node objects
 * py-tree-sitter makes for every capture) as in the tags query itself. This module parses,
 * runs the query and builds the same RawSymbols tuples without a Python object per capture.
 * It is linked against the tree-sitter runtime vendored in vendor/tree-sitter (py-tree-sitter's
 * copy hides its symbols); grammars still come from the per-language wheels, as the capsule
 * their language() returns.
 *
 * The tags query's matches come from the query engine, or, when tagpatterns.py could compile
 * the query to its subset, from the pattern matcher in _match.c, which is cheaper.
 *
 * symbols.extract_raw is the specification: every rule here is a line there, and the tests
 * compare both on the stdlib, the fixtures and C sources. Holds the GIL throughout: one
 * Extractor's parser and cursor are not shareable between threads.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_match.h"
#include "tree_sitter/api.h"

#define MAX_SIGNATURE 200 /* characters, as symbols.MAX_SIGNATURE */

typedef struct {
    bool known;       /* role computed (from the pattern's first match) */
    bool valid;       /* a definition.* or reference.* capture was found */
    bool is_definition;
    bool is_type;     /* kind == "type" */
    bool is_function; /* kind == "function": becomes "method" inside a container */
    bool is_container;
    bool not_scope;
    uint32_t key_capture;
    PyObject *kind; /* str, owned */
    const char *kind_utf8;
} Role;

typedef struct {
    PyObject_HEAD
    TSParser *parser;
    TSQuery *query;         /* NULL when the matcher runs the patterns */
    TSQueryCursor *cursor;
    Matcher *matcher;       /* NULL when the query engine does */
    uint32_t name_capture; /* UINT32_MAX when the query has no @name */
    uint32_t pattern_count;
    Role *roles;
    PyObject *method_kind; /* "method" */
    PyObject *dot;         /* "." */
} Extractor;

typedef struct {
    uint32_t start, end; /* the definition node's bytes */
    uint32_t pattern;
    uint32_t seq; /* first insertion, for a stable sort */
    TSNode node, name;
    const Role *role;
} Found;

typedef struct {
    uint32_t start; /* the name's start byte */
    uint32_t seq;
    TSNode name;
    const Role *role;
} RawRef;

static const char *const CONTAINERS[] = {"class", "struct", "interface", "impl", "trait", NULL};
static const char *const NOT_SCOPES[] = {"type", "constant", "variable", "field", "macro", NULL};

static bool in_list(const char *kind, const char *const *list) {
    for (; *list != NULL; ++list) {
        if (strcmp(kind, *list) == 0) {
            return true;
        }
    }
    return false;
}

static void extractor_dealloc(Extractor *self) {
    if (self->roles != NULL) {
        for (uint32_t i = 0; i < self->pattern_count; ++i) {
            Py_XDECREF(self->roles[i].kind);
        }
        PyMem_Free(self->roles);
    }
    if (self->cursor != NULL) {
        ts_query_cursor_delete(self->cursor);
    }
    if (self->query != NULL) {
        ts_query_delete(self->query);
    }
    matcher_free(self->matcher);
    if (self->parser != NULL) {
        ts_parser_delete(self->parser);
    }
    Py_XDECREF(self->method_kind);
    Py_XDECREF(self->dot);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static const char *QUERY_ERRORS[] = {"none", "syntax", "node type", "field", "capture",
                                     "structure", "language"};

static int set_role(Role *role, const char *name, Py_ssize_t length, uint32_t key_capture);

static int extractor_init(Extractor *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"language", "query", "patterns", NULL};
    PyObject *capsule, *patterns = Py_None;
    const char *source;
    Py_ssize_t length;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Os#|O:Extractor", keywords, &capsule, &source,
                                     &length, &patterns)) {
        return -1;
    }
    const TSLanguage *language = PyCapsule_GetPointer(capsule, "tree_sitter.Language");
    if (language == NULL) {
        return -1;
    }
    uint32_t abi = ts_language_abi_version(language);
    if (abi < TREE_SITTER_MIN_COMPATIBLE_LANGUAGE_VERSION || abi > TREE_SITTER_LANGUAGE_VERSION) {
        PyErr_Format(PyExc_ValueError, "grammar ABI %u is outside this runtime's %d..%d", abi,
                     TREE_SITTER_MIN_COMPATIBLE_LANGUAGE_VERSION, TREE_SITTER_LANGUAGE_VERSION);
        return -1;
    }
    self->parser = ts_parser_new();
    if (self->parser == NULL || !ts_parser_set_language(self->parser, language)) {
        PyErr_SetString(PyExc_ValueError, "the grammar was refused by the parser");
        return -1;
    }
    self->method_kind = PyUnicode_InternFromString("method");
    self->dot = PyUnicode_InternFromString(".");
    if (self->method_kind == NULL || self->dot == NULL) {
        return -1;
    }
    if (patterns != Py_None) {
        /* the query's patterns, compiled by tagpatterns.py: the query engine is not needed */
        self->matcher = matcher_new(language, patterns);
        if (self->matcher == NULL) {
            return -1;
        }
        self->pattern_count = matcher_pattern_count(self->matcher);
        self->roles = PyMem_Calloc(self->pattern_count ? self->pattern_count : 1, sizeof(Role));
        if (self->roles == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (uint32_t p = 0; p < self->pattern_count; ++p) {
            Py_ssize_t role_length;
            const char *role = matcher_role(self->matcher, p, &role_length);
            if (role == NULL || set_role(&self->roles[p], role, role_length, 0) < 0) {
                return -1;
            }
            self->roles[p].known = true;
            if (!self->roles[p].valid) {
                PyErr_Format(PyExc_ValueError, "pattern %u: %s is not a role", p, role);
                return -1;
            }
        }
        return 0;
    }
    uint32_t error_offset;
    TSQueryError error;
    self->query = ts_query_new(language, source, (uint32_t)length, &error_offset, &error);
    if (self->query == NULL) {
        PyErr_Format(PyExc_ValueError, "tags query: %s error at byte %u",
                     QUERY_ERRORS[error < 7 ? error : 0], error_offset);
        return -1;
    }
    self->cursor = ts_query_cursor_new();
    self->pattern_count = ts_query_pattern_count(self->query);
    self->roles = PyMem_Calloc(self->pattern_count ? self->pattern_count : 1, sizeof(Role));
    if (self->cursor == NULL || self->roles == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->name_capture = UINT32_MAX;
    uint32_t captures = ts_query_capture_count(self->query);
    for (uint32_t id = 0; id < captures; ++id) {
        uint32_t name_length;
        const char *name = ts_query_capture_name_for_id(self->query, id, &name_length);
        if (name_length == 4 && memcmp(name, "name", 4) == 0) {
            self->name_capture = id;
        }
    }
    return 0;
}

/* A capture named definition.<kind> or reference.<kind> gives the role: 1; another leaves it
 * invalid: 0; -1 with an exception set. */
static int set_role(Role *role, const char *name, Py_ssize_t length, uint32_t key_capture) {
    const char *dot = memchr(name, '.', (size_t)length);
    if (dot == NULL || dot + 1 == name + length) {
        return 0;
    }
    size_t head = (size_t)(dot - name);
    bool is_definition = head == 10 && memcmp(name, "definition", 10) == 0;
    bool is_reference = head == 9 && memcmp(name, "reference", 9) == 0;
    if (!is_definition && !is_reference) {
        return 0;
    }
    role->kind = PyUnicode_FromStringAndSize(dot + 1, (Py_ssize_t)(name + length - dot - 1));
    if (role->kind == NULL) {
        return -1;
    }
    PyUnicode_InternInPlace(&role->kind);
    role->kind_utf8 = PyUnicode_AsUTF8(role->kind);
    if (role->kind_utf8 == NULL) {
        return -1;
    }
    role->valid = true;
    role->is_definition = is_definition;
    role->key_capture = key_capture;
    role->is_type = strcmp(role->kind_utf8, "type") == 0;
    role->is_function = strcmp(role->kind_utf8, "function") == 0;
    role->is_container = in_list(role->kind_utf8, CONTAINERS);
    role->not_scope = in_list(role->kind_utf8, NOT_SCOPES);
    return 1;
}

/* _pattern_role: the first capture named definition.<kind> or reference.<kind>. Like the
 * Python loop, it is decided by the pattern's first match (captures in match order). */
static int compute_role(Extractor *self, Role *role, const TSQueryMatch *match) {
    role->known = true;
    for (uint16_t i = 0; i < match->capture_count; ++i) {
        uint32_t length;
        const char *name =
            ts_query_capture_name_for_id(self->query, match->captures[i].index, &length);
        int found = set_role(role, name, (Py_ssize_t)length, match->captures[i].index);
        if (found != 0) {
            return found < 0 ? -1 : 0;
        }
    }
    return 0;
}

/* node id -> index into the Found array; open addressing, grown at half load */
typedef struct {
    const void **keys;
    uint32_t *values;
    size_t mask;
    size_t used;
} IdMap;

static size_t id_hash(const void *id) {
    uint64_t x = (uint64_t)(uintptr_t)id;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

static bool idmap_init(IdMap *map, size_t capacity) {
    map->mask = capacity - 1;
    map->used = 0;
    map->keys = calloc(capacity, sizeof(*map->keys));
    map->values = malloc(capacity * sizeof(*map->values));
    return map->keys != NULL && map->values != NULL;
}

static void idmap_free(IdMap *map) {
    free(map->keys);
    free(map->values);
}

/* The slot for id: keys[slot] == id when present, NULL when not. */
static size_t idmap_slot(const IdMap *map, const void *id) {
    size_t slot = id_hash(id) & map->mask;
    while (map->keys[slot] != NULL && map->keys[slot] != id) {
        slot = (slot + 1) & map->mask;
    }
    return slot;
}

static bool idmap_grow(IdMap *map) {
    IdMap bigger;
    if (!idmap_init(&bigger, (map->mask + 1) * 2)) {
        idmap_free(&bigger);
        return false;
    }
    for (size_t i = 0; i <= map->mask; ++i) {
        if (map->keys[i] != NULL) {
            size_t slot = idmap_slot(&bigger, map->keys[i]);
            bigger.keys[slot] = map->keys[i];
            bigger.values[slot] = map->values[i];
        }
    }
    bigger.used = map->used;
    idmap_free(map);
    *map = bigger;
    return true;
}

static int compare_found(const void *a, const void *b) {
    const Found *x = a, *y = b;
    if (x->start != y->start) {
        return x->start < y->start ? -1 : 1;
    }
    if (x->end != y->end) {
        return x->end > y->end ? -1 : 1; /* key -end_byte: the longer one first */
    }
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

static int compare_refs(const void *a, const void *b) {
    const RawRef *x = a, *y = b;
    if (x->start != y->start) {
        return x->start < y->start ? -1 : 1;
    }
    if (x->role->is_type != y->role->is_type) {
        return x->role->is_type ? 1 : -1; /* False sorts before True */
    }
    int kinds = strcmp(x->role->kind_utf8, y->role->kind_utf8);
    if (kinds != 0) {
        return kinds;
    }
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

static int compare_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : (x > y);
}

static PyObject *node_text(const char *source, TSNode node) {
    uint32_t start = ts_node_start_byte(node), end = ts_node_end_byte(node);
    return PyUnicode_DecodeUTF8(source + start, end > start ? end - start : 0, "replace");
}

/* symbols._line_text: the name's line, at most 4 * MAX_SIGNATURE bytes, right-stripped, at
 * most MAX_SIGNATURE characters. */
static PyObject *line_text(const char *source, size_t size, uint32_t start_byte,
                           uint32_t column) {
    size_t line_start = start_byte - column;
    const char *newline = memchr(source + line_start, '\n', size - line_start);
    size_t line_end = newline != NULL ? (size_t)(newline - source) : size;
    if (line_end > line_start + 4 * MAX_SIGNATURE) {
        line_end = line_start + 4 * MAX_SIGNATURE;
    }
    PyObject *line = PyUnicode_DecodeUTF8(source + line_start, line_end - line_start, "replace");
    if (line == NULL) {
        return NULL;
    }
    PyObject *stripped = PyObject_CallMethod(line, "rstrip", NULL);
    Py_DECREF(line);
    if (stripped == NULL || PyUnicode_GET_LENGTH(stripped) <= MAX_SIGNATURE) {
        return stripped;
    }
    PyObject *cut = PyUnicode_Substring(stripped, 0, MAX_SIGNATURE);
    Py_DECREF(stripped);
    return cut;
}

static bool counts_as_error_path(TSNode node) {
    return ts_node_has_error(node) || ts_node_is_missing(node);
}

/* symbols.count_syntax_errors: ERROR and MISSING nodes, visiting only subtrees that hold an
 * error, and not inside an ERROR node. */
static long count_syntax_errors(TSNode root) {
    if (!ts_node_has_error(root)) {
        return 0;
    }
    long count = 0;
    TSTreeCursor cursor = ts_tree_cursor_new(root);
    for (;;) {
        TSNode node = ts_tree_cursor_current_node(&cursor);
        bool descended = false;
        if (ts_node_is_error(node) || ts_node_is_missing(node)) {
            ++count;
        } else if (ts_tree_cursor_goto_first_child(&cursor)) {
            for (;;) {
                if (counts_as_error_path(ts_tree_cursor_current_node(&cursor))) {
                    descended = true;
                    break;
                }
                if (!ts_tree_cursor_goto_next_sibling(&cursor)) {
                    break;
                }
            }
            if (!descended) {
                ts_tree_cursor_goto_parent(&cursor);
            }
        }
        if (descended) {
            continue;
        }
        /* the next sibling on an error path, climbing as needed */
        bool found = false;
        while (!found && ts_tree_cursor_current_depth(&cursor) > 0) {
            if (ts_tree_cursor_goto_next_sibling(&cursor)) {
                found = counts_as_error_path(ts_tree_cursor_current_node(&cursor));
            } else {
                ts_tree_cursor_goto_parent(&cursor);
            }
        }
        if (!found) {
            break;
        }
    }
    ts_tree_cursor_delete(&cursor);
    return count;
}

typedef struct {
    uint32_t end;
    bool container; /* the kind after the method rule */
} Scope;

static PyObject *build_definitions(Extractor *self, const char *source, size_t size,
                                   Found *found, size_t n_found) {
    qsort(found, n_found, sizeof(Found), compare_found);
    PyObject *definitions = PyTuple_New((Py_ssize_t)n_found);
    Scope *stack = malloc((n_found ? n_found : 1) * sizeof(Scope));
    PyObject *names = PyList_New(0);
    if (definitions == NULL || stack == NULL || names == NULL) {
        Py_XDECREF(definitions);
        Py_XDECREF(names);
        free(stack);
        return PyErr_NoMemory();
    }
    size_t depth = 0;
    for (size_t i = 0; i < n_found; ++i) {
        const Found *item = &found[i];
        while (depth > 0 &&
               (stack[depth - 1].end < item->end || stack[depth - 1].end <= item->start)) {
            --depth;
        }
        PyObject *kind = item->role->kind;
        if (item->role->is_function && depth > 0 && stack[depth - 1].container) {
            kind = self->method_kind;
        }
        PyObject *name = node_text(source, item->name);
        TSPoint name_point = ts_node_start_point(item->name);
        PyObject *line =
            name != NULL ? line_text(source, size, ts_node_start_byte(item->name),
                                     name_point.column)
                         : NULL;
        PyObject *scope = NULL;
        if (line != NULL) {
            if (PyList_SetSlice(names, (Py_ssize_t)depth, PY_SSIZE_T_MAX, NULL) == 0) {
                scope = PyUnicode_Join(self->dot, names);
            }
        }
        if (scope == NULL) {
            Py_XDECREF(name);
            Py_XDECREF(line);
            goto fail;
        }
        TSPoint start = ts_node_start_point(item->node), end = ts_node_end_point(item->node);
        Py_INCREF(kind);
        PyObject *record = Py_BuildValue("(NNIIIINN)", name, kind, start.row, start.column,
                                         end.row, end.column, line, scope);
        if (record == NULL) {
            goto fail;
        }
        PyTuple_SET_ITEM(definitions, (Py_ssize_t)i, record);
        /* the method rule changes the kind, and a method is neither container nor no-scope */
        bool is_method = kind == self->method_kind && !item->role->is_container;
        bool opens_scope = is_method || !item->role->not_scope;
        if (opens_scope) {
            if (PyList_Append(names, PyTuple_GET_ITEM(record, 0)) < 0) {
                goto fail;
            }
            stack[depth].end = item->end;
            stack[depth].container = !is_method && item->role->is_container;
            ++depth;
        }
    }
    free(stack);
    Py_DECREF(names);
    return definitions;
fail:
    free(stack);
    Py_DECREF(names);
    Py_DECREF(definitions);
    return NULL;
}

static PyObject *build_references(const char *source, RawRef *refs, size_t n_refs,
                                  uint32_t *def_names, size_t n_defs) {
    qsort(refs, n_refs, sizeof(RawRef), compare_refs);
    qsort(def_names, n_defs, sizeof(uint32_t), compare_u32);
    PyObject *references = PyList_New(0);
    if (references == NULL) {
        return NULL;
    }
    size_t d = 0;
    bool have_last = false;
    uint32_t last = 0;
    for (size_t i = 0; i < n_refs; ++i) {
        uint32_t start = refs[i].start;
        while (d < n_defs && def_names[d] < start) {
            ++d;
        }
        if ((d < n_defs && def_names[d] == start) || (have_last && last == start)) {
            continue;
        }
        have_last = true;
        last = start;
        PyObject *name = node_text(source, refs[i].name);
        if (name == NULL) {
            Py_DECREF(references);
            return NULL;
        }
        TSPoint point = ts_node_start_point(refs[i].name);
        Py_INCREF(refs[i].role->kind);
        PyObject *record =
            Py_BuildValue("(NNII)", name, refs[i].role->kind, point.row, point.column);
        if (record == NULL || PyList_Append(references, record) < 0) {
            Py_XDECREF(record);
            Py_DECREF(references);
            return NULL;
        }
        Py_DECREF(record);
    }
    PyObject *result = PyList_AsTuple(references);
    Py_DECREF(references);
    return result;
}

/* What the matches of one file leave: definitions by node (the lowest pattern wins) and
 * references, in match order (seq) for a stable sort. */
typedef struct {
    Found *found;
    RawRef *refs;
    IdMap map;
    size_t n_found, found_cap, n_refs, refs_cap;
    uint32_t seq;
} Matches;

/* items (capacity of them, each item_size bytes) reallocated to twice as many: the new block,
 * or NULL with MemoryError set and items untouched. */
static void *doubled(void *items, size_t *capacity, size_t item_size) {
    void *bigger = realloc(items, 2 * *capacity * item_size);
    if (bigger == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    *capacity *= 2;
    return bigger;
}

static int collect(Matches *m, uint32_t pattern, const Role *role, TSNode name, TSNode key) {
    if (!role->is_definition) {
        if (m->n_refs == m->refs_cap) {
            RawRef *bigger = doubled(m->refs, &m->refs_cap, sizeof(RawRef));
            if (bigger == NULL) {
                return -1;
            }
            m->refs = bigger;
        }
        m->refs[m->n_refs++] = (RawRef){
            .start = ts_node_start_byte(name), .seq = m->seq++, .name = name, .role = role};
        return 0;
    }
    size_t slot = idmap_slot(&m->map, key.id);
    if (m->map.keys[slot] != NULL) {
        Found *previous = &m->found[m->map.values[slot]];
        /* Patterns are ordered specific-first: the lowest pattern index wins. */
        if (pattern < previous->pattern) {
            previous->pattern = pattern;
            previous->name = name;
            previous->node = key;
            previous->role = role;
        }
        return 0;
    }
    if (m->n_found == m->found_cap) {
        Found *bigger = doubled(m->found, &m->found_cap, sizeof(Found));
        if (bigger == NULL) {
            return -1;
        }
        m->found = bigger;
    }
    m->found[m->n_found] = (Found){
        .start = ts_node_start_byte(key),
        .end = ts_node_end_byte(key),
        .pattern = pattern,
        .seq = m->seq++,
        .node = key,
        .name = name,
        .role = role,
    };
    m->map.keys[slot] = key.id;
    m->map.values[slot] = (uint32_t)m->n_found;
    ++m->n_found;
    if (++m->map.used * 2 > m->map.mask && !idmap_grow(&m->map)) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

typedef struct {
    Extractor *self;
    Matches *matches;
} Sink;

static int collect_match(void *context, uint32_t pattern, TSNode name, TSNode role_node) {
    Sink *sink = context;
    return collect(sink->matches, pattern, &sink->self->roles[pattern], name, role_node);
}

/* The query engine's matches: each pattern's role from its first match, as the Python loop. */
static int query_matches(Extractor *self, TSNode root, Matches *m) {
    ts_query_cursor_exec(self->cursor, self->query, root);
    TSQueryMatch match;
    while (ts_query_cursor_next_match(self->cursor, &match)) {
        Role *role = &self->roles[match.pattern_index];
        if (!role->known && compute_role(self, role, &match) < 0) {
            return -1;
        }
        if (!role->valid) {
            continue;
        }
        const TSNode *name = NULL, *key = NULL;
        for (uint16_t i = 0; i < match.capture_count; ++i) {
            uint32_t index = match.captures[i].index;
            if (name == NULL && index == self->name_capture) {
                name = &match.captures[i].node;
            }
            if (key == NULL && index == role->key_capture) {
                key = &match.captures[i].node;
            }
        }
        if (name == NULL || (role->is_definition && key == NULL)) {
            continue;
        }
        if (collect(m, match.pattern_index, role, *name, role->is_definition ? *key : *name) < 0) {
            return -1;
        }
    }
    return 0;
}

static PyObject *extractor_extract(Extractor *self, PyObject *arg) {
    Py_buffer buffer;
    if (PyObject_GetBuffer(arg, &buffer, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if ((size_t)buffer.len >= UINT32_MAX) {
        PyBuffer_Release(&buffer);
        PyErr_SetString(PyExc_ValueError, "source larger than 4 GiB");
        return NULL;
    }
    const char *source = buffer.buf;
    size_t size = (size_t)buffer.len;
    PyObject *result = NULL;
    uint32_t *def_names = NULL;
    Matches m = {.found_cap = 64, .refs_cap = 256};

    TSTree *tree = ts_parser_parse_string(self->parser, NULL, source, (uint32_t)size);
    if (tree == NULL) {
        PyBuffer_Release(&buffer);
        PyErr_SetString(PyExc_RuntimeError, "tree-sitter returned no tree");
        return NULL;
    }
    TSNode root = ts_tree_root_node(tree);
    m.found = malloc(m.found_cap * sizeof(Found));
    m.refs = malloc(m.refs_cap * sizeof(RawRef));
    if (m.found == NULL || m.refs == NULL || !idmap_init(&m.map, 128)) {
        PyErr_NoMemory();
        goto done;
    }
    if (self->matcher != NULL) {
        Sink sink = {self, &m};
        if (matcher_run(self->matcher, root, collect_match, &sink) < 0) {
            goto done;
        }
    } else if (query_matches(self, root, &m) < 0) {
        goto done;
    }
    def_names = malloc((m.n_found ? m.n_found : 1) * sizeof(uint32_t));
    if (def_names == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (size_t i = 0; i < m.n_found; ++i) {
        def_names[i] = ts_node_start_byte(m.found[i].name);
    }
    PyObject *definitions = build_definitions(self, source, size, m.found, m.n_found);
    if (definitions == NULL) {
        goto done;
    }
    PyObject *references = build_references(source, m.refs, m.n_refs, def_names, m.n_found);
    if (references == NULL) {
        Py_DECREF(definitions);
        goto done;
    }
    result = Py_BuildValue("(NNl)", definitions, references, count_syntax_errors(root));
done:
    idmap_free(&m.map);
    free(m.found);
    free(m.refs);
    free(def_names);
    ts_tree_delete(tree);
    PyBuffer_Release(&buffer);
    return result;
}

static PyObject *extractor_uses_matcher(Extractor *self, void *closure) {
    (void)closure;
    return PyBool_FromLong(self->matcher != NULL);
}

static PyGetSetDef extractor_getset[] = {
    {"uses_matcher", (getter)extractor_uses_matcher, NULL,
     "True when the patterns are matched directly, False when the query engine runs them.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef extractor_methods[] = {
    {"extract", (PyCFunction)extractor_extract, METH_O,
     "extract(source: bytes) -> RawSymbols: parse and run the tags query, as "
     "symbols.extract_raw(language, source)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ExtractorType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "lsp_agent.index._tags.Extractor",
    .tp_basicsize = sizeof(Extractor),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Extractor(language_capsule, query_source, patterns=None): a parser and the tags "
              "query, compiled by the query engine or, given tagpatterns' patterns, matched "
              "directly.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)extractor_init,
    .tp_dealloc = (destructor)extractor_dealloc,
    .tp_methods = extractor_methods,
    .tp_getset = extractor_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "lsp_agent.index._tags",
    .m_doc = "symbols.extract_raw's whole-file path in C", .m_size = -1};

PyMODINIT_FUNC PyInit__tags(void) {
    if (PyType_Ready(&ExtractorType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&ExtractorType);
    if (PyModule_AddObject(m, "Extractor", (PyObject *)&ExtractorType) < 0 ||
        PyModule_AddIntConstant(m, "LANGUAGE_VERSION", TREE_SITTER_LANGUAGE_VERSION) < 0) {
        Py_DECREF(&ExtractorType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
