/*
 * What the walk reads from CPython beyond tp_traverse, version by version.
 *
 * tp_traverse exists for the garbage collector, which only needs the references that can
 * form cycles, so CPython leaves out references a memory census needs: the keys of dicts
 * whose keys are all str, every field of a code object (code is not a GC type), the names
 * and slots of heap types, the MRO and bases of static types, the locals of frames that a
 * thread is running (3.11+), and the attribute-values block of instances (3.11+, memory the
 * instance owns that no __sizeof__ reports).  Public API is used where there is one; the
 * few private layouts read are those of the exact versions tested (3.11, 3.12, 3.13,
 * default build), each guarded, and skipped elsewhere: an untested version counts less,
 * it never reads a wrong field.
 */
#ifndef JUPYTER_MEMSNAP_CPYTHON_H
#define JUPYTER_MEMSNAP_CPYTHON_H

#include <Python.h>
#include <stdint.h>
#include <stddef.h>
#if PY_VERSION_HEX < 0x030B0000
#include <frameobject.h> /* PyFrameObject's fields, public until 3.11 */
#endif

#define MS_PY_MINOR(major_minor) \
    (PY_VERSION_HEX >= ((major_minor) << 16) && PY_VERSION_HEX < (((major_minor) + 1) << 16))
#if !defined(Py_GIL_DISABLED) && (MS_PY_MINOR(0x030B) || MS_PY_MINOR(0x030C) || MS_PY_MINOR(0x030D))
#define MS_KNOWN_LAYOUT 1 /* the private layouts below were read off these versions' headers */
#else
#define MS_KNOWN_LAYOUT 0
#endif

typedef int (*ms_visit)(PyObject *, void *);

#define MS_VISIT(o)                                        \
    do {                                                   \
        PyObject *_ms_o = (PyObject *)(o);                 \
        if (_ms_o && visit(_ms_o, arg) < 0) return -1;     \
    } while (0)

/* ------------------------------------------------------------------ type dictionaries */

/* A type's own dict as a new reference (3.12+ keeps static builtin types' dicts in the
   interpreter state, where tp_dict is NULL); NULL without an exception when there is none. */
static inline PyObject *ms_type_dict(PyTypeObject *tp) {
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *d = PyType_GetDict(tp);
    if (!d) PyErr_Clear();
    return d;
#else
    PyObject *d = tp->tp_dict;
    Py_XINCREF(d);
    return d;
#endif
}

/* ------------------------------------------------------------------ sizes */

/* 1 when sys.getsizeof adds no GC header to static types (3.13+); measured once at import,
   not assumed from the version, so that a patch release that changes it is followed. */
static int ms_static_types_bare = 0;

/* What sys.getsizeof adds to __sizeof__ (CPython's _PySys_GetSizeOf): the GC header and,
   from 3.11, the managed dict/weakref pre-header, decided by the type (3.10: by the object). */
static inline int64_t ms_pre_header(PyObject *o, int64_t gc_head) {
#if PY_VERSION_HEX < 0x030B0000
    return PyObject_IS_GC(o) ? gc_head : 0;
#else
    PyTypeObject *tp = Py_TYPE(o);
    if (ms_static_types_bare && tp == &PyType_Type &&
        !(((PyTypeObject *)o)->tp_flags & Py_TPFLAGS_HEAPTYPE))
        return 0;
    int64_t extra = PyType_IS_GC(tp) ? gc_head : 0;
#if PY_VERSION_HEX >= 0x030C0000
    unsigned long managed = Py_TPFLAGS_MANAGED_DICT | Py_TPFLAGS_MANAGED_WEAKREF;
#else
    unsigned long managed = Py_TPFLAGS_MANAGED_DICT;
#endif
    if (tp->tp_flags & managed) extra += 2 * (int64_t)sizeof(PyObject *);
    return extra;
#endif
}

/* Bytes of a heap type's own copy of its docstring (type.__sizeof__ leaves it out). */
static inline int64_t ms_type_doc_bytes(PyTypeObject *tp) {
    if (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE) || !tp->tp_doc) return 0;
    return (int64_t)strlen(tp->tp_doc) + 1;
}

#if MS_KNOWN_LAYOUT
/* The head of PyDictKeysObject (Include/internal/pycore_dict.h, 3.11-3.13). */
typedef struct {
    Py_ssize_t dk_refcnt;
    uint8_t dk_log2_size, dk_log2_index_bytes, dk_kind;
    uint32_t dk_version;
    Py_ssize_t dk_usable, dk_nentries;
} ms_keys_head;
#endif

