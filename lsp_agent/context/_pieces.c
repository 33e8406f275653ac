/* cl100k's token counts without tiktoken's encoder, for context/tokens.py.
 *
 * tiktoken counts a text as the sum, over the pieces its pattern splits the text into, of each
 * piece's byte-pair encoding: one token when the piece's bytes are a token, else the merges of
 * its byte pairs by rank. This module does both steps itself:
 *
 * - it splits a text the way the pattern does, by hand (tiktoken's pattern runs in
 *   fancy-regex, ~6 MB/s here);
 * - with the vocabulary loaded (``load_ranks``: the encoding's own file, which tokens.py checks
 *   by its sha256), ``count_bpe`` merges each piece as tiktoken's ``byte_pair_merge`` does, in
 *   the same order (the lowest rank first, the leftmost of equal ranks), and keeps the counts of
 *   short pieces in a table keyed by their bytes: source repeats its pieces. No tiktoken
 *   encoder is built (~0.3 s of held GIL at a process's first count) and no Python object is
 *   made per piece.
 *
 * Without the vocabulary, ``count`` sums the pieces' counts from a memo (a dict of piece ->
 * tokens) that the caller fills through ``encode`` (tiktoken's own encoding of the piece alone,
 * which is that one piece: every alternative of the pattern matches a whole piece again when it
 * stands alone).
 *
 * The pattern (tiktoken's cl100k_base), tried in order at each position, leftmost first:
 *   '(?i:[sdmt]|ll|ve|re) | [^\r\n\p{L}\p{N}]?+\p{L}++ | \p{N}{1,3}+ |
 *    ?[^\s\p{L}\p{N}]++[\r\n]*+ | \s++$ | \s*[\r\n] | \s+(?!\S) | \s
 * \p{L} is what the interpreter's str.isalpha says (general categories L*), \p{N} what
 * isnumeric says of a character that is not a letter (N*: the CJK numerals with a numeric value
 * are letters), \s Unicode's White_Space (for ASCII: tab, line feed, vertical tab, form feed,
 * carriage return and space, not 0x1c-0x1f, which str.isspace counts), and the case-insensitive
 * s also matches U+017F (long s), its only other case. A character the interpreter's Unicode
 * database does not know yet (assigned after its version) counts as punctuation.
 * tests/context/test_tokens.py compares pieces and counts with tiktoken's on real sources, on
 * random ASCII and Unicode, and on every assigned character.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A character's class: flags, the contraction letter it is (its code in the CONTRACTION
 * bits), and the length of its UTF-8 encoding. */
enum {
    LETTER = 1,
    DIGIT = 2,
    SPACE = 4,
    NEWLINE = 8,
    APOSTROPHE = 16,
    CONTRACTION_SHIFT = 5, /* 0: none; s d m t l v r e: 1..8 (4 bits) */
    UTF8_SHIFT = 9,        /* 1..4 (3 bits) */
    BLANK = 1 << 12,       /* " " itself: the pattern's " ?" takes no other space */
};
enum { C_S = 1, C_D, C_M, C_T, C_L, C_V, C_R, C_E };

typedef uint16_t cls_t;

static cls_t ascii_classes[128];

static void init_classes(void) {
    for (int c = 0; c < 128; c++) {
        ascii_classes[c] = 1 << UTF8_SHIFT;
    }
    for (int c = 'a'; c <= 'z'; c++) {
        ascii_classes[c] |= LETTER;
        ascii_classes[c - 'a' + 'A'] |= LETTER;
    }
    for (int c = '0'; c <= '9'; c++) {
        ascii_classes[c] |= DIGIT;
    }
    ascii_classes['\t'] |= SPACE;
    ascii_classes['\v'] |= SPACE;
    ascii_classes['\f'] |= SPACE;
    ascii_classes[' '] |= SPACE | BLANK;
    ascii_classes['\n'] |= SPACE | NEWLINE;
    ascii_classes['\r'] |= SPACE | NEWLINE;
    ascii_classes['\''] |= APOSTROPHE;
    const char *letters = "sdmtlvre";
    for (int k = 0; letters[k]; k++) {
        cls_t code = (cls_t)((k + 1) << CONTRACTION_SHIFT);
        ascii_classes[(unsigned char)letters[k]] |= code;
        ascii_classes[(unsigned char)letters[k] - 'a' + 'A'] |= code;
    }
}

