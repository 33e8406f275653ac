/* cl100k's pre-tokenizer for ASCII text, for context/tokens.py's counts.
 *
 * tiktoken counts a text as the sum, over the pieces its pattern splits the text into, of each
 * piece's byte-pair encoding. Most of its time goes to the pattern (fancy-regex, ~6 MB/s here),
 * and source code repeats its pieces: identifiers, keywords, operators, indentation. So this
 * module splits an ASCII text the way the pattern does, by hand, and sums each piece's count
 * from a memo (a dict of piece -> tokens) that the caller fills through ``encode`` (tiktoken's
 * own encode_ordinary of the piece alone, which is that one piece: every alternative of the
 * pattern matches a whole piece again when it stands alone). A text with any non-ASCII
 * character is not split here (None): Unicode's letter and number classes stay tiktoken's.
 *
 * The pattern (tiktoken's cl100k_base), tried in order at each position, leftmost first:
 *   '(?i:[sdmt]|ll|ve|re) | [^\r\n\p{L}\p{N}]?+\p{L}++ | \p{N}{1,3}+ |
 *    ?[^\s\p{L}\p{N}]++[\r\n]*+ | \s++$ | \s*[\r\n] | \s+(?!\S) | \s
 * For ASCII, \p{L} is [A-Za-z], \p{N} is [0-9], and \s is Unicode's White_Space: tab, line
 * feed, vertical tab, form feed, carriage return and space (not 0x1c-0x1f, which Python's
 * str.isspace counts). tests/context/test_tokens.py compares every piece and every count with
 * tiktoken's on real sources and on random ASCII.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { LETTER = 1, DIGIT = 2, SPACE = 4, NEWLINE = 8 };

static unsigned char classes[128];

static void init_classes(void) {
    for (int c = 'a'; c <= 'z'; c++) {
        classes[c] = LETTER;
        classes[c - 'a' + 'A'] = LETTER;
    }
    for (int c = '0'; c <= '9'; c++) {
        classes[c] = DIGIT;
    }
    classes['\t'] = classes['\v'] = classes['\f'] = classes[' '] = SPACE;
    classes['\n'] = classes['\r'] = SPACE | NEWLINE;
}

#define IS(c, k) (classes[(unsigned char)(c)] & (k))
/* [^\s\p{L}\p{N}]: neither white space, letter nor digit (punctuation, control characters) */
#define IS_OTHER(c) (!IS(c, LETTER | DIGIT | SPACE))

