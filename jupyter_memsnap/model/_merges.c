/*
 * jupyter_memsnap.model._merges: linear merges of sorted ids, the kernels of diffs between
 * snapshots and of cells of birth.
 *
 * Inputs come through the buffer protocol (C-contiguous; lengths checked against the item
 * size); results are bytes objects the Python side views with np.frombuffer.  Every index
 * read from an input is bound-checked, so inconsistent arrays raise ValueError, never crash,
 * and the merges run with the GIL released.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* n items of `size` bytes in b, or -1 with ValueError (also when b is not aligned for them). */
static Py_ssize_t items(const Py_buffer *b, Py_ssize_t size, const char *name) {
    if (b->len % size) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes is not a whole number of %zd-byte items",
                     name, b->len, size);
        return -1;
    }
    if ((uintptr_t)b->buf % (uintptr_t)size) {
        PyErr_Format(PyExc_ValueError, "%s: not aligned to its %zd-byte items", name, size);
        return -1;
    }
    return b->len / size;
}

/* Index of the first id not greater than the one before it, or -1: ids must be strictly
   ascending (the merges below rely on it to stay in bounds). */
static Py_ssize_t unsorted_at(const uint64_t *ids, Py_ssize_t n) {
    for (Py_ssize_t i = 1; i < n; i++)
        if (ids[i] <= ids[i - 1]) return i;
    return -1;
}

static int unsorted_error(const char *name, Py_ssize_t at) {
    PyErr_Format(PyExc_ValueError, "%s must be strictly ascending (it is not at index %zd)",
                 name, at);
    return -1;
}

/* match(a, b): for each id of the ascending uint64 array b, its position in the ascending
   array a, or -1. */
static PyObject *diff_match(PyObject *self, PyObject *args) {
    Py_buffer a, b;
    if (!PyArg_ParseTuple(args, "y*y*:match", &a, &b)) return NULL;
    PyObject *out = NULL;
    Py_ssize_t na = items(&a, 8, "a"), nb = na < 0 ? -1 : items(&b, 8, "b");
    if (nb < 0) goto done;
    if (!(out = PyBytes_FromStringAndSize(NULL, nb * (Py_ssize_t)sizeof(int64_t)))) goto done;
    const uint64_t *ka = a.buf, *kb = b.buf;
    int64_t *pos = (int64_t *)PyBytes_AS_STRING(out);
    Py_ssize_t bad_a, bad_b;
    Py_BEGIN_ALLOW_THREADS
    bad_a = unsorted_at(ka, na);
    bad_b = bad_a < 0 ? unsorted_at(kb, nb) : -1;
    Py_ssize_t i = 0;
    for (Py_ssize_t j = 0; j < nb && bad_a < 0 && bad_b < 0; j++) {
        while (i < na && ka[i] < kb[j]) i++;
        pos[j] = (i < na && ka[i] == kb[j]) ? (int64_t)i : -1;
    }
    Py_END_ALLOW_THREADS
    if (bad_a >= 0 || bad_b >= 0) {
        unsorted_error(bad_a >= 0 ? "a" : "b", bad_a >= 0 ? bad_a : bad_b);
        Py_CLEAR(out);
    }
done:
    PyBuffer_Release(&a);
    PyBuffer_Release(&b);
    return out;
}

/* survivors(ids_a, order_a, type_a, ids_b, order_b, type_b) -> (rows_a, rows_b, alive_a,
   alive_b): the objects alive in both snapshots (same id, same type code), as pairs of rows
   in ascending id order (int64 each), and per row of each snapshot whether it survived
   (one byte each).  ids_* ascending uint64; order_* uint32, the row of each id; type_* int32
   type code per row. */