static int is_unicode_space(Py_UCS4 c) {
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static cls_t class_of(Py_UCS4 c) {
    if (c < 128) {
        return ascii_classes[c];
    }
    cls_t utf8 = c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    cls_t out = (cls_t)(utf8 << UTF8_SHIFT);
    if (Py_UNICODE_ISALPHA(c)) {
        out |= LETTER;
    } else if (Py_UNICODE_ISNUMERIC(c)) {
        out |= DIGIT;
    } else if (is_unicode_space(c)) {
        out |= SPACE;
    }
    if (c == 0x17F) { /* long s: (?i:s) matches it */
        out |= C_S << CONTRACTION_SHIFT;
    }
    return out;
}

#define IS(c, k) ((c) & (k))
/* [^\s\p{L}\p{N}]: neither white space, letter nor digit (punctuation, control characters) */
#define IS_OTHER(c) (!IS(c, LETTER | DIGIT | SPACE))
#define CONTRACTION(c) (((c) >> CONTRACTION_SHIFT) & 15)
#define UTF8_LENGTH(c) (((c) >> UTF8_SHIFT) & 7)

/* The length, in characters, of the piece that starts at ``s[i]`` (``i < n``), ``s`` being
 * the text's classes. */
static Py_ssize_t piece_at(const cls_t *s, Py_ssize_t i, Py_ssize_t n) {
    cls_t c = s[i];
    /* '(?i:[sdmt]|ll|ve|re) */
    if (IS(c, APOSTROPHE) && i + 1 < n) {
        int a = CONTRACTION(s[i + 1]);
        if (a == C_S || a == C_D || a == C_M || a == C_T) {
            return 2;
        }
        if (i + 2 < n) {
            int b = CONTRACTION(s[i + 2]);
            if ((a == C_L && b == C_L) || (a == C_V && b == C_E) || (a == C_R && b == C_E)) {
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
    if (IS(c, BLANK) && j + 1 < n && IS_OTHER(s[j + 1])) {
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

/* A text read as classes, with its UTF-8 bytes: an ASCII str's own buffer, or a bytes object
 * made for this count (not PyUnicode_AsUTF8, which would keep a UTF-8 copy inside every
 * non-ASCII str counted, such as the render cache's blocks); free_text releases both. */
typedef struct {
    PyObject *utf8; /* NULL for an ASCII text */
    const unsigned char *bytes;
    cls_t *classes;
    Py_ssize_t n; /* characters */
} text_t;

static void free_text(text_t *t) {
    PyMem_Free(t->classes);
    Py_XDECREF(t->utf8);
}

/* 0 when done, -1 with an exception set (a str with lone surrogates has no UTF-8: ValueError
 * from the codec, which tokens.py answers with tiktoken's count). */
static int read_text(PyObject *text, text_t *out) {
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "text: expected a str");
        return -1;
    }
    PyObject *utf8 = NULL;
    const char *bytes;
    if (PyUnicode_IS_ASCII(text)) {
        bytes = (const char *)PyUnicode_1BYTE_DATA(text);
    } else {
        utf8 = PyUnicode_AsUTF8String(text);
        if (utf8 == NULL) {
            return -1;
        }
        bytes = PyBytes_AS_STRING(utf8);
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    cls_t *classes = PyMem_Malloc(sizeof(cls_t) * (n > 0 ? n : 1));
    if (classes == NULL) {
        Py_XDECREF(utf8);
        PyErr_NoMemory();
        return -1;
    }
    if (PyUnicode_IS_ASCII(text)) {
        for (Py_ssize_t i = 0; i < n; i++) {
            classes[i] = ascii_classes[(unsigned char)bytes[i]];
        }
    } else {
        int kind = PyUnicode_KIND(text);
        const void *data = PyUnicode_DATA(text);
        for (Py_ssize_t i = 0; i < n; i++) {
            classes[i] = class_of(PyUnicode_READ(kind, data, i));
        }
    }
    out->utf8 = utf8;
    out->bytes = (const unsigned char *)bytes;
    out->classes = classes;
    out->n = n;
    return 0;
}

/* The UTF-8 length of characters [i, i + k). */
static Py_ssize_t bytes_of(const text_t *t, Py_ssize_t i, Py_ssize_t k) {
    Py_ssize_t length = 0;
    for (Py_ssize_t j = i; j < i + k; j++) {
        length += UTF8_LENGTH(t->classes[j]);
    }
    return length;
}

/* pieces(text) -> list[str]: the pattern's pieces (tests compare them with the pattern's own). */
static PyObject *pieces(PyObject *self, PyObject *arg) {
    text_t t;
    if (read_text(arg, &t) != 0) {
        return NULL;
    }
    PyObject *out = PyList_New(0);
    for (Py_ssize_t i = 0; out != NULL && i < t.n;) {
        Py_ssize_t k = piece_at(t.classes, i, t.n);
        PyObject *piece = PyUnicode_Substring(arg, i, i + k);
        if (piece == NULL || PyList_Append(out, piece) != 0) {
            Py_CLEAR(out);
        }
        Py_XDECREF(piece);
        i += k;
    }
    free_text(&t);
    return out;
}

/* -- the vocabulary and the byte-pair merges ------------------------------------------------ */

typedef struct {
    uint32_t offset; /* into vocabulary_bytes */
    uint32_t rank;
    uint16_t length;
} token_t;

#define NO_RANK UINT32_MAX
static unsigned char *vocabulary_bytes = NULL;
static token_t *tokens = NULL;
static uint32_t *token_slots = NULL; /* index + 1 into tokens; 0: empty */
static uint32_t token_slot_mask = 0;
static Py_ssize_t token_count = 0;

static uint64_t hash_bytes(const unsigned char *s, Py_ssize_t k) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (Py_ssize_t j = 0; j < k; j++) {
        h = (h ^ s[j]) * 1099511628211ull;
    }
    return h ^ (h >> 29);
}

/* The rank of the token spelled by ``s[0:k]``, or NO_RANK. */
static uint32_t rank_of(const unsigned char *s, Py_ssize_t k) {
    uint32_t i = (uint32_t)hash_bytes(s, k) & token_slot_mask;
    for (;;) {
        uint32_t slot = token_slots[i];
        if (slot == 0) {
            return NO_RANK;
        }
        const token_t *token = &tokens[slot - 1];
        if (token->length == k && memcmp(vocabulary_bytes + token->offset, s, k) == 0) {
            return token->rank;
        }
        i = (i + 1) & token_slot_mask;
    }
}

/* The number of tokens of one piece's bytes: tiktoken's _encode_single_piece (the piece itself
 * when it is a token, else byte_pair_merge's parts), counted. */
static Py_ssize_t piece_tokens(const unsigned char *piece, Py_ssize_t length) {
    if (length <= 1 || rank_of(piece, length) != NO_RANK) {
        return length > 0;
    }
    /* parts: (start, rank of the pair that starts there); the last two are sentinels */
    Py_ssize_t stack_starts[130];
    uint32_t stack_ranks[130];
    Py_ssize_t *start = stack_starts;
    uint32_t *rank = stack_ranks;
    if (length + 1 > 130) {
        start = malloc(sizeof(Py_ssize_t) * (length + 1));
        rank = malloc(sizeof(uint32_t) * (length + 1));
        if (start == NULL || rank == NULL) {
            free(start);
            free(rank);
            return -1;
        }
    }
    Py_ssize_t parts = length + 1;
    uint32_t min_rank = NO_RANK;
    Py_ssize_t min_at = 0;
    for (Py_ssize_t i = 0; i < length - 1; i++) {
        start[i] = i;
        rank[i] = rank_of(piece + i, 2);
        if (rank[i] < min_rank) {
            min_rank = rank[i];
            min_at = i;
        }
    }
    start[length - 1] = length - 1;
    rank[length - 1] = NO_RANK;
    start[length] = length;
    rank[length] = NO_RANK;
    while (min_rank != NO_RANK) {
        Py_ssize_t i = min_at;
        /* the rank of parts[j] merged with the part after parts[j + 1] (not yet removed) */
#define MERGED_RANK(j)                                                                         \
    ((j) + 3 < parts ? rank_of(piece + start[(j)], start[(j) + 3] - start[(j)]) : NO_RANK)
        if (i > 0) {
            rank[i - 1] = MERGED_RANK(i - 1);
        }
        rank[i] = MERGED_RANK(i);
#undef MERGED_RANK
        memmove(start + i + 1, start + i + 2, sizeof(Py_ssize_t) * (parts - i - 2));
        memmove(rank + i + 1, rank + i + 2, sizeof(uint32_t) * (parts - i - 2));
        parts--;
        min_rank = NO_RANK;
        for (Py_ssize_t j = 0; j < parts - 1; j++) {
            if (rank[j] < min_rank) {
                min_rank = rank[j];
                min_at = j;
            }
        }
    }
    if (start != stack_starts) {
        free(start);
        free(rank);
    }
    return parts - 1;
}

static int base64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes one base64 word into ``out`` (room for 3/4 of its length); its length, or -1. */
static Py_ssize_t base64_decode(const unsigned char *s, Py_ssize_t k, unsigned char *out) {
    if (k % 4 != 0) {
        return -1;
    }
    Py_ssize_t length = 0;
    for (Py_ssize_t i = 0; i < k; i += 4) {
        int v[4];
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            if (s[i + j] == '=' && i + 4 == k && j >= 2) {
                v[j] = 0;
                pad++;
            } else if (pad || (v[j] = base64_value(s[i + j])) < 0) {
                return -1;
            }
        }
        uint32_t bits = ((uint32_t)v[0] << 18) | ((uint32_t)v[1] << 12) | ((uint32_t)v[2] << 6) |
                        (uint32_t)v[3];
        out[length++] = (unsigned char)(bits >> 16);
        if (pad < 2) out[length++] = (unsigned char)(bits >> 8);
        if (pad < 1) out[length++] = (unsigned char)bits;
    }
    return length;
}

static void free_vocabulary(void) {
    free(vocabulary_bytes);
    free(tokens);
    free(token_slots);
    vocabulary_bytes = NULL;
    tokens = NULL;
    token_slots = NULL;
    token_slot_mask = 0;
    token_count = 0;
}

static void empty_counts(void);

/* load_ranks(data) -> int: reads a tiktoken vocabulary file ("<base64 bytes> <rank>" per line)
 * as the one ``count_bpe`` merges by; returns how many tokens it holds. ValueError on a line
 * it cannot read (the vocabulary loaded before stays). */
static PyObject *load_ranks(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) != 0) {
        return NULL;
    }
    const unsigned char *s = view.buf;
    Py_ssize_t n = view.len;
    Py_ssize_t lines = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        lines += s[i] == '\n';
    }
    lines += 1;
    uint32_t slots = 1;
    while (slots < 2 * (uint64_t)lines) {
        slots <<= 1;
    }
    unsigned char *bytes = malloc(n > 0 ? n : 1); /* decoded words are shorter than the file */
    token_t *table = malloc(sizeof(token_t) * lines);
    uint32_t *index = calloc(slots, sizeof(uint32_t));
    const char *error = bytes == NULL || table == NULL || index == NULL ? "" : NULL;
    Py_ssize_t count = 0, used = 0, line = 0;
    for (Py_ssize_t i = 0; error == NULL && i < n; line++) {
        Py_ssize_t end = i;
        while (end < n && s[end] != '\n') {
            end++;
        }
        Py_ssize_t space = i;
        while (space < end && s[space] != ' ') {
            space++;
        }
        if (end == i) { /* a blank line, as tiktoken's reader skips */
            i = end + 1;
            continue;
        }
        Py_ssize_t length = space < end ? base64_decode(s + i, space - i, bytes + used) : -1;
        uint64_t rank = 0;
        Py_ssize_t digits = 0;
        for (Py_ssize_t j = space + 1; j < end && s[j] >= '0' && s[j] <= '9'; j++, digits++) {
            rank = rank * 10 + (s[j] - '0');
        }
        if (length <= 0 || length > UINT16_MAX || digits == 0 || space + 1 + digits != end ||
            rank >= NO_RANK) {
            error = "a line is not \"<base64 token> <rank>\"";
            break;
        }
        table[count] = (token_t){(uint32_t)used, (uint32_t)rank, (uint16_t)length};
        uint32_t slot = (uint32_t)hash_bytes(bytes + used, length) & (slots - 1);
        while (index[slot] != 0) {
            const token_t *other = &table[index[slot] - 1];
            if (other->length == length && memcmp(bytes + other->offset, bytes + used, length) == 0) {
                error = "a token is listed twice";
                break;
            }
            slot = (slot + 1) & (slots - 1);
        }
        if (error != NULL) {
            break;
        }
        index[slot] = (uint32_t)(count + 1);
        count++;
        used += length;
        i = end + 1;
    }
    PyBuffer_Release(&view);
    if (error != NULL) {
        free(bytes);
        free(table);
        free(index);
        if (*error == '\0') {
            return PyErr_NoMemory();
        }
        return PyErr_Format(PyExc_ValueError, "vocabulary line %zd: %s", line + 1, error);
    }
    free_vocabulary();
    empty_counts();
    vocabulary_bytes = bytes;
    tokens = table;
    token_slots = index;
    token_slot_mask = slots - 1;
    token_count = count;
    return PyLong_FromSsize_t(count);
}

