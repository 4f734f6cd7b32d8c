/*
 * Compiled heap walker: every live object reachable in the process, as columns.
 *
 * walk(roots, seeds, exclude_objects, exclude_types, ndarray_type, gc_head)
 *
 * Phase 1 visits the closure of `roots` over tp_traverse referents plus the edges CPython
 * hides (ndarray .base and object-dtype elements, static types' dicts).  Objects in
 * `exclude_objects` or of an exact type in `exclude_types` are barriers: not recorded, not
 * followed.  Phase 2 marks the machinery: everything reachable from a barrier (or from a
 * seed of an excluded type) through objects phase 1 did not reach.  Phase 3 visits, in
 * order, each seed (normally gc.get_objects()) that is still unknown: objects held from C,
 * or garbage in cycles.  Finally objects are sorted by address and the graph renumbered.
 *
 * The GIL is held throughout and the cyclic GC is disabled.  While walking, only tp_traverse
 * functions and type lookups run (no code that could free an object), so references are
 * borrowed; then every recorded object is held by a strong reference while its size is
 * read (only C-level __sizeof__ methods are called), until the end.  Rows stay in discovery
 * (BFS) order; `order` lists the rows by ascending address.  Nothing recurses: the object
 * array is the BFS queue.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <numpy/ndarraytypes.h>
#include <stdint.h>
#include <string.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#define MARK_EXCLUDED 0xFFFFFFFFu
#define MARK_MACHINERY 0xFFFFFFFEu
#define MAX_OBJECTS 0xFFFFFFF0u

/* ---------------------------------------------------------------- pointer -> uint32 map */

/* One 12-byte entry per slot, key and value together: one cache miss per probe. */
typedef struct __attribute__((packed)) {
    uintptr_t key; /* 0 = empty slot */
    uint32_t val;
} Entry;

typedef struct {
    Entry *slots;
    size_t cap; /* power of two */
    size_t len;
} PtrMap;

/* Zeroed memory for a large table; on Linux backed by huge pages where the kernel allows:
   random probes into a table of many megabytes otherwise miss the TLB on almost every
   access. */
static Entry *table_alloc(size_t cap) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    size_t bytes = cap * sizeof(Entry);
    if (bytes >= (4u << 20)) {
        void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return NULL;
        (void)madvise(p, bytes, MADV_HUGEPAGE);
        return (Entry *)p;
    }
#endif
    return PyMem_RawCalloc(cap, sizeof(Entry));
}

static void table_free(Entry *slots, size_t cap) {
    if (!slots) return;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (cap * sizeof(Entry) >= (4u << 20)) {
        munmap(slots, cap * sizeof(Entry));
        return;
    }
#endif
    PyMem_RawFree(slots);
}

static inline size_t ptr_hash(uintptr_t p, size_t mask) {
    uint64_t h = (uint64_t)p >> 3;
    h *= 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 20) & mask;
}

static int ptrmap_init(PtrMap *m, size_t want) {
    size_t cap = 1024;
    while (cap * 7 < want * 10) cap <<= 1;
    m->slots = table_alloc(cap);
    m->cap = cap;
    m->len = 0;
    return m->slots ? 0 : -1;
}

static void ptrmap_free(PtrMap *m) {
    table_free(m->slots, m->cap);
    m->slots = NULL;
}

