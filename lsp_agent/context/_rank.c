/* PageRank's inner loops and a stable counting sort, for context/fastrank.py.
 *
 * numpy does both with general tools: a step of the power iteration is two bincounts over
 * gathered products (~30 ms a step on the kernel's 1.7 M edges, 42 steps), and a stable argsort
 * of name ids is a merge sort (~0.2 s for 3 M ids). Here the edges are already grouped by slot
 * and the definitions by file, so each step is two passes over contiguous runs, and ids below a
 * known bound sort by counting. Every float is the same one numpy makes: a run's sum starts at
 * 0.0 and adds its products one by one in edge order, as bincount does, and the module is built
 * with -ffp-contract=off so no product is fused into its sum. ``iterate`` runs every step of
 * the power iteration here, once its arrays are checked (a Python loop around ``push`` checked
 * them and converted the scalars to lists on every step: 0.70 s against 0.31 s on the kernel):
 * its scalar sums round as the interpreter's ``sum`` (``python_sum``), and a step's runs are
 * split over two threads, each run summed by one. The loops run without the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

typedef struct {
    Py_buffer view;
    int held;
} Held;

static void release(Held *held, size_t count) {
    for (size_t i = 0; i < count; i++) {
        if (held[i].held) {
            PyBuffer_Release(&held[i].view);
            held[i].held = 0;
        }
    }
}

/* A C-contiguous one-dimensional buffer of ``item_size``-byte items whose format is one of
 * ``formats`` (struct codes); ``writable`` for the outputs. */
static int take(PyObject *object, Held *held, const char *name, Py_ssize_t item_size,
                const char *formats, int writable) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(object, &held->view, flags) != 0) {
        return -1;
    }
    held->held = 1;
    const char *format = held->view.format ? held->view.format : "B";
    if (*format == '<' || *format == '=' || *format == '@') {
        format++;
    }
    if (held->view.ndim != 1 || held->view.itemsize != item_size || strlen(format) != 1 ||
        !strchr(formats, *format)) {
        PyErr_Format(PyExc_TypeError, "%s: expected a one-dimensional array of %zd-byte items (%s)",
                     name, item_size, formats);
        return -1;
    }
    return 0;
}

static Py_ssize_t length(const Held *held) { return held->view.shape[0]; }

/* A large scratch buffer, zeroed when asked, marked for transparent huge pages as numpy marks
 * its arrays of 4 MB and more: a first ranking's time went mostly to first-touch page faults,
 * and 4 KB pages are 512 faults per 2 MB. */
static void *scratch(size_t size, int zeroed) {
    void *made = zeroed ? calloc(size, 1) : malloc(size);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (made != NULL && size >= ((size_t)1 << 22)) {
        uintptr_t start = ((uintptr_t)made + 4095) & ~(uintptr_t)4095;
        madvise((void *)start, (uintptr_t)made + size - start, MADV_HUGEPAGE);
    }
#endif
    return made;
}

/* Runs of ``items`` by ``bounds`` (0 = bounds[0] <= ... <= bounds[runs] = items). */
static int check_bounds(const int64_t *bounds, Py_ssize_t runs, Py_ssize_t items,
                        const char *name) {
    if (bounds[0] != 0 || bounds[runs] != items) {
        PyErr_Format(PyExc_ValueError, "%s: bounds do not span the items", name);
        return -1;
    }
    for (Py_ssize_t k = 0; k < runs; k++) {
        if (bounds[k] > bounds[k + 1]) {
            PyErr_Format(PyExc_ValueError, "%s: bounds are not ascending", name);
            return -1;
        }
    }
    return 0;
}

#define CHECK_IDS(ids, count, limit, name)                                                     \
    for (Py_ssize_t i_ = 0; i_ < (count); i_++) {                                                 \
        if ((ids)[i_] < 0 || (Py_ssize_t)(ids)[i_] >= (limit)) {                                  \
            PyErr_Format(PyExc_ValueError, "%s: id %zd at %zd is outside [0, %zd)", (name),       \
                         (Py_ssize_t)(ids)[i_], i_, (Py_ssize_t)(limit));                         \
            goto fail;                                                                            \
        }                                                                                         \
    }

#define INT32 "i"
#define INTP "lqn"
#define INT64 "lq"
#define FLOAT64 "d"

/* One step's two sums over a range of runs: the edges of slots [slot_from, slot_to) into
 * unit, or the definitions of files [file_from, file_to) into incoming. */
typedef struct {
    const double *rank, *coeff;
    const int32_t *src, *inc;
    const int64_t *slot_bounds, *inc_bounds;
    double *unit, *incoming;
    Py_ssize_t from, to;
    int phase;  // 0: unit, 1: incoming
} Part;

static void *run_part(void *arg) {
    Part *part = arg;
    if (part->phase == 0) {
        for (Py_ssize_t s = part->from; s < part->to; s++) {
            double total = 0.0;
            for (int64_t e = part->slot_bounds[s]; e < part->slot_bounds[s + 1]; e++) {
                total += part->rank[part->src[e]] * part->coeff[e];
            }
            part->unit[s] = total;
        }
    } else {
        for (Py_ssize_t i = part->from; i < part->to; i++) {
            double total = 0.0;
            for (int64_t k = part->inc_bounds[i]; k < part->inc_bounds[i + 1]; k++) {
                total += part->unit[part->inc[k]];
            }
            part->incoming[i] = total;
        }
    }
    return NULL;
}