static PyObject *diff_survivors(PyObject *self, PyObject *args) {
    Py_buffer in[6];
    memset(in, 0, sizeof(in));
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*:survivors", &in[0], &in[1], &in[2], &in[3],
                          &in[4], &in[5]))
        return NULL;
    PyObject *rows_a = NULL, *rows_b = NULL, *alive_a = NULL, *alive_b = NULL, *res = NULL;
    static const char *names[] = {"ids_a", "order_a", "type_a", "ids_b", "order_b", "type_b"};
    static const Py_ssize_t sizes[] = {8, 4, 4, 8, 4, 4};
    Py_ssize_t n[6];
    for (int k = 0; k < 6; k++)
        if ((n[k] = items(&in[k], sizes[k], names[k])) < 0) goto done;
    if (n[1] != n[0] || n[2] != n[0] || n[4] != n[3] || n[5] != n[3]) {
        PyErr_SetString(PyExc_ValueError, "survivors: ids, order and types differ in length");
        goto done;
    }
    Py_ssize_t na = n[0], nb = n[3], cap = na < nb ? na : nb;
    if (!(rows_a = PyBytes_FromStringAndSize(NULL, cap * 8)) ||
        !(rows_b = PyBytes_FromStringAndSize(NULL, cap * 8)) ||
        !(alive_a = PyBytes_FromStringAndSize(NULL, na)) ||
        !(alive_b = PyBytes_FromStringAndSize(NULL, nb)))
        goto done;
    const uint64_t *ida = in[0].buf, *idb = in[3].buf;
    const uint32_t *oa = in[1].buf, *ob = in[4].buf;
    const int32_t *ta = in[2].buf, *tb = in[5].buf;
    int64_t *ra = (int64_t *)PyBytes_AS_STRING(rows_a), *rb = (int64_t *)PyBytes_AS_STRING(rows_b);
    char *la = PyBytes_AS_STRING(alive_a), *lb = PyBytes_AS_STRING(alive_b);
    Py_ssize_t m = 0, bad_a, bad_b;
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    bad_a = unsorted_at(ida, na);
    bad_b = bad_a < 0 ? unsorted_at(idb, nb) : -1;
    memset(la, 0, (size_t)na);
    memset(lb, 0, (size_t)nb);
    Py_ssize_t i = 0;
    for (Py_ssize_t j = 0; j < nb && !bad && bad_a < 0 && bad_b < 0; j++) {
        while (i < na && ida[i] < idb[j]) i++;
        if (i == na) break;
        if (ida[i] != idb[j]) continue;
        uint32_t row_a = oa[i], row_b = ob[j];
        if (row_a >= (uint64_t)na || row_b >= (uint64_t)nb) {
            bad = 1;
            break;
        }
        if (ta[row_a] != tb[row_b]) continue;
        ra[m] = row_a;
        rb[m] = row_b;
        la[row_a] = lb[row_b] = 1;
        m++;
    }
    Py_END_ALLOW_THREADS
    if (bad_a >= 0 || bad_b >= 0) {
        unsorted_error(bad_a >= 0 ? "ids_a" : "ids_b", bad_a >= 0 ? bad_a : bad_b);
        goto done;
    }
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "survivors: a row in order_a or order_b is out of range");
        goto done;
    }
    if (_PyBytes_Resize(&rows_a, m * 8) < 0 || _PyBytes_Resize(&rows_b, m * 8) < 0) goto done;
    res = PyTuple_Pack(4, rows_a, rows_b, alive_a, alive_b);
done:
    Py_XDECREF(rows_a);
    Py_XDECREF(rows_b);
    Py_XDECREF(alive_a);
    Py_XDECREF(alive_b);
    for (int k = 0; k < 6; k++)
        if (in[k].obj) PyBuffer_Release(&in[k]);
    return res;
}

/* tally(codes, flags, sizes, k) -> (counts, bytes): per code and flag, how many rows and how
   many bytes; int64[2k] each, at 2 * code + (flag != 0).  codes int32 in [0, k); flags one
   byte per row; sizes int64 per row. */
static PyObject *diff_tally(PyObject *self, PyObject *args) {
    Py_buffer in[3];
    Py_ssize_t k;
    memset(in, 0, sizeof(in));
    if (!PyArg_ParseTuple(args, "y*y*y*n:tally", &in[0], &in[1], &in[2], &k)) return NULL;
    PyObject *counts = NULL, *bytes = NULL, *res = NULL;
    Py_ssize_t n = items(&in[0], 4, "codes");
    if (n < 0) goto done;
    if (items(&in[1], 1, "flags") != n || items(&in[2], 8, "sizes") != n) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "tally: codes, flags and sizes differ in length");
        goto done;
    }
    if (k < 0 || k > PY_SSIZE_T_MAX / 16) {
        PyErr_SetString(PyExc_ValueError, "tally: k out of range");
        goto done;
    }
    if (!(counts = PyBytes_FromStringAndSize(NULL, 16 * k)) ||
        !(bytes = PyBytes_FromStringAndSize(NULL, 16 * k)))
        goto done;
    const int32_t *codes = in[0].buf;
    const char *flags = in[1].buf;
    const int64_t *sizes = in[2].buf;
    int64_t *c = (int64_t *)PyBytes_AS_STRING(counts), *b = (int64_t *)PyBytes_AS_STRING(bytes);
    Py_ssize_t bad = -1;
    Py_BEGIN_ALLOW_THREADS
    memset(c, 0, (size_t)(16 * k));
    memset(b, 0, (size_t)(16 * k));
    for (Py_ssize_t i = 0; i < n; i++) {
        int32_t code = codes[i];
        if (code < 0 || code >= k) {
            bad = i;
            break;
        }
        Py_ssize_t at = 2 * (Py_ssize_t)code + (flags[i] != 0);
        c[at]++;
        b[at] += sizes[i];
    }
    Py_END_ALLOW_THREADS
    if (bad >= 0) {
        PyErr_Format(PyExc_ValueError, "tally: codes[%zd] out of range [0, %zd)", bad, k);
        goto done;
    }
    res = PyTuple_Pack(2, counts, bytes);