static int ptrmap_grow(PtrMap *m) {
    size_t ncap = m->cap * 2, mask = ncap - 1;
    Entry *ns = table_alloc(ncap);
    if (!ns) return -1;
    for (size_t i = 0; i < m->cap; i++) {
        uintptr_t k = m->slots[i].key;
        if (!k) continue;
        size_t j = ptr_hash(k, mask);
        while (ns[j].key) j = (j + 1) & mask;
        ns[j] = m->slots[i];
    }
    table_free(m->slots, m->cap);
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

/* Slot of key p: either holding p or the empty slot where p belongs. */
static inline size_t ptrmap_slot(const PtrMap *m, uintptr_t p) {
    size_t mask = m->cap - 1, j = ptr_hash(p, mask);
    while (m->slots[j].key && m->slots[j].key != p) j = (j + 1) & mask;
    return j;
}

static inline void ptrmap_prefetch(const PtrMap *m, uintptr_t p) {
    __builtin_prefetch(&m->slots[ptr_hash(p, m->cap - 1)]);
}

static inline void ptrmap_set(PtrMap *m, size_t slot, uintptr_t p, uint32_t val) {
    m->slots[slot].key = p;
    m->slots[slot].val = val;
    m->len++;
}

/* Ensure room for one more key; returns -1 on memory error. */
static inline int ptrmap_reserve(PtrMap *m) {
    if ((m->len + 1) * 10 >= m->cap * 7) return ptrmap_grow(m);
    return 0;
}

/* ---------------------------------------------------------------- growable arrays */

typedef struct {
    void *data;
    size_t len, cap, item;
} Vec;

static int vec_reserve(Vec *v, size_t want) {
    if (want <= v->cap) return 0;
    size_t ncap = v->cap ? v->cap : 1024;
    while (ncap < want) ncap += ncap / 2 + 1;
    void *nd = PyMem_RawRealloc(v->data, ncap * v->item);
    if (!nd) return -1;
    v->data = nd;
    v->cap = ncap;
    return 0;
}

#define VEC_AT(v, T, i) (((T *)(v).data)[i])

static inline int vec_push_u32(Vec *v, uint32_t x) {
    if (v->len == v->cap && vec_reserve(v, v->len + 1) < 0) return -1;
    VEC_AT(*v, uint32_t, v->len++) = x;
    return 0;
}

static inline int vec_push_ptr(Vec *v, void *x) {
    if (v->len == v->cap && vec_reserve(v, v->len + 1) < 0) return -1;
    VEC_AT(*v, void *, v->len++) = x;
    return 0;
}

/* ---------------------------------------------------------------- type information */

enum { SIZE_CALL = 0, SIZE_OBJECT_FIXED = 1, SIZE_OBJECT_VAR = 2 };

typedef struct {
    PyTypeObject *tp;  /* strong reference */
    PyObject *sizeof_fn; /* strong reference; the C __sizeof__ to call (SIZE_CALL) */
    PyCFunction direct;  /* its C function when it takes no arguments: called directly */
    int64_t fixed;     /* SIZE_OBJECT_FIXED: size once known, else -1 */
    int mode;
    int is_ndarray;
} TypeInfo;

/* ---------------------------------------------------------------- the walk state */

typedef struct {
    PtrMap seen;        /* object -> index, or a MARK_* */
    Vec objs;           /* PyObject*, in discovery order; strong once `held` */
    int held;           /* objs hold strong references (after the walk) */
    Vec otype;          /* uint32 type index per object */
    Vec osize;          /* int64 shallow size per object */
    Vec offsets;        /* int64, offsets[i] .. offsets[i+1] = edges of object i */
    Vec targets;        /* uint32 */
    Vec native_idx;     /* uint32 object index owning a native buffer */
    Vec native_bytes;   /* int64 bytes of that buffer */
    Vec barriers;       /* PyObject* (borrowed: alive through their holders) */
    Vec machinery;      /* PyObject* (borrowed), objects marked MARK_MACHINERY */
    Vec batch;          /* PyObject* (borrowed): referents of the object being visited */
    Vec batch2;         /* the other half of the double buffer used by drain() */
    Vec *collect;       /* where collect_ref puts referents */
    PtrMap type_map;    /* type -> index into types */
    Vec types;          /* TypeInfo */
    PyTypeObject **excluded_types;
    Py_ssize_t n_excluded_types;
    PyTypeObject *ndarray_type;
    PyObject *object_sizeof; /* object.__sizeof__ */
    Py_ssize_t gc_head;
    int machinery_mode; /* visit callback marks machinery instead of recording */
    int keep_edges;     /* 0: a census (ids, types, sizes), no reference graph */
    PyObject *site_fn;  /* borrowed: obj -> allocation traceback tuple or None */
    PyObject *site_ids; /* dict: traceback -> index */
    PyObject *site_list; /* list of tracebacks */
    Vec osite;          /* int32 site index per object, -1 unknown */
    int64_t sizeof_errors;
    PyTypeObject *last_tp;
    uint32_t last_tidx;
} Walk;

static int is_excluded_type(const Walk *w, PyTypeObject *tp) {
    for (Py_ssize_t i = 0; i < w->n_excluded_types; i++)
        if (w->excluded_types[i] == tp) return 1;
    return 0;
}

/* Record a new object: strong reference, index = discovery order. */
static int add_object(Walk *w, PyObject *o, size_t slot, uint32_t *out) {
    if (w->objs.len >= MAX_OBJECTS) {
        PyErr_SetString(PyExc_OverflowError, "more objects than a snapshot can index");
        return -1;
    }
    uint32_t idx = (uint32_t)w->objs.len;
    if (vec_push_ptr(&w->objs, o) < 0) return -1;
    ptrmap_set(&w->seen, slot, (uintptr_t)o, idx);
    *out = idx;
    return 0;
}

/* Find o, or insert it as a new object (or as a barrier when excluded).
   *out receives its index or a MARK_*.  Returns -1 on memory error. */
static int lookup_or_add(Walk *w, PyObject *o, uint32_t *out) {
    if (ptrmap_reserve(&w->seen) < 0) return -1;
    size_t slot = ptrmap_slot(&w->seen, (uintptr_t)o);
    if (w->seen.slots[slot].key) {
        *out = w->seen.slots[slot].val;
        return 0;
    }
    if (w->machinery_mode) {
        if (vec_push_ptr(&w->machinery, o) < 0) return -1;
        ptrmap_set(&w->seen, slot, (uintptr_t)o, MARK_MACHINERY);
        *out = MARK_MACHINERY;
        return 0;
    }
    if (is_excluded_type(w, Py_TYPE(o))) {
        if (vec_push_ptr(&w->barriers, o) < 0) return -1;
        ptrmap_set(&w->seen, slot, (uintptr_t)o, MARK_EXCLUDED);
        *out = MARK_EXCLUDED;
        return 0;
    }
    return add_object(w, o, slot, out);
}

/* Referents are first collected, then looked up together with their slots prefetched. */
static int collect_ref(PyObject *o, void *arg) {
    return vec_push_ptr(((Walk *)arg)->collect, o);
}

static void prefetch_batch(Walk *w, const Vec *b) {
    PyObject **refs = (PyObject **)b->data;
    for (size_t i = 0; i < b->len; i++) ptrmap_prefetch(&w->seen, (uintptr_t)refs[i]);
}

/* Look up (or record) every referent collected in b, appending the edges. */
static int flush_batch(Walk *w, Vec *b) {
    PyObject **refs = (PyObject **)b->data;
    size_t n = b->len;
    b->len = 0;
    while ((w->seen.len + n + 1) * 10 >= w->seen.cap * 7)
        if (ptrmap_grow(&w->seen) < 0) return -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t idx;
        if (lookup_or_add(w, refs[i], &idx) < 0) return -1;
        if (!w->machinery_mode && w->keep_edges && idx < MARK_MACHINERY &&
            vec_push_u32(&w->targets, idx) < 0)
            return -1;
    }
    return 0;
}

