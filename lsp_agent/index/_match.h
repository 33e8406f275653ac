/*
 * The tags patterns (tagpatterns.py) matched against a tree directly, in place of the query
 * engine, with the engine's semantics for the subset they use. See _match.c.
 */
#ifndef LSP_AGENT_MATCH_H
#define LSP_AGENT_MATCH_H

#ifndef PY_SSIZE_T_CLEAN
#define PY_SSIZE_T_CLEAN
#endif
#include <Python.h>
#include <stdint.h>

#include "tree_sitter/api.h"

typedef struct Matcher Matcher;

/* One match: the node captured as @name and the one captured by the pattern's role. Returns
 * 0, or -1 with a Python exception set to stop the walk. */
typedef int (*MatchSink)(void *context, uint32_t pattern, TSNode name, TSNode role_node);

/* NULL with a Python exception set when a pattern is malformed or names a node type or field
 * the grammar does not have. */
Matcher *matcher_new(const TSLanguage *language, PyObject *patterns);
void matcher_free(Matcher *matcher);
uint32_t matcher_pattern_count(const Matcher *matcher);
/* The pattern's role capture name ("definition.function"), owned by the matcher. */
const char *matcher_role(const Matcher *matcher, uint32_t pattern, Py_ssize_t *length);
/* Every match in the tree under root, in document order of the pattern's root node. */
int matcher_run(Matcher *matcher, TSNode root, MatchSink sink, void *context);

#endif