/* Whether instances of tp may keep an attribute-values block outside any dict. */
static inline int ms_has_values(PyTypeObject *tp) {
#if MS_KNOWN_LAYOUT
    return (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) && (tp->tp_flags & Py_TPFLAGS_MANAGED_DICT) &&
           ((PyHeapTypeObject *)tp)->ht_cached_keys != NULL;
#else
    return 0;
#endif
}

/* Bytes of o's attribute-values block when o owns one (ms_has_values(type)): on 3.13 the
   block is inline after the object and records its capacity; on 3.11 and 3.12 it is a
   separate allocation (pycore_dict.h: new_values) of a prefix, whose last byte holds its
   size, plus a slot per shared key at creation (nentries + usable of the type's keys then;
   the keys' present figure, bounded by what the prefix allows).  A materialized __dict__
   owns the block instead (dict.__sizeof__ counts it). */
static inline int64_t ms_values_bytes(PyObject *o) {
#if MS_KNOWN_LAYOUT
#if PY_VERSION_HEX >= 0x030D0000
    PyTypeObject *tp = Py_TYPE(o);
    if (!(tp->tp_flags & Py_TPFLAGS_INLINE_VALUES)) return 0;
    int64_t cap = *((const uint8_t *)o + tp->tp_basicsize);
    return ((cap + 7) & ~(int64_t)7) + (cap + 1) * (int64_t)sizeof(PyObject *);
#else
#if PY_VERSION_HEX >= 0x030C0000
    uintptr_t dorv = ((const uintptr_t *)o)[-3]; /* PyDictOrValues: values - 1, or a dict */
    if (!(dorv & 1)) return 0;
    const uint8_t *values = (const uint8_t *)(dorv + 1);
#else
    if (((PyObject *const *)o)[-3]) return 0; /* a materialized dict */
    const uint8_t *values = ((const uint8_t *const *)o)[-4];
    if (!values) return 0;
#endif
    int64_t prefix = values[-1];
    const ms_keys_head *keys =
        (const ms_keys_head *)((PyHeapTypeObject *)Py_TYPE(o))->ht_cached_keys;
    int64_t cap = (int64_t)(keys->dk_usable + keys->dk_nentries);
    if (cap > prefix - 2) cap = prefix - 2;
    if (cap < prefix - 9) cap = prefix - 9;
    if (cap < 0) cap = 0;
    return prefix + cap * (int64_t)sizeof(PyObject *);
#endif
#else
    (void)o;
    return 0;
#endif
}

/* ------------------------------------------------------------------ hidden references */

/* Every object a code object refers to: it has no tp_traverse (3.10-3.13). */
static int ms_code_referents(PyCodeObject *co, ms_visit visit, void *arg) {
#if PY_VERSION_HEX < 0x030B0000
    MS_VISIT(co->co_code);
    MS_VISIT(co->co_consts);
    MS_VISIT(co->co_names);
    MS_VISIT(co->co_varnames);
    MS_VISIT(co->co_freevars);
    MS_VISIT(co->co_cellvars);
    MS_VISIT(co->co_filename);
    MS_VISIT(co->co_name);
    MS_VISIT(co->co_linetable);
#else
    MS_VISIT(co->co_consts);
    MS_VISIT(co->co_names);
    MS_VISIT(co->co_exceptiontable);
    MS_VISIT(co->co_localsplusnames);
    MS_VISIT(co->co_localspluskinds);
    MS_VISIT(co->co_filename);
    MS_VISIT(co->co_name);
    MS_VISIT(co->co_qualname);
    MS_VISIT(co->co_linetable);
#if PY_VERSION_HEX < 0x030C0000
    MS_VISIT(co->_co_code);
#else
    if (co->_co_cached) {
        MS_VISIT(co->_co_cached->_co_code);
        MS_VISIT(co->_co_cached->_co_varnames);
        MS_VISIT(co->_co_cached->_co_cellvars);
        MS_VISIT(co->_co_cached->_co_freevars);
    }
#endif
#endif
    return 0;
}

/* What a type refers to beyond type_traverse: a heap type's name, qualname and slots; a
   static type's (not a GC object: no traverse at all) dict, MRO and bases. */
static int ms_type_referents(PyTypeObject *tp, ms_visit visit, void *arg) {
    if (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) {
        PyHeapTypeObject *ht = (PyHeapTypeObject *)tp;
        MS_VISIT(ht->ht_name);
        MS_VISIT(ht->ht_qualname);
        MS_VISIT(ht->ht_slots);
        return 0;
    }
    PyObject *dict = ms_type_dict(tp);
    if (dict) {
        /* the type holds its dict: still alive once this reference is dropped */
        int rc = visit(dict, arg);
        Py_DECREF(dict);
        if (rc < 0) return -1;
    }
    MS_VISIT(tp->tp_mro);
    MS_VISIT(tp->tp_bases);
    return 0;
}