/* Edges tp_traverse does not report. */
static int visit_hidden(Walk *w, PyObject *o, int is_ndarray) {
    if (is_ndarray) {
        PyArrayObject_fields *a = (PyArrayObject_fields *)o;
        if (a->base && collect_ref(a->base, w) < 0) return -1;
        if (a->descr && a->descr->type_num == NPY_OBJECT && a->data) {
            int nd = a->nd;
            npy_intp total = 1;
            for (int d = 0; d < nd; d++) total *= a->dimensions[d];
            if (total <= 0) return 0;
            npy_intp index[64];
            if (nd > 64) return 0;
            memset(index, 0, sizeof(index));
            for (npy_intp k = 0; k < total; k++) {
                char *p = a->data;
                for (int d = 0; d < nd; d++) p += index[d] * a->strides[d];
                PyObject *item;
                memcpy(&item, p, sizeof(item));
                if (item && collect_ref(item, w) < 0) return -1;
                for (int d = nd - 1; d >= 0; d--) {
                    if (++index[d] < a->dimensions[d]) break;
                    index[d] = 0;
                }
            }
        }
        return 0;
    }
    if (PyType_Check(o) && !PyObject_IS_GC(o)) {
#if PY_VERSION_HEX >= 0x030C0000
        PyObject *dict = PyType_GetDict((PyTypeObject *)o);
        int rc = 0;
        if (dict) {
            rc = collect_ref(dict, w);
            Py_DECREF(dict);
        }
        else {
            PyErr_Clear();
        }
        return rc;
#else
        PyObject *dict = ((PyTypeObject *)o)->tp_dict;
        if (dict) return collect_ref(dict, w);
#endif
    }
    return 0;
}

/* Collect o's referents (tp_traverse and the hidden edges) into `into`. */
static int collect_all(Walk *w, PyObject *o, int is_ndarray, Vec *into) {
    PyTypeObject *tp = Py_TYPE(o);
    w->collect = into;
    if (PyObject_IS_GC(o) && tp->tp_traverse) {
        if (tp->tp_traverse(o, collect_ref, w) < 0) return -1;
    }
    return visit_hidden(w, o, is_ndarray);
}

static int visit_all(Walk *w, PyObject *o, int is_ndarray) {
    if (collect_all(w, o, is_ndarray, &w->batch) < 0) return -1;
    prefetch_batch(w, &w->batch);
    return flush_batch(w, &w->batch);
}

/* ---------------------------------------------------------------- sizes */

