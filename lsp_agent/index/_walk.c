/* One folder's listing for the index's walk (discovery.py): every entry's name, kind, size and
 * mtime from readdir + fstatat, with the GIL released while the system calls run.
 *
 * os.scandir gives the same facts through a DirEntry per entry and a method call per fact
 * (is_symlink, is_dir, stat, then the stat result's fields): on the kernel's 83k entries that
 * was most of a warm start's walk. Here a folder is one call returning a sorted list of
 * (name, kind, size, mtime_ns) tuples; the kinds are discovery.py's FILE ... BROKEN.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { FILE_KIND, DIR_KIND, OTHER_KIND, LINK_FILE, LINK_DIR, LINK_OTHER, BROKEN };

typedef struct {
    char *name;
    int kind;
    long long size;
    long long mtime_ns;
} Item;

typedef struct {
    Item *items;
    size_t count;
    size_t capacity;
} Items;

static void items_free(Items *items) {
    for (size_t i = 0; i < items->count; i++) free(items->items[i].name);
    free(items->items);
}

static int items_push(Items *items, const char *name, int kind, const struct stat *st) {
    if (items->count == items->capacity) {
        size_t capacity = items->capacity ? items->capacity * 2 : 64;
        Item *grown = realloc(items->items, capacity * sizeof(Item));
        if (grown == NULL) return -1;
        items->items = grown;
        items->capacity = capacity;
    }
    char *copy = strdup(name);
    if (copy == NULL) return -1;
    Item *item = &items->items[items->count++];
    item->name = copy;
    item->kind = kind;
    item->size = st ? (long long)st->st_size : 0;
    item->mtime_ns =
        st ? (long long)st->st_mtim.tv_sec * 1000000000LL + (long long)st->st_mtim.tv_nsec : 0;
    return 0;
}

static int kind_of(mode_t mode, int linked) {
    if (S_ISREG(mode)) return linked ? LINK_FILE : FILE_KIND;
    if (S_ISDIR(mode)) return linked ? LINK_DIR : DIR_KIND;
    return linked ? LINK_OTHER : OTHER_KIND;
}

/* Reads the folder without the GIL. Returns 0, or an errno when it cannot be listed; an
 * entry whose stat fails is BROKEN (a dangling link, a loop, a file gone since listing). */
static int read_folder(const char *path, Items *items) {
    DIR *dir = opendir(path);
    if (dir == NULL) return errno ? errno : EIO;
    int fd = dirfd(dir);
    struct dirent *entry;
    int failed = 0;
    errno = 0;
    while ((entry = readdir(dir)) != NULL) {
        const char *name = entry->d_name;
        if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) continue;
        struct stat st;
        int pushed;
        unsigned char type = entry->d_type;
        if (type == DT_UNKNOWN) {  /* some filesystems do not say: ask without following */
            if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
                pushed = items_push(items, name, BROKEN, NULL);
                goto next;
            }
            type = S_ISLNK(st.st_mode) ? DT_LNK : S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
        }
        if (type == DT_DIR) {  /* a folder that is no link: known from the listing */
            pushed = items_push(items, name, DIR_KIND, NULL);
        } else if (fstatat(fd, name, &st, 0) != 0) {  /* follows links, as os.stat */
            pushed = items_push(items, name, BROKEN, NULL);
        } else {
            pushed = items_push(items, name, kind_of(st.st_mode, type == DT_LNK), &st);
        }
    next:
        if (pushed != 0) {
            failed = ENOMEM;
            break;
        }
        errno = 0;
    }
    if (!failed && errno != 0) failed = errno;
    closedir(dir);
    return failed;
}

static PyObject *list_folder(PyObject *self, PyObject *arg) {
    (void)self;
    PyObject *encoded = NULL;
    if (!PyUnicode_FSConverter(arg, &encoded)) return NULL;
    const char *path = PyBytes_AS_STRING(encoded);
    Items items = {NULL, 0, 0};
    int error;
    Py_BEGIN_ALLOW_THREADS
    error = read_folder(path, &items);
    Py_END_ALLOW_THREADS
    if (error != 0) {
        items_free(&items);
        Py_DECREF(encoded);
        if (error == ENOMEM) return PyErr_NoMemory();
        errno = error;
        return PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, arg);
    }
    Py_DECREF(encoded);
    PyObject *out = PyList_New((Py_ssize_t)items.count);
    if (out == NULL) goto fail;
    for (size_t i = 0; i < items.count; i++) {
        Item *item = &items.items[i];
        PyObject *row = Py_BuildValue("(NiLL)", PyUnicode_DecodeFSDefault(item->name), item->kind,
                                      item->size, item->mtime_ns);
        if (row == NULL) goto fail;
        PyList_SET_ITEM(out, (Py_ssize_t)i, row);
    }
    items_free(&items);
    /* Sorted as Python sorts the names (code points), which is what the walk relies on. */
    if (PyList_Sort(out) != 0) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
fail:
    Py_XDECREF(out);
    items_free(&items);
    return NULL;
}

static PyMethodDef methods[] = {
    {"list_folder", list_folder, METH_O,
     "list_folder(path) -> sorted [(name, kind, size, mtime_ns)] of the folder's entries"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_walk", "One folder's listing for the index's walk.", -1, methods,
};

PyMODINIT_FUNC PyInit__walk(void) { return PyModule_Create(&module); }