/* The counts of short pieces by their UTF-8 bytes: no piece is merged twice while the
 * vocabulary stays (a kernel map counts ~1M pieces, ~35k distinct). Emptied when full. */
#define SHORT_PIECE 16
#define COUNT_BITS 17 /* 3 MB */
#define COUNT_SLOTS (1u << COUNT_BITS)
#define COUNT_MAX (COUNT_SLOTS / 2)

typedef struct {
    unsigned char bytes[SHORT_PIECE];
    int32_t tokens;
    uint8_t length; /* 0: an empty slot (no piece is empty) */
} counted_t;

static counted_t *counts = NULL;
static Py_ssize_t counted = 0;

static void empty_counts(void) {
    if (counts != NULL && counted > 0) { /* a fresh table is untouched: no page faulted in */
        memset(counts, 0, sizeof(counted_t) * COUNT_SLOTS);
    }
    counted = 0;
}

/* The piece's count, from the table or merged and put there; -1 without memory. */
static Py_ssize_t short_piece_tokens(const unsigned char *s, Py_ssize_t k) {
    if (counts == NULL) {
        counts = calloc(COUNT_SLOTS, sizeof(counted_t));
        if (counts == NULL) {
            return piece_tokens(s, k);
        }
    }
    uint32_t i = (uint32_t)hash_bytes(s, k) & (COUNT_SLOTS - 1);
    for (;;) {
        counted_t *slot = &counts[i];
        if (slot->length == k && memcmp(slot->bytes, s, k) == 0) {
            return slot->tokens;
        }
        if (slot->length == 0) {
            Py_ssize_t tokens_of_piece = piece_tokens(s, k);
            if (tokens_of_piece >= 0) {
                if (counted >= COUNT_MAX) {
                    empty_counts();
                    return tokens_of_piece;
                }
                memcpy(slot->bytes, s, k);
                slot->length = (uint8_t)k;
                slot->tokens = (int32_t)tokens_of_piece;
                counted++;
            }
            return tokens_of_piece;
        }
        i = (i + 1) & (COUNT_SLOTS - 1);
    }
}