static int type_info(Walk *w, PyTypeObject *tp, uint32_t *out) {
    if (tp == w->last_tp) {
        *out = w->last_tidx;
        return 0;
    }
    if (ptrmap_reserve(&w->type_map) < 0) return -1;
    size_t slot = ptrmap_slot(&w->type_map, (uintptr_t)tp);
    if (w->type_map.slots[slot].key) {
        *out = w->type_map.slots[slot].val;
    }
    else {
        static PyObject *name = NULL;
        if (!name && !(name = PyUnicode_InternFromString("__sizeof__"))) return -1;
        TypeInfo ti = {tp, NULL, NULL, -1, SIZE_OBJECT_FIXED, 0};
        PyObject *fn = _PyType_Lookup(tp, name); /* borrowed, no error set */
        if (fn && fn != w->object_sizeof &&
            (Py_IS_TYPE(fn, &PyMethodDescr_Type) || PyCFunction_Check(fn))) {
            ti.mode = SIZE_CALL;
            ti.sizeof_fn = fn;
            if (Py_IS_TYPE(fn, &PyMethodDescr_Type)) {
                PyMethodDef *def = ((PyMethodDescrObject *)fn)->d_method;
                if ((def->ml_flags & ~METH_COEXIST) == METH_NOARGS) ti.direct = def->ml_meth;
            }
        }
        else {
#if PY_VERSION_HEX < 0x030D0000
            ti.mode = tp->tp_itemsize > 0 ? SIZE_OBJECT_VAR : SIZE_OBJECT_FIXED;
#else
            if (tp->tp_itemsize > 0) {
                ti.mode = SIZE_CALL;
                ti.sizeof_fn = w->object_sizeof;
            }
#endif
        }
        ti.is_ndarray = w->ndarray_type && PyType_IsSubtype(tp, w->ndarray_type);
        if (vec_reserve(&w->types, w->types.len + 1) < 0) return -1;
        Py_INCREF(tp);
        Py_XINCREF(ti.sizeof_fn);
        VEC_AT(w->types, TypeInfo, w->types.len) = ti;
        ptrmap_set(&w->type_map, slot, (uintptr_t)tp, (uint32_t)w->types.len);
        *out = (uint32_t)w->types.len++;
    }
    w->last_tp = tp;
    w->last_tidx = *out;
    return 0;
}

/* What sys.getsizeof adds to __sizeof__: the GC header and, from 3.11, the managed
   dict/weakref pre-header; decided by the type, as _PyType_PreHeaderSize does. */
static inline int64_t pre_header(const Walk *w, PyObject *o) {
#if PY_VERSION_HEX >= 0x030B0000
    PyTypeObject *tp = Py_TYPE(o);
    int64_t extra = PyType_IS_GC(tp) ? w->gc_head : 0;
#if PY_VERSION_HEX >= 0x030C0000
    unsigned long managed = Py_TPFLAGS_MANAGED_DICT | Py_TPFLAGS_MANAGED_WEAKREF;
#else
    unsigned long managed = Py_TPFLAGS_MANAGED_DICT;
#endif
    if (tp->tp_flags & managed) extra += 2 * (int64_t)sizeof(PyObject *);
    return extra;
#else
    return PyObject_IS_GC(o) ? w->gc_head : 0;
#endif
}

static int64_t call_sizeof(Walk *w, PyObject *fn, PyCFunction direct, PyObject *o) {
    PyObject *r = direct ? direct(o, NULL) : PyObject_CallOneArg(fn, o);
    if (!r) {
        PyErr_Clear();
        w->sizeof_errors++;
        return -1;
    }
    Py_ssize_t s = PyLong_AsSsize_t(r);
    Py_DECREF(r);
    if (s < 0) {
        PyErr_Clear();
        w->sizeof_errors++;
        return -1;
    }
    return (int64_t)s;
}

static int64_t shallow_size(Walk *w, TypeInfo *ti, PyObject *o) {
    PyTypeObject *tp = Py_TYPE(o);
    int64_t s;
    switch (ti->mode) {
    case SIZE_OBJECT_FIXED:
        if (ti->fixed < 0) ti->fixed = call_sizeof(w, w->object_sizeof, NULL, o);
        s = ti->fixed;
        break;
    case SIZE_OBJECT_VAR:
        s = (int64_t)tp->tp_basicsize + (int64_t)Py_SIZE(o) * (int64_t)tp->tp_itemsize;
        break;
    default:
        s = call_sizeof(w, ti->sizeof_fn, ti->direct, o);
        if (s < 0) s = call_sizeof(w, w->object_sizeof, NULL, o);
    }
    if (s < 0) s = (int64_t)tp->tp_basicsize;
    return s + pre_header(w, o);
}

/* ---------------------------------------------------------------- phases */

static int record_native(Walk *w, uint32_t idx, PyObject *o, int64_t size) {
    PyArrayObject_fields *a = (PyArrayObject_fields *)o;
    if (!(a->flags & NPY_ARRAY_OWNDATA)) return 0;
    int64_t fixed = (int64_t)sizeof(PyArrayObject_fields) + 2 * (int64_t)a->nd * (int64_t)sizeof(npy_intp)
                    + pre_header(w, o);
    int64_t buf = size - fixed;
    if (buf <= 0) return 0;
    if (vec_push_u32(&w->native_idx, idx) < 0) return -1;
    if (vec_reserve(&w->native_bytes, w->native_bytes.len + 1) < 0) return -1;
    VEC_AT(w->native_bytes, int64_t, w->native_bytes.len++) = buf;
    return 0;
}

/* Process every recorded object not yet processed: its type and its edges.  Double
   buffered: object i's referents are collected (and their table slots prefetched) before
   object i-1's are looked up, so the lookups' cache misses overlap with the traversal. */