PyDoc_STRVAR(push_doc,
             "push(rank, src, coeff, slot_bounds, inc, inc_bounds, unit, incoming)\n\n"
             "One step's mass: unit[s] = sum of rank[src[e]] * coeff[e] over the edges e of\n"
             "slot s (slot_bounds[s] <= e < slot_bounds[s + 1]), then incoming[i] = sum of\n"
             "unit[inc[k]] over file i's run of inc (inc_bounds). Each sum adds from 0.0 in\n"
             "order, the floats numpy.bincount makes for the same inputs.");

static PyObject *push(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *objects[8];
    if (!PyArg_ParseTuple(args, "OOOOOOOO:push", &objects[0], &objects[1], &objects[2],
                          &objects[3], &objects[4], &objects[5], &objects[6], &objects[7])) {
        return NULL;
    }
    static const char *names[8] = {"rank", "src",  "coeff", "slot_bounds",
                                   "inc",  "inc_bounds", "unit", "incoming"};
    static const char *formats[8] = {FLOAT64, INT32, FLOAT64, INT64, INT32, INT64, FLOAT64, FLOAT64};
    static const Py_ssize_t sizes[8] = {8, 4, 8, 8, 4, 8, 8, 8};
    Held held[8];
    memset(held, 0, sizeof held);
    for (int i = 0; i < 8; i++) {
        if (take(objects[i], &held[i], names[i], sizes[i], formats[i], i >= 6) != 0) {
            release(held, 8);
            return NULL;
        }
    }
    const double *rank = held[0].view.buf;
    const int32_t *src = held[1].view.buf;
    const double *coeff = held[2].view.buf;
    const int64_t *slot_bounds = held[3].view.buf;
    const int32_t *inc = held[4].view.buf;
    const int64_t *inc_bounds = held[5].view.buf;
    double *unit = held[6].view.buf;
    double *incoming = held[7].view.buf;
    Py_ssize_t n = length(&held[0]), edges = length(&held[1]), slots = length(&held[6]);
    Py_ssize_t incs = length(&held[4]);
    if (length(&held[2]) != edges || length(&held[3]) != slots + 1 ||
        length(&held[5]) != n + 1 || length(&held[7]) != n) {
        PyErr_SetString(PyExc_ValueError, "push: array lengths do not agree");
        goto fail;
    }
    if (check_bounds(slot_bounds, slots, edges, "slot_bounds") != 0 ||
        check_bounds(inc_bounds, n, incs, "inc_bounds") != 0) {
        goto fail;
    }
    CHECK_IDS(src, edges, n, "src")
    CHECK_IDS(inc, incs, slots, "inc")
    Py_BEGIN_ALLOW_THREADS
    Part part = {.rank = rank, .coeff = coeff, .src = src, .inc = inc,
                 .slot_bounds = slot_bounds, .inc_bounds = inc_bounds, .unit = unit,
                 .incoming = incoming, .from = 0, .to = slots, .phase = 0};
    run_part(&part);
    part.phase = 1, part.to = n;
    run_part(&part);
    Py_END_ALLOW_THREADS
    release(held, 8);
    Py_RETURN_NONE;
fail:
    release(held, 8);
    return NULL;
}

/* Python's ``sum`` of a list of floats, in the interpreter's own rounding: a plain running
 * sum from 0.0 (CPython up to 3.11), or Neumaier's compensated sum (3.12 on). fastrank.py
 * probes which one ``sum`` is before it lets ``iterate`` run (``python_sum``). */
typedef struct {
    double total, compensation;
    int compensated;
} Sum;

static void sum_add(Sum *sum, double x) {
    if (!sum->compensated) {
        sum->total += x;
        return;
    }
    double t = sum->total + x;
    if (fabs(sum->total) >= fabs(x)) {
        sum->compensation += (sum->total - t) + x;
    } else {
        sum->compensation += (x - t) + sum->total;
    }
    sum->total = t;
}

static double sum_done(const Sum *sum) {
    if (sum->compensated && sum->compensation != 0.0 && isfinite(sum->compensation)) {
        return sum->total + sum->compensation;
    }
    return sum->total;
}

PyDoc_STRVAR(python_sum_doc,
             "python_sum(values, compensated) -> float\n\n"
             "The sum of a float64 array as iterate() makes it: plain from 0.0, or Neumaier's\n"
             "compensated sum. fastrank.py compares it with the interpreter's sum().");

static PyObject *python_sum(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *values_object;
    int compensated;
    if (!PyArg_ParseTuple(args, "Op:python_sum", &values_object, &compensated)) {
        return NULL;
    }
    Held held;
    memset(&held, 0, sizeof held);
    if (take(values_object, &held, "values", 8, FLOAT64, 0) != 0) {
        release(&held, 1);
        return NULL;
    }
    const double *values = held.view.buf;
    Sum sum = {0.0, 0.0, compensated};
    for (Py_ssize_t i = 0; i < length(&held); i++) {
        sum_add(&sum, values[i]);
    }
    release(&held, 1);
    return PyFloat_FromDouble(sum_done(&sum));
}

/* The run where ``bounds`` passes half its items: both halves of a step then take about as
 * long (a run is summed by one thread, so every float is the one a single thread makes). */