/* count_bpe(text, limit) -> int | None: the text's tokens; once past ``limit`` (when it is not
 * negative) the sum so far, which is over the limit and at most the real count. None when no
 * vocabulary is loaded. */
static PyObject *count_bpe(PyObject *self, PyObject *args) {
    PyObject *text;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "Un", &text, &limit)) {
        return NULL;
    }
    if (token_count == 0) {
        Py_RETURN_NONE;
    }
    text_t t;
    if (read_text(text, &t) != 0) {
        return NULL;
    }
    long long total = 0;
    Py_ssize_t at = 0; /* the piece's first byte */
    int failed = 0;
    for (Py_ssize_t i = 0; i < t.n;) {
        Py_ssize_t k = piece_at(t.classes, i, t.n);
        Py_ssize_t length = bytes_of(&t, i, k);
        Py_ssize_t tokens_of_piece = length <= SHORT_PIECE
                                         ? short_piece_tokens(t.bytes + at, length)
                                         : piece_tokens(t.bytes + at, length);
        if (tokens_of_piece < 0) {
            failed = 1;
            break;
        }
        total += tokens_of_piece;
        if (limit >= 0 && total > limit) {
            break;
        }
        i += k;
        at += length;
    }
    free_text(&t);
    if (failed) {
        return PyErr_NoMemory();
    }
    return PyLong_FromLongLong(total);
}