static int drain(Walk *w) {
    Vec *pending = &w->batch, *next = &w->batch2;
    size_t i = w->offsets.len - 1; /* the next object to traverse */
    int has_pending = 0;           /* `pending` holds object i-1's referents */
    for (;;) {
        if (i < w->objs.len) {
            PyObject *o = VEC_AT(w->objs, PyObject *, i);
            if (i + 8 < w->objs.len) __builtin_prefetch(VEC_AT(w->objs, PyObject *, i + 8));
            uint32_t tidx;
            if (type_info(w, Py_TYPE(o), &tidx) < 0) return -1;
            if (vec_reserve(&w->otype, i + 1) < 0) return -1;
            VEC_AT(w->otype, uint32_t, i) = tidx;
            w->otype.len = i + 1;
            if (collect_all(w, o, VEC_AT(w->types, TypeInfo, tidx).is_ndarray, next) < 0)
                return -1;
            prefetch_batch(w, next);
        }
        else if (!has_pending) {
            return 0;
        }
        if (has_pending) {
            if (flush_batch(w, pending) < 0) return -1;
            if (vec_reserve(&w->offsets, i + 1) < 0) return -1;
            VEC_AT(w->offsets, int64_t, i) = (int64_t)w->targets.len;
            w->offsets.len = i + 1;
        }
        if (i < w->otype.len) {
            Vec *t = pending;
            pending = next;
            next = t;
            has_pending = 1;
            i++;
        }
        else {
            has_pending = 0;
        }
    }
}

/* Allocation site of every object (tracemalloc's traceback, interned to an index). */
static int find_sites(Walk *w) {
    size_t n = w->objs.len;
    if (!(w->site_ids = PyDict_New()) || !(w->site_list = PyList_New(0))) return -1;
    if (vec_reserve(&w->osite, n + 1) < 0) return -1;
    int32_t *sites = (int32_t *)w->osite.data;
    for (size_t i = 0; i < n; i++) {
        sites[i] = -1;
        PyObject *tb = PyObject_CallOneArg(w->site_fn, VEC_AT(w->objs, PyObject *, i));
        if (!tb) {
            PyErr_Clear();
            continue;
        }
        if (tb != Py_None) {
            PyObject *known = PyDict_GetItemWithError(w->site_ids, tb);
            if (known) {
                sites[i] = (int32_t)PyLong_AsLong(known);
            }
            else if (!PyErr_Occurred()) {
                Py_ssize_t k = PyList_GET_SIZE(w->site_list);
                PyObject *num = PyLong_FromSsize_t(k);
                int rc = num ? PyDict_SetItem(w->site_ids, tb, num) : -1;
                Py_XDECREF(num);
                if (rc < 0 || PyList_Append(w->site_list, tb) < 0) {
                    Py_DECREF(tb);
                    return -1;
                }
                sites[i] = (int32_t)k;
            }
            else {
                PyErr_Clear(); /* an unhashable traceback: leave the site unknown */
            }
        }
        Py_DECREF(tb);
    }
    w->osite.len = n;
    return 0;
}

/* Hold every recorded object, then read sizes: __sizeof__ may run arbitrary C code. */
static int measure(Walk *w) {
    size_t n = w->objs.len;
    PyObject **objs = (PyObject **)w->objs.data;
    for (size_t i = 0; i < n; i++) {
        if (i + 16 < n) __builtin_prefetch(objs[i + 16], 1);
        Py_INCREF(objs[i]);
    }
    w->held = 1;
    if (vec_reserve(&w->osize, n + 1) < 0) return -1;
    int64_t *sizes = (int64_t *)w->osize.data;
    for (size_t i = 0; i < n; i++) {
        if (i + 16 < n) __builtin_prefetch(objs[i + 16]);
        TypeInfo *ti = &VEC_AT(w->types, TypeInfo, VEC_AT(w->otype, uint32_t, i));
        sizes[i] = shallow_size(w, ti, objs[i]);
        if (ti->is_ndarray && record_native(w, (uint32_t)i, objs[i], sizes[i]) < 0) return -1;
    }
    w->osize.len = n;
    return w->site_fn ? find_sites(w) : 0;
}

static int mark_machinery(Walk *w) {
    w->machinery_mode = 1;
    for (size_t i = 0; i < w->barriers.len; i++) {
        PyObject *o = VEC_AT(w->barriers, PyObject *, i);
        int nd = w->ndarray_type && PyObject_TypeCheck(o, w->ndarray_type);
        if (visit_all(w, o, nd) < 0) return -1;
    }
    for (size_t i = 0; i < w->machinery.len; i++) {
        PyObject *o = VEC_AT(w->machinery, PyObject *, i);
        int nd = w->ndarray_type && PyObject_TypeCheck(o, w->ndarray_type);
        if (visit_all(w, o, nd) < 0) return -1;
    }
    w->machinery_mode = 0;
    return 0;
}

/* ---------------------------------------------------------------- sort by address */

/* LSD radix sort of addresses (8-byte aligned) with their original indices, 11 bits a pass,
   ping-ponging between the arrays and the scratch space; a pass where every key has the
   same digit is skipped. */