static int lower(char c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

/* The length of the piece that starts at ``s[i]`` (``i < n``). */
static Py_ssize_t piece_at(const char *s, Py_ssize_t i, Py_ssize_t n) {
    char c = s[i];
    /* '(?i:[sdmt]|ll|ve|re) */
    if (c == '\'' && i + 1 < n) {
        int a = lower(s[i + 1]);
        if (a == 's' || a == 'd' || a == 'm' || a == 't') {
            return 2;
        }
        if (i + 2 < n) {
            int b = lower(s[i + 2]);
            if ((a == 'l' && b == 'l') || (a == 'v' && b == 'e') || (a == 'r' && b == 'e')) {
                return 3;
            }
        }
    }
    /* [^\r\n\p{L}\p{N}]?+\p{L}++ : the optional character, once taken, is never given back */
    Py_ssize_t j = i;
    if (!IS(c, LETTER | DIGIT | NEWLINE)) {
        j++;
    }
    if (j < n && IS(s[j], LETTER)) {
        while (j < n && IS(s[j], LETTER)) {
            j++;
        }
        return j - i;
    }
    /* \p{N}{1,3}+ */
    if (IS(c, DIGIT)) {
        j = i + 1;
        while (j < n && j < i + 3 && IS(s[j], DIGIT)) {
            j++;
        }
        return j - i;
    }
    /*  ?[^\s\p{L}\p{N}]++[\r\n]*+ : the space may be given back, the rest may not */
    j = i;
    if (c == ' ' && j + 1 < n && IS_OTHER(s[j + 1])) {
        j++;
    }
    if (IS_OTHER(s[j])) {
        while (j < n && IS_OTHER(s[j])) {
            j++;
        }
        while (j < n && IS(s[j], NEWLINE)) {
            j++;
        }
        return j - i;
    }
    /* c is white space from here on */
    Py_ssize_t end = i;
    Py_ssize_t last_newline = -1;
    while (end < n && IS(s[end], SPACE)) {
        if (IS(s[end], NEWLINE)) {
            last_newline = end;
        }
        end++;
    }
    if (end == n) { /* \s++$ */
        return end - i;
    }
    if (last_newline >= 0) { /* \s*[\r\n] : the longest run that ends in a line break */
        return last_newline + 1 - i;
    }
    if (end - i >= 2) { /* \s+(?!\S) : all but the last, which goes with what follows */
        return end - 1 - i;
    }
    return 1; /* \s */
}

/* A cache in front of the memo for short pieces, keyed by their bytes: no str is made and no
 * dict is searched for a piece seen before (a kernel map counts ~1M pieces, and the str and
 * its lookup were most of the count's time). Every entry is also in the memo it was read from
 * or put in, so a call with another memo, or with a memo that holds fewer entries than this
 * cache (it was cleared), empties the cache first. */
#define SHORT_PIECE 16
#define CACHE_BITS 17 /* 3 MB; a kernel map's counts see ~35k distinct pieces */
#define CACHE_SLOTS (1u << CACHE_BITS)
#define CACHE_MAX (CACHE_SLOTS / 2) /* then it is emptied: probes stay short */

typedef struct {
    char bytes[SHORT_PIECE];
    int32_t tokens;
    uint8_t length; /* 0: an empty slot (no piece is empty) */
} cached_t;

static cached_t *cache = NULL;
static Py_ssize_t cached = 0;
static PyObject *cache_memo = NULL; /* held: its address is never another dict's */

static void empty_cache(void) {
    if (cache != NULL && cached > 0) { /* a fresh table is untouched: no page faulted in */
        memset(cache, 0, sizeof(cached_t) * CACHE_SLOTS);
    }
    cached = 0;
}

/* The cache for ``memo`` (allocated on first use, emptied when it cannot be trusted), or NULL
 * without memory for it (the memo alone then counts, as before). */
static cached_t *cache_for(PyObject *memo) {
    if (cache == NULL) {
        cache = calloc(CACHE_SLOTS, sizeof(cached_t));
        if (cache == NULL) {
            return NULL;
        }
    }
    if (memo != cache_memo || PyDict_GET_SIZE(memo) < cached || cached >= CACHE_MAX) {
        empty_cache();
        Py_INCREF(memo);
        Py_XSETREF(cache_memo, memo);
    }
    return cache;
}

static uint32_t slot_of(const char *s, Py_ssize_t k) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (Py_ssize_t j = 0; j < k; j++) {
        h = (h ^ (unsigned char)s[j]) * 1099511628211ull;
    }
    return (uint32_t)(h ^ (h >> 32)) & (CACHE_SLOTS - 1);
}

/* The slot holding the piece, or the empty slot where it goes. */
static cached_t *find(cached_t *table, const char *s, Py_ssize_t k) {
    uint32_t i = slot_of(s, k);
    for (;;) {
        cached_t *slot = &table[i];
        if (slot->length == 0 || (slot->length == k && memcmp(slot->bytes, s, k) == 0)) {
            return slot;
        }
        i = (i + 1) & (CACHE_SLOTS - 1);
    }
}

static int ascii_text(PyObject *text, const char **data, Py_ssize_t *n) {
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "text: expected a str");
        return -1;
    }
    if (!PyUnicode_IS_ASCII(text)) {
        return 0;
    }
    *data = (const char *)PyUnicode_1BYTE_DATA(text);
    *n = PyUnicode_GET_LENGTH(text);
    return 1;
}

/* pieces(text) -> list[str] | None: the pattern's pieces of an ASCII text (tests compare them
 * with the pattern's own). */