/* -- without the vocabulary: a memo the caller fills through tiktoken ------------------------ */

/* count(text, memo, encode, limit) -> int: the sum of the pieces' token counts, each read from
 * ``memo`` or put there as len(encode(piece)); once past ``limit`` (when it is not negative)
 * the sum so far, which is over the limit and at most the real count. */
static PyObject *count(PyObject *self, PyObject *args) {
    PyObject *text, *memo, *encode;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "UO!On", &text, &PyDict_Type, &memo, &encode, &limit)) {
        return NULL;
    }
    text_t t;
    if (read_text(text, &t) != 0) {
        return NULL;
    }
    Py_INCREF(memo); /* encode may run Python code; the text is immutable and held by args */
    long long total = 0;
    for (Py_ssize_t i = 0; i < t.n;) {
        Py_ssize_t k = piece_at(t.classes, i, t.n);
        PyObject *piece = PyUnicode_Substring(text, i, i + k);
        if (piece == NULL) {
            goto fail;
        }
        PyObject *known = PyDict_GetItemWithError(memo, piece); /* borrowed */
        long long tokens_of_piece;
        if (known != NULL) {
            tokens_of_piece = PyLong_AsLongLong(known);
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
            tokens_of_piece = length;
        }
        Py_DECREF(piece);
        if (tokens_of_piece == -1 && PyErr_Occurred()) {
            goto fail;
        }
        total += tokens_of_piece;
        if (limit >= 0 && total > limit) {
            break;
        }
        i += k;
    }
    Py_DECREF(memo);
    free_text(&t);
    return PyLong_FromLongLong(total);
fail:
    Py_DECREF(memo);
    free_text(&t);
    return NULL;
}

static PyMethodDef methods[] = {
    {"pieces", pieces, METH_O, "The cl100k pattern's pieces of a text."},
    {"load_ranks", load_ranks, METH_O,
     "load_ranks(data): the vocabulary count_bpe merges by, from a tiktoken file's bytes."},
    {"count_bpe", count_bpe, METH_VARARGS,
     "count_bpe(text, limit): the text's tokens by the loaded vocabulary, or None."},
    {"count", count, METH_VARARGS,
     "count(text, memo, encode, limit): the text's tokens from its pieces' counts."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pieces", "cl100k's pre-tokenizer and byte-pair merges.", -1, methods,
};

PyMODINIT_FUNC PyInit__pieces(void) {
    init_classes();
    return PyModule_Create(&module);
}