static void radix_sort(uint64_t *keys, uint32_t *vals, uint64_t *tk, uint32_t *tv, size_t n) {
    if (n < 2) return;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (size_t i = 0; i < n; i++) {
        if (keys[i] < lo) lo = keys[i];
        if (keys[i] > hi) hi = keys[i];
    }
    uint64_t span = (hi - lo) >> 3;
    static size_t count[2049];
    uint64_t *sk = keys, *dk = tk;
    uint32_t *sv = vals, *dv = tv;
    for (int shift = 0; shift < 64 && (span >> shift); shift += 11) {
        memset(count, 0, sizeof(count));
        for (size_t i = 0; i < n; i++) count[((((sk[i] - lo) >> 3) >> shift) & 2047) + 1]++;
        int trivial = 0;
        for (size_t b = 1; b <= 2048; b++)
            if (count[b] == n) trivial = 1;
        if (trivial) continue;
        for (size_t b = 0; b < 2048; b++) count[b + 1] += count[b];
        for (size_t i = 0; i < n; i++) {
            size_t dst = count[(((sk[i] - lo) >> 3) >> shift) & 2047]++;
            dk[dst] = sk[i];
            dv[dst] = sv[i];
        }
        uint64_t *t64 = sk;
        uint32_t *t32 = sv;
        sk = dk;
        sv = dv;
        dk = t64;
        dv = t32;
    }
    if (sk != keys) {
        memcpy(keys, sk, n * sizeof(uint64_t));
        memcpy(vals, sv, n * sizeof(uint32_t));
    }
}

/* The result dict: columns in row (discovery) order; sorted_ids[k] is the address of row
   order[k], ascending. */
static PyObject *finish(Walk *w, Vec *root_idx, Vec *unreached) {
    size_t n = w->objs.len;
    PyObject *res = NULL, *ids_b = NULL, *order_b = NULL;
    uint64_t *tk = NULL;
    uint32_t *tv = NULL;

    if (!(ids_b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * sizeof(uint64_t))))) goto done;
    if (!(order_b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * sizeof(uint32_t))))) goto done;
    uint64_t *keys = (uint64_t *)PyBytes_AS_STRING(ids_b);
    uint32_t *order = (uint32_t *)PyBytes_AS_STRING(order_b);
    for (size_t i = 0; i < n; i++) {
        keys[i] = (uint64_t)(uintptr_t)VEC_AT(w->objs, PyObject *, i);
        order[i] = (uint32_t)i;
    }
    tk = PyMem_RawMalloc((n + 1) * sizeof(uint64_t));
    tv = PyMem_RawMalloc((n + 1) * sizeof(uint32_t));
    if (!tk || !tv) {
        PyErr_NoMemory();
        goto done;
    }
    radix_sort(keys, order, tk, tv, n);

    TypeInfo *types = (TypeInfo *)w->types.data;
    PyObject *type_list = PyList_New((Py_ssize_t)w->types.len);
    if (!type_list) goto done;
    for (size_t t = 0; t < w->types.len; t++) {
        Py_INCREF(types[t].tp);
        PyList_SET_ITEM(type_list, (Py_ssize_t)t, (PyObject *)types[t].tp);
    }
    PyObject *sites = Py_NewRef(Py_None);
    if (w->site_fn) {
        Py_SETREF(sites, PyBytes_FromStringAndSize(w->osite.data, (Py_ssize_t)(n * 4)));
    }
    if (!sites) {
        Py_DECREF(type_list);
        goto done;
    }
    PyObject *site_list = w->site_list ? Py_NewRef(w->site_list) : PyList_New(0);
    if (!site_list) {
        Py_DECREF(type_list);
        Py_DECREF(sites);
        goto done;
    }
    res = Py_BuildValue(
        "{s:O,s:O,s:y#,s:y#,s:y#,s:y#,s:y#,s:y#,s:y#,s:y#,s:N,s:L,s:N,s:N}", "sorted_ids", ids_b, "order",
        order_b, "types", w->otype.data, (Py_ssize_t)(n * sizeof(uint32_t)), "sizes",
        w->osize.data, (Py_ssize_t)(n * sizeof(int64_t)), "offsets", w->offsets.data,
        (Py_ssize_t)((n + 1) * sizeof(int64_t)), "targets", w->targets.data,
        (Py_ssize_t)(w->targets.len * sizeof(uint32_t)), "roots", root_idx->data,
        (Py_ssize_t)(root_idx->len * sizeof(int32_t)), "unreached", unreached->data,
        (Py_ssize_t)(unreached->len * sizeof(uint32_t)), "native_index", w->native_idx.data,
        (Py_ssize_t)(w->native_idx.len * sizeof(uint32_t)), "native_bytes",
        w->native_bytes.data, (Py_ssize_t)(w->native_bytes.len * sizeof(int64_t)),
        "type_objects", type_list, "sizeof_errors", (long long)w->sizeof_errors, "sites", sites,
        "site_table", site_list);
done:
    PyMem_RawFree(tk);
    PyMem_RawFree(tv);
    Py_XDECREF(ids_b);
    Py_XDECREF(order_b);
    return res;
}