static PyObject *pieces(PyObject *self, PyObject *arg) {
    const char *s;
    Py_ssize_t n;
    int ascii = ascii_text(arg, &s, &n);
    if (ascii < 0) {
        return NULL;
    }
    if (!ascii) {
        Py_RETURN_NONE;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n;) {
        Py_ssize_t k = piece_at(s, i, n);
        PyObject *piece = PyUnicode_FromStringAndSize(s + i, k);
        if (piece == NULL || PyList_Append(out, piece) != 0) {
            Py_XDECREF(piece);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(piece);
        i += k;
    }
    return out;
}

/* count(text, memo, encode, limit) -> int | None: the sum of the pieces' token counts, each
 * read from ``memo`` or put there as len(encode(piece)); once past ``limit`` (when it is not
 * negative) the sum so far, which is over the limit and at most the real count. None for a
 * text that is not ASCII. */
static PyObject *count(PyObject *self, PyObject *args) {
    PyObject *text, *memo, *encode;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "UO!On", &text, &PyDict_Type, &memo, &encode, &limit)) {
        return NULL;
    }
    const char *s;
    Py_ssize_t n;
    int ascii = ascii_text(text, &s, &n);
    if (ascii < 0) {
        return NULL;
    }
    if (!ascii) {
        Py_RETURN_NONE;
    }
    Py_INCREF(memo); /* encode may run Python code; the text is immutable and held by args */
    cached_t *table = cache_for(memo);
    long long total = 0;
    for (Py_ssize_t i = 0; i < n;) {
        Py_ssize_t k = piece_at(s, i, n);
        cached_t *slot = NULL;
        if (table != NULL && k <= SHORT_PIECE) {
            slot = find(table, s + i, k);
            if (slot->length != 0) {
                total += slot->tokens;
                if (limit >= 0 && total > limit) {
                    break;
                }
                i += k;
                continue;
            }
        }
        PyObject *piece = PyUnicode_FromStringAndSize(s + i, k);
        if (piece == NULL) {
            goto fail;
        }
        PyObject *known = PyDict_GetItemWithError(memo, piece); /* borrowed */
        long long tokens;
        if (known != NULL) {
            tokens = PyLong_AsLongLong(known);
        } else if (PyErr_Occurred()) {
            Py_DECREF(piece);
            goto fail;
        } else {
            PyObject *encoded = PyObject_CallOneArg(encode, piece);
            if (encoded == NULL) {
                Py_DECREF(piece);
                goto fail;
            }
            Py_ssize_t length = PyObject_Length(encoded);
            Py_DECREF(encoded);
            PyObject *value = length < 0 ? NULL : PyLong_FromSsize_t(length);
            if (value == NULL || PyDict_SetItem(memo, piece, value) != 0) {
                Py_XDECREF(value);
                Py_DECREF(piece);
                goto fail;
            }
            Py_DECREF(value);
            tokens = length;
        }
        Py_DECREF(piece);
        if (tokens == -1 && PyErr_Occurred()) {
            goto fail;
        }
        /* encode may have run Python code that counted too (and moved or emptied the cache) */
        if (slot != NULL && tokens >= 0 && tokens <= INT32_MAX && cache_memo == memo &&
            cached < CACHE_MAX) {
            slot = find(table, s + i, k);
            if (slot->length == 0) {
                memcpy(slot->bytes, s + i, k);
                slot->length = (uint8_t)k;
                slot->tokens = (int32_t)tokens;
                cached++;
            }
        }
        total += tokens;
        if (limit >= 0 && total > limit) {
            break;
        }
        i += k;
    }
    Py_DECREF(memo);
    return PyLong_FromLongLong(total);
fail:
    Py_DECREF(memo);
    return NULL;
}

static PyMethodDef methods[] = {
    {"pieces", pieces, METH_O, "The cl100k pattern's pieces of an ASCII text, or None."},
    {"count", count, METH_VARARGS,
     "count(text, memo, encode, limit): the text's tokens from its pieces' counts, or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pieces", "cl100k's pre-tokenizer for ASCII text.", -1, methods,
};

PyMODINIT_FUNC PyInit__pieces(void) {
    init_classes();
    return PyModule_Create(&module);
}