/* The one module whose traverse reports dead objects on 3.12.0-3.12.5 (CPython gh-122695:
   _asyncio's state visits its free list); only its dict is followed there. */
static inline int ms_module_hides_dead(PyObject *m) {
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030C06F0
    PyModuleDef *def = PyModule_GetDef(m);
    if (!def) {
        PyErr_Clear();
        return 0;
    }
    return def->m_name && strcmp(def->m_name, "_asyncio") == 0;
#else
    (void)m;
    return 0;
#endif
}

/* ------------------------------------------------------------------ frame locals */

#if MS_PY_MINOR(0x030B) && MS_KNOWN_LAYOUT
/* Include/internal/pycore_frame.h of 3.11 */
typedef struct {
    PyObject *f_func, *f_globals, *f_builtins, *f_locals;
    PyCodeObject *f_code;
    PyFrameObject *frame_obj;
    void *previous, *prev_instr;
    int stacktop;
    char is_entry, owner;
    PyObject *localsplus[1];
} ms_iframe311;

typedef struct {
    PyObject_HEAD
    PyFrameObject *f_back;
    ms_iframe311 *f_frame;
} ms_frame311;
#endif

/* Append (name, value) for every bound local, cell and free variable of a frame; a cell's
   value is its contents.  No dict is built on the frame (f_locals would build one on 3.10-
   3.12 and keep it).  0, or -1 with an exception. */
static int ms_frame_locals(PyFrameObject *frame, PyObject *out) {
    PyCodeObject *co = PyFrame_GetCode(frame); /* new reference */
    if (!co) return -1;
    int rc = 0;
    PyObject *pair;
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *names = co->co_localsplusnames;
    for (Py_ssize_t i = 0; names && i < PyTuple_GET_SIZE(names) && rc == 0; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        PyObject *value = PyFrame_GetVar(frame, name);
        if (!value) {
            if (PyErr_ExceptionMatches(PyExc_NameError)) PyErr_Clear();
            else rc = -1;
            continue;
        }
        pair = PyTuple_Pack(2, name, value);
        Py_DECREF(value);
        rc = pair ? PyList_Append(out, pair) : -1;
        Py_XDECREF(pair);
    }
#elif PY_VERSION_HEX >= 0x030B0000
#if MS_KNOWN_LAYOUT
    ms_iframe311 *f = ((ms_frame311 *)frame)->f_frame;
    PyObject *names = co->co_localsplusnames, *kinds = co->co_localspluskinds;
    /* A running frame points back to its frame object; a finished one (in a traceback) is
       a copy inside the frame object, its back pointer cleared. */
    char *owned = (char *)frame + Py_TYPE(frame)->tp_basicsize - offsetof(ms_iframe311, localsplus);
    int ours = f && (f->frame_obj == frame || (!f->frame_obj && (char *)f == owned));
    if (ours && f->f_code == co && names && kinds &&
        PyTuple_GET_SIZE(names) == PyBytes_GET_SIZE(kinds)) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names) && rc == 0; i++) {
            PyObject *value = f->localsplus[i];
            unsigned char kind = (unsigned char)PyBytes_AS_STRING(kinds)[i];
            if (value && (kind & 0xC0) && PyCell_Check(value)) value = PyCell_GET(value);
            if (!value) continue;
            pair = PyTuple_Pack(2, PyTuple_GET_ITEM(names, i), value);
            rc = pair ? PyList_Append(out, pair) : -1;
            Py_XDECREF(pair);
        }
    }
#endif
#else
    PyObject *groups[3] = {co->co_varnames, co->co_cellvars, co->co_freevars};
    Py_ssize_t k = 0;
    for (int g = 0; g < 3 && rc == 0; g++)
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(groups[g]) && rc == 0; i++, k++) {
            PyObject *value = frame->f_localsplus[k];
            if (value && g > 0 && PyCell_Check(value)) value = PyCell_GET(value);
            if (!value) continue;
            pair = PyTuple_Pack(2, PyTuple_GET_ITEM(groups[g], i), value);
            rc = pair ? PyList_Append(out, pair) : -1;
            Py_XDECREF(pair);
        }
#endif
    Py_DECREF(co);
    return rc;
}

#endif