static Py_ssize_t middle(const int64_t *bounds, Py_ssize_t runs) {
    int64_t half = bounds[runs] / 2;
    Py_ssize_t low = 0, high = runs;
    while (low < high) {
        Py_ssize_t mid = low + (high - low) / 2;
        if (bounds[mid] < half) {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    return low;
}

/* Runs ``part`` split in two at ``split``: the upper half on a second thread when ``threads``
 * allows and one starts, else both on this one. */
static void run_split(Part *part, Py_ssize_t split, int threads) {
    Part upper = *part;
    upper.from = split;
    Part lower = *part;
    lower.to = split;
    pthread_t thread;
    if (threads > 1 && split > part->from && split < part->to &&
        pthread_create(&thread, NULL, run_part, &upper) == 0) {
        run_part(&lower);
        pthread_join(thread, NULL);
        return;
    }
    run_part(part);
}

PyDoc_STRVAR(iterate_doc,
             "iterate(rank, src, coeff, slot_bounds, inc, inc_bounds, self_share, dangling,\n"
             "        teleport, damping, max_iterations, tolerance, compensated, threads)\n"
             "-> iterations\n\n"
             "fastrank.power_iteration's whole loop: each step is push()'s two sums, then\n"
             "leak = damping * sum(rank[dangling]) + (1 - damping),\n"
             "new = damping * (incoming - rank * self_share) + leak * teleport, and\n"
             "delta = sum(|new - rank|), stopping once delta < tolerance. rank (float64, in\n"
             "and out) starts as the caller's vector and ends as the last step's. The scalar\n"
             "sums are python_sum's (``compensated``); a step's sums may be split over\n"
             "``threads`` (1 or 2) threads, a run never.");

static PyObject *iterate(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *objects[9];
    double damping, tolerance;
    Py_ssize_t max_iterations;
    int compensated, threads;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOdndpi:iterate", &objects[0], &objects[1],
                          &objects[2], &objects[3], &objects[4], &objects[5], &objects[6],
                          &objects[7], &objects[8], &damping, &max_iterations, &tolerance,
                          &compensated, &threads)) {
        return NULL;
    }
    static const char *names[9] = {"rank", "src", "coeff", "slot_bounds", "inc",
                                   "inc_bounds", "self_share", "dangling", "teleport"};
    static const char *formats[9] = {FLOAT64, INT32, FLOAT64, INT64, INT32,
                                     INT64,   FLOAT64, INTP,  FLOAT64};
    static const Py_ssize_t sizes[9] = {8, 4, 8, 8, 4, 8, 8, sizeof(Py_ssize_t), 8};
    Held held[9];
    memset(held, 0, sizeof held);
    double *work = NULL;
    for (int i = 0; i < 9; i++) {
        if (take(objects[i], &held[i], names[i], sizes[i], formats[i], i == 0) != 0) {
            release(held, 9);
            return NULL;
        }
    }
    double *rank = held[0].view.buf;
    const int32_t *src = held[1].view.buf;
    const double *coeff = held[2].view.buf;
    const int64_t *slot_bounds = held[3].view.buf;
    const int32_t *inc = held[4].view.buf;
    const int64_t *inc_bounds = held[5].view.buf;
    const double *self_share = held[6].view.buf;
    const Py_ssize_t *dangling = held[7].view.buf;
    const double *teleport = held[8].view.buf;
    Py_ssize_t n = length(&held[0]), edges = length(&held[1]), slots = length(&held[3]) - 1;
    Py_ssize_t incs = length(&held[4]), dangling_count = length(&held[7]);
    Py_ssize_t done = 0;
    if (slots < 0 || length(&held[2]) != edges || length(&held[5]) != n + 1 ||
        length(&held[6]) != n || length(&held[8]) != n) {
        PyErr_SetString(PyExc_ValueError, "iterate: array lengths do not agree");
        goto fail;
    }
    if (check_bounds(slot_bounds, slots, edges, "slot_bounds") != 0 ||
        check_bounds(inc_bounds, n, incs, "inc_bounds") != 0) {
        goto fail;
    }
    CHECK_IDS(src, edges, n, "src")
    CHECK_IDS(inc, incs, slots, "inc")
    CHECK_IDS(dangling, dangling_count, n, "dangling")
    // unit per slot, incoming and the next rank per file
    work = malloc(((size_t)slots + 2 * (size_t)n + 1) * sizeof(double));
    if (work == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    double *unit = work, *incoming = work + slots, *next = work + slots + n;
    double *current = rank;
    Part part = {.coeff = coeff, .src = src, .inc = inc, .slot_bounds = slot_bounds,
                 .inc_bounds = inc_bounds, .unit = unit, .incoming = incoming};
    Py_ssize_t slot_split = middle(slot_bounds, slots), file_split = middle(inc_bounds, n);
    while (done < max_iterations) {
        done++;
        part.rank = current;
        part.phase = 0, part.from = 0, part.to = slots;
        run_split(&part, slot_split, threads);
        part.phase = 1, part.from = 0, part.to = n;
        run_split(&part, file_split, threads);
        Sum lost = {0.0, 0.0, compensated};
        for (Py_ssize_t j = 0; j < dangling_count; j++) {
            sum_add(&lost, current[dangling[j]]);
        }
        double leak = damping * sum_done(&lost) + (1.0 - damping);
        Sum delta = {0.0, 0.0, compensated};
        for (Py_ssize_t i = 0; i < n; i++) {
            next[i] = damping * (incoming[i] - current[i] * self_share[i]) + leak * teleport[i];
            sum_add(&delta, fabs(next[i] - current[i]));
        }
        double *swap = current;
        current = next;
        next = swap;
        if (sum_done(&delta) < tolerance) {
            break;
        }
    }
    if (current != rank) {
        memcpy(rank, current, (size_t)n * sizeof(double));
    }
    Py_END_ALLOW_THREADS
    free(work);
    release(held, 9);
    return PyLong_FromSsize_t(done);
fail:
    free(work);
    release(held, 9);
    return NULL;
}

PyDoc_STRVAR(stable_order_doc,
             "stable_order(keys, key_count, out)\n\n"
             "out = the indices of keys sorted by key, equal keys in index order: what\n"
             "numpy.argsort(keys, kind='stable') returns, by counting (0 <= key < key_count).");

static PyObject *stable_order(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *keys_object, *out_object;
    Py_ssize_t key_count;
    if (!PyArg_ParseTuple(args, "OnO:stable_order", &keys_object, &key_count, &out_object)) {
        return NULL;
    }
    Held held[2];
    memset(held, 0, sizeof held);
    if (take(keys_object, &held[0], "keys", sizeof(Py_ssize_t), INTP, 0) != 0 ||
        take(out_object, &held[1], "out", sizeof(Py_ssize_t), INTP, 1) != 0) {
        release(held, 2);
        return NULL;
    }
    const Py_ssize_t *keys = held[0].view.buf;
    Py_ssize_t *out = held[1].view.buf;
    Py_ssize_t count = length(&held[0]);
    if (length(&held[1]) != count || key_count < 0) {
        PyErr_SetString(PyExc_ValueError, "stable_order: out must be as long as keys");
        goto fail;
    }
    CHECK_IDS(keys, count, key_count, "keys")
    Py_ssize_t *next = calloc((size_t)key_count + 1, sizeof(Py_ssize_t));
    if (next == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++) {
        next[keys[i] + 1]++;
    }
    for (Py_ssize_t k = 0; k < key_count; k++) {
        next[k + 1] += next[k];  // next[k]: where key k's first index goes
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        out[next[keys[i]]++] = i;
    }
    Py_END_ALLOW_THREADS
    free(next);
    release(held, 2);
    Py_RETURN_NONE;
fail:
    release(held, 2);
    return NULL;
}

PyDoc_STRVAR(edge_targets_doc,
             "edge_targets(ref_bounds, names, def_bounds, defined, definer_start, targets, own,\n"
             "             used) -> (kept edges, used names, definitions of used names)\n\n"
             "Per reference edge e of file i (ref_bounds[i] <= e < ref_bounds[i + 1]): own[e] =\n"
             "whether file i defines names[e] (its run of ``defined`` is ascending), targets[e] =\n"
             "the name's definers (definer_start) other than file i; used[j] = some edge with\n"
             "targets > 0 names j. Returns None when a file's definitions are not ascending.\n"
             "Past 2**20 edges the files are split in two halves by edges, one per thread (each\n"
             "edge's values are its file's alone: the same arrays).");

/* edge_targets's loop over files [from, to): each edge's ``own`` and ``targets``, each name
 * with a kept edge marked in ``used``, and the kept edges counted. */
typedef struct {
    const int64_t *ref_bounds, *def_bounds, *definer_start;
    const int32_t *name, *defined;
    int32_t *targets;
    uint8_t *own, *used;
    Py_ssize_t from, to, kept;
} TargetPart;

enum { TARGET_THREAD_EDGES = 1 << 20 };  // below this one thread is as quick

static void *target_part(void *arg) {
    TargetPart *p = arg;
    Py_ssize_t kept = 0;
    for (Py_ssize_t i = p->from; i < p->to; i++) {
        const int32_t *first = p->defined + p->def_bounds[i];
        const int32_t *last = p->defined + p->def_bounds[i + 1];
        for (int64_t e = p->ref_bounds[i]; e < p->ref_bounds[i + 1]; e++) {
            int32_t j = p->name[e];
            const int32_t *lo = first, *hi = last;  // binary search of the file's definitions
            while (lo < hi) {
                const int32_t *mid = lo + (hi - lo) / 2;
                if (*mid < j) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            uint8_t is_own = lo < last && *lo == j;
            int64_t others = p->definer_start[j + 1] - p->definer_start[j] - is_own;
            p->own[e] = is_own;
            p->targets[e] = others > 0 ? (int32_t)others : 0;
            if (others > 0) {
                kept++;
                p->used[j] = 1;
            }
        }
    }
    p->kept = kept;
    return NULL;
}

static PyObject *edge_targets(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *objects[8];
    if (!PyArg_ParseTuple(args, "OOOOOOOO:edge_targets", &objects[0], &objects[1], &objects[2],
                          &objects[3], &objects[4], &objects[5], &objects[6], &objects[7])) {
        return NULL;
    }
    static const char *names[8] = {"ref_bounds",    "names",   "def_bounds", "defined",
                                   "definer_start", "targets", "own",        "used"};
    static const char *formats[8] = {INT64, INT32, INT64, INT32, INT64, INT32, "B?", "B?"};
    static const Py_ssize_t sizes[8] = {8, 4, 8, 4, 8, 4, 1, 1};
    Held held[8];
    memset(held, 0, sizeof held);
    for (int i = 0; i < 8; i++) {
        if (take(objects[i], &held[i], names[i], sizes[i], formats[i], i >= 5) != 0) {
            release(held, 8);
            return NULL;
        }
    }
    const int64_t *ref_bounds = held[0].view.buf, *def_bounds = held[2].view.buf;
    const int32_t *name = held[1].view.buf, *defined = held[3].view.buf;
    const int64_t *definer_start = held[4].view.buf;
    int32_t *targets = held[5].view.buf;
    uint8_t *own = held[6].view.buf, *used = held[7].view.buf;
    Py_ssize_t n = length(&held[0]) - 1, edges = length(&held[1]), defs = length(&held[3]);
    Py_ssize_t name_count = length(&held[4]) - 1;
    if (n < 0 || name_count < 0 || length(&held[2]) != n + 1 || length(&held[5]) != edges ||
        length(&held[6]) != edges || length(&held[7]) != name_count) {
        PyErr_SetString(PyExc_ValueError, "edge_targets: array lengths do not agree");
        goto fail;
    }
    if (check_bounds(ref_bounds, n, edges, "ref_bounds") != 0 ||
        check_bounds(def_bounds, n, defs, "def_bounds") != 0 ||
        check_bounds(definer_start, name_count, definer_start[name_count], "definer_start") != 0) {
        goto fail;
    }
    CHECK_IDS(name, edges, name_count, "names")
    CHECK_IDS(defined, defs, name_count, "defined")
    Py_ssize_t kept = 0, used_count = 0, used_defs = 0;
    int ascending = 1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && ascending; i++) {
        for (int64_t d = def_bounds[i] + 1; d < def_bounds[i + 1]; d++) {
            if (defined[d - 1] >= defined[d]) {
                ascending = 0;
                break;
            }
        }
    }
    memset(used, 0, (size_t)name_count);
    if (ascending) {
        TargetPart lower = {ref_bounds, def_bounds, definer_start, name, defined,
                            targets,    own,        used,          0,    n,       0};
        TargetPart upper = lower;
        Py_ssize_t split = middle(ref_bounds, n);
        // The upper half's files on a second thread, marking the names they use apart.
        uint8_t *upper_used = edges >= TARGET_THREAD_EDGES && split > 0 && split < n
                                  ? scratch((size_t)name_count, 1)
                                  : NULL;
        pthread_t thread;
        int threaded = 0;
        if (upper_used != NULL) {
            lower.to = upper.from = split;
            upper.used = upper_used;
            threaded = pthread_create(&thread, NULL, target_part, &upper) == 0;
            if (!threaded) {
                lower.to = n;
            }
        }
        target_part(&lower);
        if (threaded) {
            pthread_join(thread, NULL);
            for (Py_ssize_t j = 0; j < name_count; j++) {
                used[j] |= upper_used[j];
            }
        }
        free(upper_used);
        kept = lower.kept + (threaded ? upper.kept : 0);
        for (Py_ssize_t j = 0; j < name_count; j++) {
            used_count += used[j];
        }
    }
    for (Py_ssize_t d = 0; d < defs && ascending; d++) {
        used_defs += used[defined[d]];
    }
    Py_END_ALLOW_THREADS
    release(held, 8);
    if (!ascending) {
        Py_RETURN_NONE;
    }
    return Py_BuildValue("nnn", kept, used_count, used_defs);
fail:
    release(held, 8);
    return NULL;
}

PyDoc_STRVAR(walk_runs_doc,
             "walk_runs(ref_bounds, names, counts, def_bounds, defined, targets, own, weights,\n"
             "          src, coeff, slot_bounds, inc, inc_bounds, self_share, dangling)\n"
             "          -> number of dangling files\n\n"
             "fastrank.graph_arrays's transitions from edge_targets's ``targets`` and ``own``\n"
             "and each used name's weight, as the runs ``iterate`` reads: the kept edges\n"
             "(targets > 0) grouped by slot (names with one edge first, then the others, each by\n"
             "id; a slot's edges in file order) into src (int32) and coeff, with slot_bounds;\n"
             "each file's definitions of used names into inc (their slots, int32), with\n"
             "inc_bounds; self_share per file; and the files with no kept edge into the head of\n"
             "``dangling``. Every float is the one numpy makes: share = weight * sqrt(count), a\n"
             "file's total adds share * targets from 0.0 in edge order (bincount), coeff =\n"
             "share / total, and self_share adds the coeffs of its own names in edge order.\n"
             "Each edge's slot and each definition's file are the runs' (no array of them is\n"
             "made: on the kernel they were ~60 MB of first-touched memory).");

static PyObject *walk_runs(PyObject *self, PyObject *args) {
    (void)self;
    enum { COUNT = 15 };
    PyObject *objects[COUNT];
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOOOOOO:walk_runs", &objects[0], &objects[1],
                          &objects[2], &objects[3], &objects[4], &objects[5], &objects[6],
                          &objects[7], &objects[8], &objects[9], &objects[10], &objects[11],
                          &objects[12], &objects[13], &objects[14])) {
        return NULL;
    }
    static const char *names[COUNT] = {
        "ref_bounds", "names",       "counts", "def_bounds", "defined",
        "targets",    "own",         "weights", "src",       "coeff",
        "slot_bounds", "inc",        "inc_bounds", "self_share", "dangling"};
    static const char *formats[COUNT] = {INT64, INT32, INT32, INT64, INT32,
                                         INT32, "B?",  FLOAT64, INT32, FLOAT64,
                                         INT64, INT32, INT64, FLOAT64, INTP};
    static const Py_ssize_t sizes[COUNT] = {8, 4, 4, 8, 4, 4, 1, 8, 4, 8, 8, 4, 8, 8,
                                            sizeof(Py_ssize_t)};
    Held held[COUNT];
    memset(held, 0, sizeof held);
    for (int i = 0; i < COUNT; i++) {
        if (take(objects[i], &held[i], names[i], sizes[i], formats[i], i >= 8) != 0) {
            release(held, COUNT);
            return NULL;
        }
    }
    const int64_t *ref_bounds = held[0].view.buf, *def_bounds = held[3].view.buf;
    const int32_t *name = held[1].view.buf, *count = held[2].view.buf;
    const int32_t *defined = held[4].view.buf, *targets = held[5].view.buf;
    const uint8_t *own = held[6].view.buf;
    const double *weights = held[7].view.buf;
    int32_t *src = held[8].view.buf, *inc = held[11].view.buf;
    double *coeff = held[9].view.buf, *self_share = held[13].view.buf;
    int64_t *slot_bounds = held[10].view.buf, *inc_bounds = held[12].view.buf;
    Py_ssize_t *dangling = held[14].view.buf;
    Py_ssize_t n = length(&held[0]) - 1, edges = length(&held[1]), defs = length(&held[4]);
    Py_ssize_t name_count = length(&held[7]), kept = length(&held[8]);
    Py_ssize_t slots = length(&held[10]) - 1, incs = length(&held[11]);
    int32_t *slot_of = NULL;
    int64_t *next = NULL;
    double *share = NULL;
    if (n < 0 || slots < 0 || length(&held[2]) != edges || length(&held[3]) != n + 1 ||
        length(&held[5]) != edges || length(&held[6]) != edges || length(&held[9]) != kept ||
        length(&held[12]) != n + 1 || length(&held[13]) != n || length(&held[14]) != n) {
        PyErr_SetString(PyExc_ValueError, "walk_runs: array lengths do not agree");
        goto fail;
    }
    if (n > INT32_MAX || slots > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "walk_runs: too many files or names for int32 ids");
        goto fail;
    }
    if (check_bounds(ref_bounds, n, edges, "ref_bounds") != 0 ||
        check_bounds(def_bounds, n, defs, "def_bounds") != 0) {
        goto fail;
    }
    CHECK_IDS(name, edges, name_count, "names")
    CHECK_IDS(defined, defs, name_count, "defined")
    Py_ssize_t found_kept = 0, widest = 0;  // widest: the most kept edges of one file
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t row = 0;
        for (int64_t e = ref_bounds[i]; e < ref_bounds[i + 1]; e++) {
            if (targets[e] < 0 || count[e] < 0) {
                PyErr_SetString(PyExc_ValueError, "walk_runs: negative targets or counts");
                goto fail;
            }
            row += targets[e] > 0;
        }
        found_kept += row;
        widest = row > widest ? row : widest;
    }
    if (found_kept != kept) {
        PyErr_SetString(PyExc_ValueError, "walk_runs: src is not as long as the kept edges");
        goto fail;
    }
    slot_of = scratch(((size_t)name_count + 1) * sizeof(int32_t), 0);
    next = scratch(((size_t)name_count + 1) * sizeof(int64_t), 1);
    share = malloc(((size_t)widest + 1) * sizeof(double));  // one file's shares at a time
    if (slot_of == NULL || next == NULL || share == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    // Edges per name (in ``next``), then the slots: names with one edge first, each group by id.
    for (Py_ssize_t e = 0; e < edges; e++) {
        if (targets[e] > 0) {
            next[name[e]]++;
        }
    }
    Py_ssize_t singles = 0, used = 0;
    for (Py_ssize_t j = 0; j < name_count; j++) {
        singles += next[j] == 1;
        used += next[j] > 0;
    }
    if (used != slots) {
        PyErr_SetString(PyExc_ValueError, "walk_runs: slot_bounds do not match the used names");
        goto fail;
    }
    Py_ssize_t incs_found = 0;
    for (Py_ssize_t d = 0; d < defs; d++) {
        incs_found += next[defined[d]] > 0;
    }
    if (incs_found != incs) {
        PyErr_SetString(PyExc_ValueError, "walk_runs: inc is not as long as the used definitions");
        goto fail;
    }
    Py_ssize_t dangling_count = 0;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t single_slot = 0, multiple_slot = singles;
    for (Py_ssize_t j = 0; j < name_count; j++) {
        slot_of[j] = next[j] == 0 ? -1 : (int32_t)(next[j] == 1 ? single_slot++ : multiple_slot++);
    }
    slot_bounds[0] = 0;
    for (Py_ssize_t j = 0; j < name_count; j++) {
        if (slot_of[j] >= 0) {
            slot_bounds[slot_of[j] + 1] = next[j];
        }
    }
    for (Py_ssize_t s = 0; s < slots; s++) {
        slot_bounds[s + 1] += slot_bounds[s];
    }
    for (Py_ssize_t j = 0; j < name_count; j++) {  // where the name's next edge goes
        next[j] = slot_of[j] >= 0 ? slot_bounds[slot_of[j]] : 0;
    }
    // Shares per file, in edge order: the sums bincount makes.
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t k = 0;
        double total = 0.0;
        for (int64_t e = ref_bounds[i]; e < ref_bounds[i + 1]; e++) {
            if (targets[e] > 0) {
                share[k] = weights[name[e]] * sqrt((double)count[e]);
                total += share[k] * (double)targets[e];
                k++;
            }
        }
        if (k == 0) {
            dangling[dangling_count++] = i;
            self_share[i] = 0.0;
            continue;
        }
        double own_total = 0.0;
        k = 0;
        for (int64_t e = ref_bounds[i]; e < ref_bounds[i + 1]; e++) {
            if (targets[e] > 0) {
                double value = share[k++] / total;
                if (own[e]) {
                    own_total += value;
                }
                int64_t at = next[name[e]]++;
                src[at] = (int32_t)i;
                coeff[at] = value;
            }
        }
        self_share[i] = own_total;
    }
    Py_ssize_t m = 0;
    inc_bounds[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        for (int64_t d = def_bounds[i]; d < def_bounds[i + 1]; d++) {
            if (slot_of[defined[d]] >= 0) {
                inc[m++] = slot_of[defined[d]];
            }
        }
        inc_bounds[i + 1] = m;
    }
    Py_END_ALLOW_THREADS
    free(slot_of);
    free(next);
    free(share);
    release(held, COUNT);
    return PyLong_FromSsize_t(dangling_count);