static void walk_free(Walk *w) {
    if (w->held)
        for (size_t i = 0; i < w->objs.len; i++) Py_DECREF(VEC_AT(w->objs, PyObject *, i));
    for (size_t t = 0; t < w->types.len; t++) {
        TypeInfo *ti = &VEC_AT(w->types, TypeInfo, t);
        Py_DECREF(ti->tp);
        Py_XDECREF(ti->sizeof_fn);
    }
    Vec *vecs[] = {&w->objs, &w->otype, &w->osize, &w->offsets, &w->targets, &w->native_idx,
                   &w->native_bytes, &w->barriers, &w->machinery, &w->batch, &w->batch2, &w->types};
    for (size_t i = 0; i < sizeof(vecs) / sizeof(vecs[0]); i++) PyMem_RawFree(vecs[i]->data);
    ptrmap_free(&w->seen);
    ptrmap_free(&w->type_map);
    PyMem_Free(w->excluded_types);
    PyMem_RawFree(w->osite.data);
    Py_XDECREF(w->site_ids);
    Py_XDECREF(w->site_list);
}

/* Insert o as excluded up front; a barrier's referents are machinery unless reached. */
static int add_barrier(Walk *w, PyObject *o, int follow) {
    if (ptrmap_reserve(&w->seen) < 0) return -1;
    size_t slot = ptrmap_slot(&w->seen, (uintptr_t)o);
    if (w->seen.slots[slot].key) return 0;
    if (follow && vec_push_ptr(&w->barriers, o) < 0) return -1;
    ptrmap_set(&w->seen, slot, (uintptr_t)o, MARK_EXCLUDED);
    return 0;
}

static PyObject *walker_walk(PyObject *self, PyObject *args) {
    PyObject *roots, *seeds, *exclude_objects, *exclude_types, *ndarray_type;
    PyObject *site_fn = Py_None;
    Py_ssize_t gc_head, hint = 0;
    int keep_edges = 1;
    if (!PyArg_ParseTuple(args, "O!O!O!O!On|nOp:walk", &PyList_Type, &roots, &PyList_Type,
                          &seeds, &PyList_Type, &exclude_objects, &PyTuple_Type, &exclude_types,
                          &ndarray_type, &gc_head, &hint, &site_fn, &keep_edges))
        return NULL;
    if (site_fn != Py_None && !PyCallable_Check(site_fn)) {
        PyErr_SetString(PyExc_TypeError, "site_fn must be callable or None");
        return NULL;
    }
    if (ndarray_type != Py_None && !PyType_Check(ndarray_type)) {
        PyErr_SetString(PyExc_TypeError, "ndarray_type must be a type or None");
        return NULL;
    }
    Walk w;
    memset(&w, 0, sizeof(w));
    w.objs.item = w.barriers.item = w.machinery.item = w.batch.item = w.batch2.item =
        sizeof(PyObject *);
    w.otype.item = w.targets.item = w.native_idx.item = sizeof(uint32_t);
    w.osize.item = w.offsets.item = w.native_bytes.item = sizeof(int64_t);
    w.types.item = sizeof(TypeInfo);
    w.gc_head = gc_head;
    w.keep_edges = keep_edges;
    w.site_fn = site_fn == Py_None ? NULL : site_fn;
    w.osite.item = sizeof(int32_t);
    w.ndarray_type = ndarray_type == Py_None ? NULL : (PyTypeObject *)ndarray_type;
    PyObject *result = NULL;
    Vec root_idx = {NULL, 0, 0, sizeof(int32_t)}, unreached = {NULL, 0, 0, sizeof(uint32_t)};
    int gc_was_enabled = PyGC_Disable();

    /* Held for the whole walk; no Python code runs that could mutate them. */
    Py_INCREF(roots);
    Py_INCREF(seeds);

    w.object_sizeof = PyDict_GetItemString(PyBaseObject_Type.tp_dict, "__sizeof__");
    if (!w.object_sizeof) {
        PyErr_SetString(PyExc_RuntimeError, "object.__sizeof__ not found");
        goto fail;
    }
    w.n_excluded_types = PyTuple_GET_SIZE(exclude_types);
    w.excluded_types = PyMem_Malloc((size_t)(w.n_excluded_types + 1) * sizeof(PyTypeObject *));
    if (!w.excluded_types) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < w.n_excluded_types; i++) {
        PyObject *t = PyTuple_GET_ITEM(exclude_types, i);
        if (!PyType_Check(t)) {
            PyErr_SetString(PyExc_TypeError, "exclude_types must hold types");
            goto fail;
        }
        w.excluded_types[i] = (PyTypeObject *)t;
    }
    Py_ssize_t n_seeds = PyList_GET_SIZE(seeds), n_roots = PyList_GET_SIZE(roots);
    /* Expected object count: the caller's hint (the last walk), else a guess from seeds. */
    size_t expect = (size_t)(hint > 0 ? hint + hint / 8 : n_seeds * 3) + (size_t)n_roots + 1024;
    if (ptrmap_init(&w.seen, expect) < 0 || ptrmap_init(&w.type_map, 1024) < 0 ||
        vec_reserve(&w.objs, expect) < 0 || vec_reserve(&w.offsets, expect + 1) < 0) {
        PyErr_NoMemory();
        goto fail;
    }
    VEC_AT(w.offsets, int64_t, 0) = 0;
    w.offsets.len = 1;

    /* The argument containers are excluded but not followed (they hold everything). */
    PyObject *own[] = {roots, seeds, exclude_objects, exclude_types};
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        if (add_barrier(&w, own[i], 0) < 0) goto nomem;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(exclude_objects); i++)
        if (add_barrier(&w, PyList_GET_ITEM(exclude_objects, i), 1) < 0) goto nomem;

    /* Phase 1: the roots. */
    if (vec_reserve(&root_idx, (size_t)n_roots + 1) < 0) goto nomem;
    for (Py_ssize_t i = 0; i < n_roots; i++) {
        uint32_t idx;
        if (lookup_or_add(&w, PyList_GET_ITEM(roots, i), &idx) < 0) goto nomem;
        VEC_AT(root_idx, int32_t, root_idx.len++) = idx >= MARK_MACHINERY ? -1 : (int32_t)idx;
    }
    if (drain(&w) < 0) goto fail;

    /* Phase 2: the machinery. */
    for (Py_ssize_t i = 0; i < n_seeds; i++) {
        PyObject *o = PyList_GET_ITEM(seeds, i);
        if (is_excluded_type(&w, Py_TYPE(o)) && add_barrier(&w, o, 1) < 0) goto nomem;
    }
    if (mark_machinery(&w) < 0) goto fail;

    /* Phase 3: whatever nothing above reached. */
    for (Py_ssize_t i = 0; i < n_seeds; i++) {
        PyObject *o = PyList_GET_ITEM(seeds, i);
        size_t before = w.objs.len;
        uint32_t idx;
        if (lookup_or_add(&w, o, &idx) < 0) goto nomem;
        if (w.objs.len > before) {
            if (vec_push_u32(&unreached, idx) < 0) goto nomem;
            if (drain(&w) < 0) goto fail;
        }
    }
    ptrmap_free(&w.seen);
    if (measure(&w) < 0) goto fail;
    result = finish(&w, &root_idx, &unreached);
    goto fail; /* common cleanup */
