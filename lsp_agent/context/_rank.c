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

static PyMethodDef methods[] = {
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