fail:
    free(slot_of);
    free(next);
    free(share);
    release(held, COUNT);
    return NULL;
}

/* The string tests of name_tests on UTF-8 bytes (ASCII only; 128 otherwise). */
static uint8_t bytes_tests(const char *text, Py_ssize_t size) {
    Py_ssize_t first = 0, last = size;
    int lower = 0, upper = 0;
    for (Py_ssize_t i = 0; i < size; i++) {
        if ((unsigned char)text[i] >= 128) {
            return 128;
        }
        lower |= text[i] >= 'a' && text[i] <= 'z';
        upper |= text[i] >= 'A' && text[i] <= 'Z';
    }
    while (first < last && text[first] == '_') {
        first++;
    }
    while (last > first && text[last - 1] == '_') {
        last--;
    }
    int snake = memchr(text + first, '_', (size_t)(last - first)) != NULL;
    int camel = lower == upper;  // not (islower or isupper)
    return (uint8_t)(((snake || camel) && size >= 8) | (size > 0 && text[0] == '_') << 1);
}

PyDoc_STRVAR(name_tests_doc,
             "name_tests(names, ids, out)\n\n"
             "For each k, the string tests of ranking.name_weight on names[ids[k]] as bits of\n"
             "out[k]: 1 = long (8 characters or more) and snake or camel case, 2 = starts\n"
             "with an underscore; 128 = not ASCII, left to Python (its str methods know every\n"
             "script's case).");