nomem:
    if (!PyErr_Occurred()) PyErr_NoMemory();
fail:
    walk_free(&w);
    PyMem_RawFree(root_idx.data);
    PyMem_RawFree(unreached.data);
    Py_DECREF(roots);
    Py_DECREF(seeds);
    if (gc_was_enabled) PyGC_Enable();
    return result;
}

/* match(a, b): for each id of the ascending uint64 array b, its position in the ascending
   array a, or -1.  One linear merge: diffs of two snapshots are merges, not searches. */
static PyObject *walker_match(PyObject *self, PyObject *args) {
    Py_buffer a, b;
    if (!PyArg_ParseTuple(args, "y*y*:match", &a, &b)) return NULL;
    PyObject *out = NULL;
    if (a.len % 8 || b.len % 8) {
        PyErr_SetString(PyExc_ValueError, "match expects two uint64 arrays");
        goto done;
    }
    size_t na = (size_t)a.len / 8, nb = (size_t)b.len / 8;
    if (!(out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(nb * sizeof(int64_t))))) goto done;
    const uint64_t *ka = (const uint64_t *)a.buf, *kb = (const uint64_t *)b.buf;
    int64_t *pos = (int64_t *)PyBytes_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS
    size_t i = 0;
    for (size_t j = 0; j < nb; j++) {
        while (i < na && ka[i] < kb[j]) i++;
        pos[j] = (i < na && ka[i] == kb[j]) ? (int64_t)i : -1;
    }
    Py_END_ALLOW_THREADS
done:
    PyBuffer_Release(&a);
    PyBuffer_Release(&b);
    return out;
}

static PyMethodDef walker_methods[] = {
    {"match", walker_match, METH_VARARGS,
     "match(a, b) -> bytes of int64: position in sorted a of each id of sorted b, or -1"},
    {"walk", walker_walk, METH_VARARGS,
     "walk(roots, seeds, exclude_objects, exclude_types, ndarray_type, gc_head, size_hint=0,"
     " site_fn=None, edges=True) -> dict\n\n"
     "Visit every object reachable from roots, then every unreached seed; return columns."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef walker_module = {
    PyModuleDef_HEAD_INIT, "_walker", "Compiled heap walker of jupyter_memsnap.", -1,
    walker_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__walker(void) {
    PyObject *m = PyModule_Create(&walker_module);
    if (!m) return NULL;
    if (PyModule_AddIntConstant(m, "NDARRAY_STRUCT_SIZE", (long)sizeof(PyArrayObject_fields)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