done:
    Py_XDECREF(counts);
    Py_XDECREF(bytes);
    for (int j = 0; j < 3; j++)
        if (in[j].obj) PyBuffer_Release(&in[j]);
    return res;
}

/* inherit(ids_a, types_a, value_a, ids_b, types_b, default) -> int32 per id of b: value_a of
   the same object in a (same id and type code), else default.  ids ascending uint64; types
   int32 and value_a int32 in the same (id) order. */
static PyObject *diff_inherit(PyObject *self, PyObject *args) {
    Py_buffer in[5];
    int default_value;
    memset(in, 0, sizeof(in));
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*i:inherit", &in[0], &in[1], &in[2], &in[3], &in[4],
                          &default_value))
        return NULL;
    PyObject *out = NULL;
    static const char *names[] = {"ids_a", "types_a", "value_a", "ids_b", "types_b"};
    static const Py_ssize_t sizes[] = {8, 4, 4, 8, 4};
    Py_ssize_t n[5];
    for (int k = 0; k < 5; k++)
        if ((n[k] = items(&in[k], sizes[k], names[k])) < 0) goto done;
    if (n[1] != n[0] || n[2] != n[0] || n[4] != n[3]) {
        PyErr_SetString(PyExc_ValueError, "inherit: ids, types and values differ in length");
        goto done;
    }
    Py_ssize_t na = n[0], nb = n[3];
    if (!(out = PyBytes_FromStringAndSize(NULL, nb * 4))) goto done;
    const uint64_t *ida = in[0].buf, *idb = in[3].buf;
    const int32_t *ta = in[1].buf, *va = in[2].buf, *tb = in[4].buf;
    int32_t *res = (int32_t *)PyBytes_AS_STRING(out);
    Py_ssize_t bad_a, bad_b;
    Py_BEGIN_ALLOW_THREADS
    bad_a = unsorted_at(ida, na);
    bad_b = bad_a < 0 ? unsorted_at(idb, nb) : -1;
    Py_ssize_t i = 0;
    for (Py_ssize_t j = 0; j < nb && bad_a < 0 && bad_b < 0; j++) {
        while (i < na && ida[i] < idb[j]) i++;
        res[j] = (i < na && ida[i] == idb[j] && ta[i] == tb[j]) ? va[i] : default_value;
    }
    Py_END_ALLOW_THREADS
    if (bad_a >= 0 || bad_b >= 0) {
        unsorted_error(bad_a >= 0 ? "ids_a" : "ids_b", bad_a >= 0 ? bad_a : bad_b);
        Py_CLEAR(out);
    }
done:
    for (int k = 0; k < 5; k++)
        if (in[k].obj) PyBuffer_Release(&in[k]);
    return out;
}

static PyMethodDef diff_methods[] = {
    {"match", diff_match, METH_VARARGS,
     "match(a, b) -> bytes of int64: position in sorted a of each id of sorted b, or -1"},
    {"survivors", diff_survivors, METH_VARARGS,
     "survivors(ids_a, order_a, type_a, ids_b, order_b, type_b) -> (rows_a, rows_b, alive_a,"
     " alive_b)\n\nObjects alive in both snapshots: same id and same type code."},
    {"inherit", diff_inherit, METH_VARARGS,
     "inherit(ids_a, types_a, value_a, ids_b, types_b, default) -> bytes of int32 per id of b"},
    {"tally", diff_tally, METH_VARARGS,
     "tally(codes, flags, sizes, k) -> (counts, bytes): int64[2k] each, per code and flag"},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot diff_slots[] = {
#if PY_VERSION_HEX >= 0x030D0000
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef diff_module = {
    PyModuleDef_HEAD_INIT, "_merges", "Compiled merges of sorted ids (jupyter_memsnap).", 0,
    diff_methods, diff_slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__merges(void) { return PyModuleDef_Init(&diff_module); }