static PyObject *name_tests(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *names, *ids_object, *out_object;
    if (!PyArg_ParseTuple(args, "O!OO:name_tests", &PyTuple_Type, &names, &ids_object,
                          &out_object)) {
        return NULL;
    }
    Held held[2];
    memset(held, 0, sizeof held);
    if (take(ids_object, &held[0], "ids", 8, INT64, 0) != 0 ||
        take(out_object, &held[1], "out", 1, "B", 1) != 0) {
        release(held, 2);
        return NULL;
    }
    const int64_t *ids = held[0].view.buf;
    uint8_t *out = held[1].view.buf;
    Py_ssize_t count = length(&held[0]), name_count = PyTuple_GET_SIZE(names);
    if (length(&held[1]) != count) {
        PyErr_SetString(PyExc_ValueError, "name_tests: out must be as long as ids");
        goto fail;
    }
    CHECK_IDS(ids, count, name_count, "ids")
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *name = PyTuple_GET_ITEM(names, ids[k]);
        if (!PyUnicode_Check(name)) {
            PyErr_SetString(PyExc_TypeError, "name_tests: names must be strings");
            goto fail;
        }
        if (!PyUnicode_IS_ASCII(name)) {
            out[k] = 128;
            continue;
        }
        out[k] = bytes_tests((const char *)PyUnicode_1BYTE_DATA(name), PyUnicode_GET_LENGTH(name));
    }
    release(held, 2);
    Py_RETURN_NONE;
fail:
    release(held, 2);
    return NULL;
}

PyDoc_STRVAR(packed_name_tests_doc,
             "packed_name_tests(joined, count, out, starts, used=None)\n\n"
             "name_tests on each of the ``count`` names joined by NUL in ``joined`` (UTF-8, as\n"
             "the index's packed name table holds them), in one pass and with no string made:\n"
             "out[j] gets name j's bits (128 = not ASCII, left to Python), and starts[j] its\n"
             "offset (starts[count] = len(joined) + 1). With ``used`` (a byte per name), only\n"
             "the names it marks are tested and the others get 0: the kernel's walk weighs\n"
             "250k of its 2.3 M names.");

static PyObject *packed_name_tests(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *joined_object, *out_object, *starts_object, *used_object = Py_None;
    Py_ssize_t count;
    if (!PyArg_ParseTuple(args, "OnOO|O:packed_name_tests", &joined_object, &count, &out_object,
                          &starts_object, &used_object)) {
        return NULL;
    }
    Held held[4];
    memset(held, 0, sizeof held);
    if (take(joined_object, &held[0], "joined", 1, "Bbc", 0) != 0 ||
        take(out_object, &held[1], "out", 1, "B", 1) != 0 ||
        take(starts_object, &held[2], "starts", 8, INT64, 1) != 0 ||
        (used_object != Py_None && take(used_object, &held[3], "used", 1, "B?", 0) != 0)) {
        release(held, 4);
        return NULL;
    }
    const char *joined = held[0].view.buf;
    Py_ssize_t size = length(&held[0]);
    uint8_t *out = held[1].view.buf;
    int64_t *starts = held[2].view.buf;
    const uint8_t *used = held[3].held ? held[3].view.buf : NULL;
    if (count < 0 || length(&held[1]) != count || length(&held[2]) != count + 1 ||
        (used != NULL && length(&held[3]) != count)) {
        PyErr_SetString(PyExc_ValueError, "packed_name_tests: array lengths do not agree");
        release(held, 4);
        return NULL;
    }
    int whole;
    Py_BEGIN_ALLOW_THREADS
    const char *at = joined, *end = joined + size;
    Py_ssize_t j = 0;
    if (count == 0) {
        whole = size == 0;
    } else {
        for (; j < count; j++) {
            const char *nul = at < end ? memchr(at, '\0', (size_t)(end - at)) : NULL;
            const char *stop = nul != NULL ? nul : end;
            if (nul == NULL && j != count - 1) {
                break;  // fewer names than ``count``
            }
            starts[j] = at - joined;
            out[j] = used == NULL || used[j] ? bytes_tests(at, (Py_ssize_t)(stop - at)) : 0;
            at = stop + 1;
            if (nul == NULL) {
                j++;
                break;
            }
        }
        whole = j == count && at > end;  // the last name ended the bytes
    }
    starts[count] = size + 1;
    Py_END_ALLOW_THREADS
    release(held, 4);
    if (!whole) {
        PyErr_Format(PyExc_ValueError, "packed_name_tests: the bytes do not hold %zd names", count);
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(count_starts_doc,
             "count_starts(ids, starts)\n\n"
             "Where each id's run would start were ``ids`` sorted: starts[0] = 0 and\n"
             "starts[j + 1] = starts[j] + the number of ids equal to j (int64, one longer than\n"
             "the number of ids it counts), as np.cumsum(np.bincount(ids)) makes them, without\n"
             "bincount's int64 copy of the ids and its counts beside the starts (~40 MB of\n"
             "first-touched memory on the kernel's 2.9 M definitions).");

static PyObject *count_starts(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *ids_object, *starts_object;
    if (!PyArg_ParseTuple(args, "OO:count_starts", &ids_object, &starts_object)) {
        return NULL;
    }
    Held held[2];
    memset(held, 0, sizeof held);
    if (take(ids_object, &held[0], "ids", 4, INT32, 0) != 0 ||
        take(starts_object, &held[1], "starts", 8, INT64, 1) != 0) {
        release(held, 2);
        return NULL;
    }
    const int32_t *ids = held[0].view.buf;
    int64_t *starts = held[1].view.buf;
    Py_ssize_t count = length(&held[0]), limit = length(&held[1]) - 1;
    if (limit < 0) {
        PyErr_SetString(PyExc_ValueError, "count_starts: starts must not be empty");
        release(held, 2);
        return NULL;
    }
    CHECK_IDS(ids, count, limit, "ids")
    Py_BEGIN_ALLOW_THREADS
    memset(starts, 0, (size_t)(limit + 1) * sizeof(int64_t));
    for (Py_ssize_t i = 0; i < count; i++) {
        starts[ids[i] + 1]++;
    }
    for (Py_ssize_t j = 0; j < limit; j++) {
        starts[j + 1] += starts[j];
    }
    Py_END_ALLOW_THREADS
    release(held, 2);
    Py_RETURN_NONE;
fail:
    release(held, 2);
    return NULL;
}

PyDoc_STRVAR(join_int32_doc,
             "join_int32(rows, out, bounds)\n\n"
             "The rows (a list of int32 buffers, such as array('i')) end to end into out, and\n"
             "bounds[0] = 0, bounds[i + 1] = where row i ends: what b''.join(rows) and the\n"
             "running total of their lengths make, into arrays numpy allocated (its huge-page\n"
             "advice; a bytes object of the kernel's 7.9 M references took ~7,600 page faults).");

static PyObject *join_int32(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *rows, *out_object, *bounds_object;
    if (!PyArg_ParseTuple(args, "O!OO:join_int32", &PyList_Type, &rows, &out_object,
                          &bounds_object)) {
        return NULL;
    }
    Held held[3];
    memset(held, 0, sizeof held);
    if (take(out_object, &held[0], "out", 4, INT32, 1) != 0 ||
        take(bounds_object, &held[1], "bounds", 8, INT64, 1) != 0) {
        release(held, 3);
        return NULL;
    }
    int32_t *out = held[0].view.buf;
    int64_t *bounds = held[1].view.buf;
    Py_ssize_t n = PyList_GET_SIZE(rows), room = length(&held[0]);
    if (length(&held[1]) != n + 1) {
        PyErr_SetString(PyExc_ValueError, "join_int32: bounds must be one longer than rows");
        release(held, 3);
        return NULL;
    }
    int64_t at = 0;
    bounds[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (take(PyList_GET_ITEM(rows, i), &held[2], "row", 4, INT32, 0) != 0) {
            release(held, 3);
            return NULL;
        }
        Py_ssize_t items = length(&held[2]);
        if (at + items > room) {
            PyErr_SetString(PyExc_ValueError, "join_int32: out is shorter than the rows");
            release(held, 3);
            return NULL;
        }
        memcpy(out + at, held[2].view.buf, (size_t)items * sizeof(int32_t));
        release(&held[2], 1);
        at += items;
        bounds[i + 1] = at;
    }
    release(held, 3);
    if (at != room) {
        PyErr_SetString(PyExc_ValueError, "join_int32: out is longer than the rows");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"join_int32", join_int32, METH_VARARGS, join_int32_doc},
    {"packed_name_tests", packed_name_tests, METH_VARARGS, packed_name_tests_doc},
    {"count_starts", count_starts, METH_VARARGS, count_starts_doc},
    {"name_tests", name_tests, METH_VARARGS, name_tests_doc},
    {"edge_targets", edge_targets, METH_VARARGS, edge_targets_doc},
    {"walk_runs", walk_runs, METH_VARARGS, walk_runs_doc},
    {"push", push, METH_VARARGS, push_doc},
    {"stable_order", stable_order, METH_VARARGS, stable_order_doc},
    {"iterate", iterate, METH_VARARGS, iterate_doc},
    {"python_sum", python_sum, METH_VARARGS, python_sum_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "lsp_agent.context._rank",
    .m_doc = "PageRank's inner loops and a stable counting sort (see _rank.c).", .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__rank(void) { return PyModule_Create(&module); }
