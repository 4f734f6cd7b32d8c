/*
 * jupyter_memsnap.model._graph: graph algorithms over a heap snapshot's reference graph.
 *
 * Inputs come through the buffer protocol (1-D, C-contiguous, checked item size and format);
 * results are returned as bytearray objects that the Python wrapper views with
 * np.frombuffer.  Everything is iterative, and the computation runs with the GIL released.
 *
 * The graph: n nodes in CSR form (offsets uint32[n+1], targets int32[offsets[n]]) plus a
 * virtual super-root whose children are root_children (int32).  The inputs are validated up
 * front; the hot loops also bound-check every index they read, so that a caller mutating a
 * buffer from another thread during the call gets a RuntimeError, never a crash.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

enum { E_OK, E_NOMEM, E_RANGE, E_OFF0, E_OFFDEC, E_OFFEND, E_CHANGED, E_CYCLE, E_EDGES, E_ORDER };

typedef struct {
    int code;
    const char *name;
    Py_ssize_t index;
    long long value, lo, hi;
} Err;

static PyObject *
raise_err(const Err *e)
{
    switch (e->code) {
    case E_NOMEM:
        return PyErr_NoMemory();
    case E_RANGE:
        PyErr_Format(PyExc_ValueError, "%s[%zd]=%lld out of range [%lld, %lld)", e->name,
                     e->index, e->value, e->lo, e->hi);
        break;
    case E_OFF0:
        PyErr_Format(PyExc_ValueError, "offsets[0] must be 0, got %lld", e->value);
        break;
    case E_OFFDEC:
        PyErr_Format(PyExc_ValueError,
                     "offsets must be non-decreasing: offsets[%zd]=%lld > offsets[%zd]=%lld",
                     e->index, e->lo, e->index + 1, e->value);
        break;
    case E_OFFEND:
        PyErr_Format(PyExc_ValueError, "offsets[-1]=%lld must equal len(targets)=%lld",
                     e->value, e->hi);
        break;
    case E_EDGES:
        PyErr_Format(PyExc_ValueError,
                     "graph too large: %lld references (at most %lld: in-degrees are int32)",
                     e->value, e->hi);
        break;
    case E_CHANGED:
        PyErr_SetString(PyExc_RuntimeError, "input buffers were modified during the call");
        break;
    case E_CYCLE:
        PyErr_SetString(PyExc_ValueError, "idom is not a forest: it contains a cycle");
        break;
    case E_ORDER:
        PyErr_Format(PyExc_ValueError, "%s must be strictly ascending: %s[%zd]=%lld after %lld",
                     e->name, e->name, e->index, e->value, e->lo);
        break;
    default:
        PyErr_SetString(PyExc_SystemError, "_graph: unknown error");
    }
    return NULL;
}

/* ---- scratch memory ------------------------------------------------------------------ */

/* Allocate count * size bytes (zeroed if asked), or NULL; release with free().  Large arrays
 * go on transparent huge pages where the OS has them: these algorithms are bound by the
 * latency of random accesses, and TLB misses are a large part of it. */
static void *
scratch(size_t count, size_t size, int zero)
{
    if (count == 0)
        count = 1;
    if (count > SIZE_MAX / size)
        return NULL;
    size_t bytes = count * size;
#if defined(MADV_HUGEPAGE)
    const size_t huge = (size_t)1 << 21;
    if (bytes >= 2 * huge && bytes <= SIZE_MAX - huge) {
        void *p = NULL;
        size_t rounded = (bytes + huge - 1) & ~(huge - 1);
        if (posix_memalign(&p, huge, rounded) != 0)
            return NULL;
        (void)madvise(p, rounded, MADV_HUGEPAGE);
        if (zero)
            memset(p, 0, bytes);
        return p;
    }
#endif
    return zero ? calloc(count, size) : malloc(bytes);
}

/* ---- buffers ------------------------------------------------------------------------- */

typedef struct {
    Py_buffer v[8];
    int n;
} Bufs;

static void
bufs_release(Bufs *b)
{
    while (b->n > 0)
        PyBuffer_Release(&b->v[--b->n]);
}

/* Accept struct format codes for a signed integer ('i') or a 1-byte mask ('m'). */
static int
format_ok(const char *fmt, char kind)
{
    if (fmt == NULL)
        fmt = "B";
    if (fmt[0] == '@' || fmt[0] == '=') {
        fmt++;
    }
    else if (fmt[0] == '<' || fmt[0] == '>' || fmt[0] == '!') {
        if ((fmt[0] == '<') != (PY_LITTLE_ENDIAN != 0))
            return 0;
        fmt++;
    }
    if (fmt[0] == '\0' || fmt[1] != '\0')
        return 0;
    return strchr(kind == 'i' ? "bhilq" : kind == 'u' ? "BHILQ" : "?Bb", fmt[0]) != NULL;
}

/* Get a 1-D C-contiguous buffer of `itemsize`-byte items; on error set an exception. */
static int
get_array(Bufs *b, PyObject *obj, const char *name, char kind, Py_ssize_t itemsize,
          const void **data, Py_ssize_t *len)
{
    const char *what = kind == 'm'   ? "bool/uint8"
                       : kind == 'u' ? "uint32"
                                     : (itemsize == 8 ? "int64" : "int32");
    Py_buffer *v = &b->v[b->n];
    if (PyObject_GetBuffer(obj, v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        if (PyErr_ExceptionMatches(PyExc_TypeError) || PyErr_ExceptionMatches(PyExc_BufferError) ||
            PyErr_ExceptionMatches(PyExc_ValueError)) { /* numpy: "not C-contiguous" */
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "%s must be a C-contiguous 1-D %s buffer, got %.100s",
                         name, what, Py_TYPE(obj)->tp_name);
        }
        return -1;
    }
    b->n++;
    if (v->ndim != 1 || v->itemsize != itemsize || !format_ok(v->format, kind)) {
        PyErr_Format(PyExc_TypeError,
                     "%s must be a 1-D %s buffer, got format '%s', itemsize %zd, ndim %d", name,
                     what, v->format ? v->format : "B", v->itemsize, v->ndim);
        return -1;
    }
    *data = v->buf;
    *len = v->len / itemsize;
    return 0;
}

static PyObject *
new_output(Py_ssize_t nbytes, char **data)
{
    PyObject *o = PyByteArray_FromStringAndSize(NULL, nbytes);
    if (o != NULL)
        *data = PyByteArray_AS_STRING(o);
    return o;
}

/* ---- validation (runs without the GIL) ----------------------------------------------- */

static int
check_csr(const uint32_t *off, const int32_t *tgt, int32_t n, Py_ssize_t m, Err *e)
{
    if (off[0] != 0) {
        *e = (Err){.code = E_OFF0, .value = off[0]};
        return -1;
    }
    for (int32_t i = 0; i < n; i++) {
        if (off[i + 1] < off[i]) {
            *e = (Err){.code = E_OFFDEC, .index = i, .lo = off[i], .value = off[i + 1]};
            return -1;
        }
    }
    if (off[n] != m) {
        *e = (Err){.code = E_OFFEND, .value = off[n], .hi = m};
        return -1;
    }
    if (m > (Py_ssize_t)INT32_MAX - 2 - n) {
        *e = (Err){.code = E_EDGES, .value = m, .hi = (int64_t)INT32_MAX - 2 - n};
        return -1;
    }
    for (Py_ssize_t j = 0; j < m; j++) {
        if ((uint32_t)tgt[j] >= (uint32_t)n) {
            *e = (Err){.code = E_RANGE, .name = "targets", .index = j, .value = tgt[j], .hi = n};
            return -1;
        }
    }
    return 0;
}

static int
check_index(const int32_t *a, Py_ssize_t len, int32_t lo, int64_t hi, const char *name, Err *e)
{
    for (Py_ssize_t j = 0; j < len; j++) {
        if (a[j] < lo || a[j] >= hi) {
            *e = (Err){.code = E_RANGE, .name = name, .index = j, .value = a[j], .lo = lo, .hi = hi};
            return -1;
        }
    }
    return 0;
}

/* Common checks for (offsets, targets, sizes): sets *n or raises. */
static int
graph_shape(Py_ssize_t n_off, Py_ssize_t n_sizes, int32_t *n)
{
    if (n_off < 1) {
        PyErr_SetString(PyExc_ValueError, "offsets must have n + 1 >= 1 entries");
        return -1;
    }
    if (n_off - 1 > INT32_MAX - 2) {
        PyErr_Format(PyExc_ValueError, "graph too large: %zd nodes (at most %d)", n_off - 1,
                     INT32_MAX - 2);
        return -1;
    }
    if (n_sizes != n_off - 1) {
        PyErr_Format(PyExc_ValueError, "sizes has length %zd, expected n=%zd", n_sizes, n_off - 1);
        return -1;
    }
    *n = (int32_t)(n_off - 1);
    return 0;
}

/* ---- dominator tree (semi-NCA) -------------------------------------------------------- */

/* Per preorder number, the path-compressed forest of semi-NCA: ancestor and the minimum
 * semidominator on the compressed path (kept together: one cache miss fetches both). */
typedef struct {
    int32_t anc, best;
} Link;

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)0)
#endif

/*
 * Vertices are numbered in DFS preorder, 0 being the super-root.  Vertices >= last are
 * "linked" while vertex last - 1 is processed; eval returns the minimum semidominator on the
 * linked part of the path from v towards the root, compressing the path (iteratively).
 */
static inline int32_t
eval(int32_t v, int32_t last, Link *x, int32_t *stack)
{
    if (x[v].anc < last)
        return x[v].best;
    int32_t sp = 0;
    do {
        stack[sp++] = v;
        v = x[v].anc;
    } while (x[v].anc >= last);
    int32_t p = v, pbest = x[v].best;
    do {
        v = stack[--sp];
        x[v].anc = x[p].anc;
        if (pbest < x[v].best)
            x[v].best = pbest;
        else
            pbest = x[v].best;
        p = v;
    } while (sp > 0);
    return x[v].best;
}

#define GUARD(cond)            \
    do {                       \
        if (cond)              \
            goto changed;      \
    } while (0)

static void
dominators(const uint32_t *off, const int32_t *tgt, const int32_t *rc, const int64_t *sz,
           int32_t n, Py_ssize_t m, Py_ssize_t k, int32_t *idom_out, int64_t *ret_out, Err *e)
{
    if (check_csr(off, tgt, n, m, e) < 0 || check_index(rc, k, 0, n, "root_children", e) < 0)
        return;
    const size_t cap = (size_t)n + 2;
    const uint64_t um = (uint64_t)m;
    int32_t *pre = scratch(cap, sizeof(int32_t), 0); /* node -> preorder number */
    int32_t *cnt = scratch(cap, sizeof(int32_t), 1); /* preorder -> in-degree */
    Link *x = scratch(cap, sizeof(Link), 0);
    int32_t *idom = scratch(cap, sizeof(int32_t), 0); /* DFS parent, then idom */
    int32_t *semi = scratch(cap, sizeof(int32_t), 0);
    int32_t *vertex = scratch(cap, sizeof(int32_t), 0);
    int32_t *stk = scratch(cap, sizeof(int32_t), 0); /* DFS stack, then eval stack */
    int64_t *cur = scratch(cap, sizeof(int64_t), 0); /* DFS cursors, pred starts, sums */
    /* Each edge's target preorder number, then (step 2 on) the predecessor lists. */
    int32_t *epre = scratch((size_t)m + (size_t)k + 1, sizeof(int32_t), 0), *preds = epre;
    uint64_t *pairs = NULL;
    if (!pre || !cnt || !x || !idom || !semi || !vertex || !stk || !cur || !epre)
        goto nomem;

    /* 1. Iterative DFS from the super-root, children in order.  Records each edge's target
     *    preorder number and counts predecessors. */
    for (int32_t i = 0; i < n; i++)
        pre[i] = -1;
    vertex[0] = -1;
    x[0] = (Link){0, 0};
    idom[0] = semi[0] = 0;
    int32_t N = 1;
    for (Py_ssize_t j = 0; j < k; j++) {
        int32_t r = rc[j];
        GUARD((uint32_t)r >= (uint32_t)n);
        if (pre[r] >= 0) {
            cnt[pre[r]]++;
            continue;
        }
        cnt[N]++;
        int32_t top = -1, t = r, parent = 0;
        for (;;) { /* visit t, a child of preorder number `parent`, then find the next */
            int64_t a = off[t], b = off[t + 1];
            GUARD((uint64_t)a > um || (uint64_t)b > um || N > n);
            for (int64_t c = a; c < b && c < a + 16; c++) /* fetch children in parallel */
                if ((uint32_t)tgt[c] < (uint32_t)n) {
                    PREFETCH(&pre[tgt[c]]);
                    PREFETCH(&off[tgt[c]]);
                }
            pre[t] = N;
            vertex[N] = t;
            x[N].anc = idom[N] = parent;
            N++;
            stk[++top] = t;
            cur[top] = a;
            for (t = -1; top >= 0 && t < 0;) {
                int32_t u = stk[top];
                int64_t c = cur[top], end = off[u + 1];
                GUARD((uint64_t)end > um);
                for (; c < end; c++) {
                    int32_t v = tgt[c];
                    GUARD((uint32_t)v >= (uint32_t)n);
                    if (c + 16 < end && (uint32_t)tgt[c + 16] < (uint32_t)n)
                        PREFETCH(&pre[tgt[c + 16]]);
                    int32_t q = pre[v] < 0 ? N : pre[v];
                    epre[c] = q;
                    cnt[q]++;
                    if (q == N) {
                        t = v;
                        break;
                    }
                }
                if (t < 0) {
                    top--;
                }
                else {
                    cur[top] = c + 1;
                    parent = pre[u];
                }
            }
            if (t < 0)
                break;
        }
    }

    /* 2. Predecessors in preorder numbers: those of q are preds[rs[q]:rs[q + 1]].  Filled in
     *    two cache-friendly passes: (q, p) pairs into NB coarse buckets of q, then each
     *    bucket into place, with rs[q + 1] as the cursor of q. */
    int64_t *rs = cur;
    rs[0] = rs[1] = 0;
    for (int32_t q = 1; q < N; q++)
        rs[q + 1] = rs[q] + cnt[q - 1];
    const int64_t R = rs[N] + cnt[N - 1];
    enum { NB = 1024 };
    int shift = 0;
    while ((N >> shift) >= NB)
        shift++;
    int64_t bpos[NB + 1];
    for (int32_t bk = 0; bk <= (N - 1) >> shift; bk++)
        bpos[bk] = rs[((int64_t)bk << shift) + 1];
    GUARD(R > m + k);
    pairs = scratch((size_t)R + 1, sizeof(uint64_t), 0);
    if (!pairs)
        goto nomem;
    for (Py_ssize_t j = 0; j < k; j++) {
        int32_t r = rc[j];
        GUARD((uint32_t)r >= (uint32_t)n || pre[r] <= 0 || bpos[pre[r] >> shift] >= R);
        pairs[bpos[pre[r] >> shift]++] = (uint64_t)pre[r] << 32;
    }
    for (int32_t u = 0; u < n; u++) {
        int32_t p = pre[u];
        if (p < 0)
            continue;
        int64_t a = off[u], b = off[u + 1];
        GUARD((uint64_t)a > um || (uint64_t)b > um);
        for (int64_t c = a; c < b; c++) {
            int32_t q = epre[c];
            GUARD(q <= 0 || q >= N || bpos[q >> shift] >= R);
            pairs[bpos[q >> shift]++] = (uint64_t)q << 32 | (uint32_t)p;
        }
    }
    for (int64_t j = 0; j < R; j++) {
        int32_t q = (int32_t)(pairs[j] >> 32);
        GUARD(q <= 0 || q >= N || rs[q + 1] >= R);
        preds[rs[q + 1]++] = (int32_t)(uint32_t)pairs[j];
    }
    GUARD(rs[N] != R);

    /* 3. Semidominators, in reverse preorder. */
    for (int32_t i = N - 1; i >= 1; i--) {
        /* Software pipeline over eval's memory accesses for the vertices processed next. */
        if (i > 8) {
            for (int64_t j = rs[i - 8], end = rs[i - 7]; j < end && j < rs[i - 8] + 16; j++)
                if ((uint32_t)preds[j] < (uint32_t)N)
                    PREFETCH(&x[preds[j]]);
            for (int64_t j = rs[i - 4], end = rs[i - 3]; j < end && j < rs[i - 4] + 16; j++)
                if ((uint32_t)preds[j] < (uint32_t)N)
                    PREFETCH(&x[x[preds[j]].anc]);
        }
        int32_t s = idom[i];
        for (int64_t j = rs[i], end = rs[i + 1]; j < end; j++) {
            int32_t v = preds[j];
            GUARD((uint32_t)v >= (uint32_t)N);
            if (j + 16 < end && (uint32_t)preds[j + 16] < (uint32_t)N)
                PREFETCH(&x[preds[j + 16]]);
            int32_t c = v <= i ? v : eval(v, i + 1, x, stk);
            if (c < s)
                s = c;
        }
        semi[i] = x[i].best = s;
    }

    /* 4. Immediate dominators: nearest common ancestor of parent and semidominator. */
    for (int32_t i = 1; i < N; i++) {
        int32_t d = idom[i];
        while (d > semi[i])
            d = idom[d];
        idom[i] = d;
    }

    /* 5. Retained sizes, accumulated child-to-parent in reverse preorder; outputs. */
    int64_t *acc = cur;
    for (int32_t p = 1; p < N; p++)
        acc[p] = sz[vertex[p]];
    for (int32_t p = N - 1; p >= 1; p--)
        acc[idom[p]] += acc[p];
    for (int32_t v = 0; v < n; v++) {
        idom_out[v] = -2;
        ret_out[v] = 0;
    }
    for (int32_t p = 1; p < N; p++) {
        int32_t v = vertex[p];
        idom_out[v] = idom[p] == 0 ? -1 : vertex[idom[p]];
        ret_out[v] = acc[p];
    }
    goto done;
nomem:
    *e = (Err){.code = E_NOMEM};
    goto done;
changed:
    *e = (Err){.code = E_CHANGED};
done:
    free(pre);
    free(cnt);
    free(x);
    free(idom);
    free(semi);
    free(vertex);
    free(stk);
    free(cur);
    free(epre);
    free(pairs);
}

PyDoc_STRVAR(dominator_tree_doc,
"dominator_tree(offsets, targets, root_children, sizes) -> (idom, retained)\n\n"
"offsets uint32[n+1], targets int32[m], root_children int32[k], sizes int64[n].\n"
"Returns bytearrays holding idom int32[n] (-1: the super-root, -2: unreachable) and\n"
"retained int64[n] (sum of sizes over each node's dominator subtree).");

static PyObject *
py_dominator_tree(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *o_off, *o_tgt, *o_rc, *o_sz, *o_idom = NULL, *o_ret = NULL, *result = NULL;
    const void *off, *tgt, *rc, *sz;
    Py_ssize_t n_off, m, k, n_sz;
    char *idom_out = NULL, *ret_out = NULL;
    int32_t n;
    Bufs b = {.n = 0};
    Err e = {.code = E_OK};

    if (!PyArg_ParseTuple(args, "OOOO:dominator_tree", &o_off, &o_tgt, &o_rc, &o_sz))
        return NULL;
    if (get_array(&b, o_off, "offsets", 'u', 4, &off, &n_off) < 0 ||
        get_array(&b, o_tgt, "targets", 'i', 4, &tgt, &m) < 0 ||
        get_array(&b, o_rc, "root_children", 'i', 4, &rc, &k) < 0 ||
        get_array(&b, o_sz, "sizes", 'i', 8, &sz, &n_sz) < 0 || graph_shape(n_off, n_sz, &n) < 0)
        goto done;
    o_idom = new_output((Py_ssize_t)n * 4, &idom_out);
    o_ret = new_output((Py_ssize_t)n * 8, &ret_out);
    if (o_idom == NULL || o_ret == NULL)
        goto done;
    Py_BEGIN_ALLOW_THREADS
    dominators(off, tgt, rc, sz, n, m, k, (int32_t *)idom_out, (int64_t *)ret_out, &e);
    Py_END_ALLOW_THREADS
    if (e.code != E_OK)
        raise_err(&e);
    else
        result = PyTuple_Pack(2, o_idom, o_ret);
done:
    bufs_release(&b);
    Py_XDECREF(o_idom);
    Py_XDECREF(o_ret);
    return result;
}

/* ---- type-inclusive sizes ------------------------------------------------------------ */

static void
type_incl(const int32_t *idom, const int64_t *ret, const int32_t *ty, int32_t n, int64_t nt,
          int64_t *total, Err *e)
{
    if (check_index(idom, n, -2, n, "idom", e) < 0 ||
        check_index(ty, n, 0, nt, "type_index", e) < 0)
        return;
    int64_t *cs = scratch((size_t)n + 2, sizeof(int64_t), 1); /* children CSR */
    int32_t *kids = scratch((size_t)n + 1, sizeof(int32_t), 0);
    int32_t *stk = scratch((size_t)n + 1, sizeof(int32_t), 0);
    int64_t *cur = scratch((size_t)n + 1, sizeof(int64_t), 0);
    int32_t *active = scratch((size_t)nt + 1, sizeof(int32_t), 1); /* open ancestors/type */
    if (!cs || !kids || !stk || !cur || !active) {
        *e = (Err){.code = E_NOMEM};
        goto done;
    }
    memset(total, 0, (size_t)nt * sizeof(int64_t));
    for (int32_t v = 0; v < n; v++) {
        int32_t p = idom[v];
        GUARD(p < -2 || p >= n);
        if (p >= 0)
            cs[p + 2]++;
    }
    for (int32_t q = 2; q <= n + 1; q++)
        cs[q] += cs[q - 1];
    for (int32_t v = 0; v < n; v++) {
        int32_t p = idom[v];
        GUARD(p < -2 || p >= n || (p >= 0 && cs[p + 1] >= n));
        if (p >= 0)
            kids[cs[p + 1]++] = v;
    }
    /* Preorder walk of each tree; a node counts when no open ancestor has its type. */
    int32_t visited = 0;
    for (int32_t r = 0; r < n; r++) {
        if (idom[r] >= 0)
            continue;
        int32_t t = ty[r], top = 0;
        GUARD(t < 0 || t >= nt);
        if (active[t]++ == 0)
            total[t] += ret[r];
        visited++;
        stk[0] = r;
        cur[0] = cs[r];
        while (top >= 0) {
            int32_t u = stk[top];
            if (cur[top] < cs[u + 1]) {
                int32_t v = kids[cur[top]++];
                t = ty[v];
                GUARD(t < 0 || t >= nt || top + 1 >= n || visited >= n);
                if (active[t]++ == 0)
                    total[t] += ret[v];
                visited++;
                stk[++top] = v;
                cur[top] = cs[v];
            }
            else {
                t = ty[u];
                GUARD(t < 0 || t >= nt);
                active[t]--;
                top--;
            }
        }
    }
    if (visited != n)
        *e = (Err){.code = E_CYCLE};
    goto done;
changed:
    *e = (Err){.code = E_CHANGED};
done:
    free(cs);
    free(kids);
    free(stk);
    free(cur);
    free(active);
}

PyDoc_STRVAR(type_inclusive_doc,
"type_inclusive(idom, retained, type_index, n_types) -> bytearray of int64[n_types]\n\n"
"idom int32[n], retained int64[n], type_index int32[n]: per type, the retained size of its\n"
"nodes that have no proper dominator-tree ancestor of the same type.");

static PyObject *
py_type_inclusive(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *o_idom, *o_ret, *o_ty, *o_out = NULL, *result = NULL;
    const void *idom, *ret, *ty;
    Py_ssize_t n, n_ret, n_ty, nt;
    char *out = NULL;
    Bufs b = {.n = 0};
    Err e = {.code = E_OK};

    if (!PyArg_ParseTuple(args, "OOOn:type_inclusive", &o_idom, &o_ret, &o_ty, &nt))
        return NULL;
    if (get_array(&b, o_idom, "idom", 'i', 4, &idom, &n) < 0 ||
        get_array(&b, o_ret, "retained", 'i', 8, &ret, &n_ret) < 0 ||
        get_array(&b, o_ty, "type_index", 'i', 4, &ty, &n_ty) < 0)
        goto done;
    if (n_ret != n || n_ty != n) {
        PyErr_Format(PyExc_ValueError,
                     "idom, retained and type_index must have equal lengths, got %zd, %zd, %zd",
                     n, n_ret, n_ty);
        goto done;
    }
    if (n > INT32_MAX - 2) {
        PyErr_Format(PyExc_ValueError, "graph too large: %zd nodes (at most %d)", n,
                     INT32_MAX - 2);
        goto done;
    }
    if (nt < 0 || nt > PY_SSIZE_T_MAX / 8) {
        PyErr_Format(PyExc_ValueError, "n_types out of range: %zd", nt);
        goto done;
    }
    if ((o_out = new_output(nt * 8, &out)) == NULL)
        goto done;
    Py_BEGIN_ALLOW_THREADS
    type_incl(idom, ret, ty, (int32_t)n, nt, (int64_t *)out, &e);
    Py_END_ALLOW_THREADS
    if (e.code != E_OK)
        raise_err(&e);
    else
        result = Py_NewRef(o_out);
done:
    bufs_release(&b);
    Py_XDECREF(o_out);
    return result;
}

/* The first index of the ascending a[0:len] whose value is >= x. */
static Py_ssize_t
lower_bound(const int64_t *a, Py_ssize_t len, int64_t x)
{
    Py_ssize_t lo = 0, hi = len;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (a[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- reachable sizes ------------------------------------------------------------------ */

/* Node sizes: int64 each, or (compact) uint32 each with UINT32_MAX marking a size kept aside
 * in the ascending big_rows / big_values. */
typedef struct {
    const int64_t *wide;
    const uint32_t *small;
    const int64_t *big_rows, *big_values;
    Py_ssize_t n_big;
} Sizes;

static inline int64_t
size_at(const Sizes *z, int32_t v)
{
    if (z->wide)
        return z->wide[v];
    uint32_t x = z->small[v];
    if (x != UINT32_MAX || z->n_big == 0)
        return x;
    Py_ssize_t k = lower_bound(z->big_rows, z->n_big, v);
    return k < z->n_big && z->big_rows[k] == v ? z->big_values[k] : x;
}

static void
reach(const uint32_t *off, const int32_t *tgt, const Sizes *sz, const int32_t *starts,
      const uint8_t *stop, int32_t n, Py_ssize_t m, Py_ssize_t k, int64_t *out, Err *e)
{
    if (check_csr(off, tgt, n, m, e) < 0 || check_index(starts, k, 0, n, "starts", e) < 0)
        return;
    const uint64_t um = (uint64_t)m;
    uint8_t *stamp = scratch((size_t)n + 1, sizeof(uint8_t), 1); /* 1 byte: reset every 255 */
    int32_t *stk = scratch((size_t)n + 1, sizeof(int32_t), 0);
    if (!stamp || !stk) {
        *e = (Err){.code = E_NOMEM};
        goto done;
    }
    uint8_t cur = 0;
    for (Py_ssize_t j = 0; j < k; j++) {
        if (++cur == 0) { /* wrapped: forget all stamps */
            memset(stamp, 0, (size_t)n);
            cur = 1;
        }
        int32_t s = starts[j], top = 0;
        GUARD((uint32_t)s >= (uint32_t)n);
        int64_t total = size_at(sz, s);
        stamp[s] = cur;
        stk[top++] = s;
        while (top > 0) {
            int32_t u = stk[--top];
            int64_t a = off[u], b = off[u + 1];
            GUARD((uint64_t)a > um || (uint64_t)b > um);
            for (int64_t c = a; c < b; c++) {
                int32_t t = tgt[c];
                GUARD((uint32_t)t >= (uint32_t)n);
                if (stamp[t] != cur && !stop[t]) {
                    GUARD(top >= n);
                    stamp[t] = cur;
                    total += size_at(sz, t);
                    stk[top++] = t;
                }
            }
        }
        out[j] = total;
    }
    goto done;
changed:
    *e = (Err){.code = E_CHANGED};
done:
    free(stamp);
    free(stk);
}

PyDoc_STRVAR(reachable_sizes_doc,
"reachable_sizes(offsets, targets, sizes, starts, stop[, big_rows, big_values])\n"
"    -> bytearray of int64[len(starts)]\n\n"
"Per start node, the total size of the nodes reachable from it without entering nodes\n"
"whose stop flag (1-byte mask of length n) is set; the start itself always counts.  sizes\n"
"is int64[n], or uint32[n] with big_rows (ascending) and big_values (int64) giving the\n"
"sizes whose uint32 slot holds 0xFFFFFFFF.");

static PyObject *
py_reachable_sizes(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *o_off, *o_tgt, *o_sz, *o_st, *o_stop, *o_br = NULL, *o_bv = NULL, *o_out = NULL;
    PyObject *result = NULL;
    const void *off, *tgt, *sz, *st, *stop, *br = NULL, *bv = NULL;
    Py_ssize_t n_off, m, n_sz, k, n_stop, n_br = 0, n_bv = 0;
    char *out = NULL;
    int32_t n;
    Bufs b = {.n = 0};
    Err e = {.code = E_OK};

    if (!PyArg_ParseTuple(args, "OOOOO|OO:reachable_sizes", &o_off, &o_tgt, &o_sz, &o_st,
                          &o_stop, &o_br, &o_bv))
        return NULL;
    int compact = o_br != NULL;
    if (compact && o_bv == NULL) {
        PyErr_SetString(PyExc_TypeError, "reachable_sizes: big_rows needs big_values");
        return NULL;
    }
    if (get_array(&b, o_off, "offsets", 'u', 4, &off, &n_off) < 0 ||
        get_array(&b, o_tgt, "targets", 'i', 4, &tgt, &m) < 0 ||
        get_array(&b, o_sz, "sizes", compact ? 'u' : 'i', compact ? 4 : 8, &sz, &n_sz) < 0 ||
        get_array(&b, o_st, "starts", 'i', 4, &st, &k) < 0 ||
        get_array(&b, o_stop, "stop", 'm', 1, &stop, &n_stop) < 0 ||
        (compact && (get_array(&b, o_br, "big_rows", 'i', 8, &br, &n_br) < 0 ||
                     get_array(&b, o_bv, "big_values", 'i', 8, &bv, &n_bv) < 0)) ||
        graph_shape(n_off, n_sz, &n) < 0)
        goto done;
    if (n_stop != n) {
        PyErr_Format(PyExc_ValueError, "stop has length %zd, expected n=%d", n_stop, (int)n);
        goto done;
    }
    if (n_br != n_bv) {
        PyErr_Format(PyExc_ValueError, "big_rows has length %zd, big_values %zd", n_br, n_bv);
        goto done;
    }
    const int64_t *rows = br;
    for (Py_ssize_t j = 0; j < n_br; j++)
        if (rows[j] < 0 || rows[j] >= n || (j > 0 && rows[j] <= rows[j - 1])) {
            PyErr_SetString(PyExc_ValueError, "big_rows must be ascending rows in [0, n)");
            goto done;
        }
    if ((o_out = new_output(k * 8, &out)) == NULL)
        goto done;
    Sizes z = {.wide = compact ? NULL : sz, .small = compact ? sz : NULL, .big_rows = br,
               .big_values = bv, .n_big = n_br};
    Py_BEGIN_ALLOW_THREADS
    reach(off, tgt, &z, st, stop, n, m, k, (int64_t *)out, &e);
    Py_END_ALLOW_THREADS
    if (e.code != E_OK)
        raise_err(&e);
    else
        result = Py_NewRef(o_out);
done:
    bufs_release(&b);
    Py_XDECREF(o_out);
    return result;
}

/* ---- reach mask ------------------------------------------------------------------------ */

static void
reach_union(const uint32_t *off, const int32_t *tgt, const int32_t *starts, const uint8_t *stop,
            int32_t n, Py_ssize_t m, Py_ssize_t k, uint8_t *seen, Err *e)
{
    if (check_csr(off, tgt, n, m, e) < 0 || check_index(starts, k, 0, n, "starts", e) < 0)
        return;
    const uint64_t um = (uint64_t)m;
    int32_t *stk = scratch((size_t)n + 1, sizeof(int32_t), 0);
    if (!stk) {
        *e = (Err){.code = E_NOMEM};
        return;
    }
    int32_t top = 0;
    for (Py_ssize_t j = 0; j < k; j++) {
        int32_t s = starts[j];
        GUARD((uint32_t)s >= (uint32_t)n);
        if (!seen[s]) {
            seen[s] = 1;
            stk[top++] = s;
        }
    }
    while (top > 0) {
        int32_t u = stk[--top];
        int64_t a = off[u], b = off[u + 1];
        GUARD((uint64_t)a > um || (uint64_t)b > um);
        for (int64_t c = a; c < b; c++) {
            int32_t t = tgt[c];
            GUARD((uint32_t)t >= (uint32_t)n);
            if (!seen[t] && !stop[t]) {
                GUARD(top >= n);
                seen[t] = 1;
                stk[top++] = t;
            }
        }
    }
    goto done;
changed:
    *e = (Err){.code = E_CHANGED};
done:
    free(stk);
}

PyDoc_STRVAR(reach_mask_doc,
"reach_mask(offsets, targets, starts, stop) -> bytearray of uint8[n]\n\n"
"1 for every node reachable from any start without entering nodes whose stop flag (1-byte\n"
"mask of length n) is set; the starts themselves always are, and are expanded.");

static PyObject *
py_reach_mask(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *o_off, *o_tgt, *o_st, *o_stop, *o_out = NULL, *result = NULL;
    const void *off, *tgt, *st, *stop;
    Py_ssize_t n_off, m, k, n_stop;
    char *out = NULL;
    int32_t n;
    Bufs b = {.n = 0};
    Err e = {.code = E_OK};

    if (!PyArg_ParseTuple(args, "OOOO:reach_mask", &o_off, &o_tgt, &o_st, &o_stop))
        return NULL;
    if (get_array(&b, o_off, "offsets", 'u', 4, &off, &n_off) < 0 ||
        get_array(&b, o_tgt, "targets", 'i', 4, &tgt, &m) < 0 ||
        get_array(&b, o_st, "starts", 'i', 4, &st, &k) < 0 ||
        get_array(&b, o_stop, "stop", 'm', 1, &stop, &n_stop) < 0 ||
        graph_shape(n_off, n_off - 1, &n) < 0)
        goto done;
    if (n_stop != n) {
        PyErr_Format(PyExc_ValueError, "stop has length %zd, expected n=%d", n_stop, (int)n);
        goto done;
    }
    if ((o_out = new_output(n, &out)) == NULL)
        goto done;
    memset(out, 0, (size_t)n);
    Py_BEGIN_ALLOW_THREADS
    reach_union(off, tgt, st, stop, n, m, k, (uint8_t *)out, &e);
    Py_END_ALLOW_THREADS
    if (e.code != E_OK)
        raise_err(&e);
    else
        result = Py_NewRef(o_out);
done:
    bufs_release(&b);
    Py_XDECREF(o_out);
    return result;
}

/* ---- sole holders ---------------------------------------------------------------------- */

enum { UNREACHED = -1, SHARED = -2, KEPT = -3 };

/* Give v the traversal's label; 1 if that changed it (v is then expanded), 0 if not. */
static inline int
claim(int32_t *own, int32_t v, int32_t label)
{
    int32_t o = own[v];
    if (o == UNREACHED)
        own[v] = label;
    else if (label >= 0 && o >= 0 && o != label)
        own[v] = SHARED;
    else
        return 0;
    return 1;
}

static void
sole(const uint32_t *off, const int32_t *tgt, const int64_t *skip, Py_ssize_t ns,
     const int32_t *starts, Py_ssize_t k, Py_ssize_t kept, int32_t n, Py_ssize_t m, int32_t *own,
     Err *e)
{
    if (check_csr(off, tgt, n, m, e) < 0 || check_index(starts, k, 0, n, "starts", e) < 0)
        return;
    for (Py_ssize_t j = 0; j < ns; j++) {
        if (skip[j] < 0 || skip[j] >= m) {
            *e = (Err){.code = E_RANGE, .name = "skip", .index = j, .value = skip[j], .hi = m};
            return;
        }
        if (j > 0 && skip[j] <= skip[j - 1]) {
            *e = (Err){.code = E_ORDER, .name = "skip", .index = j, .value = skip[j],
                       .lo = skip[j - 1]};
            return;
        }
    }
    const uint64_t um = (uint64_t)m;
    int32_t *stk = scratch((size_t)n + 1, sizeof(int32_t), 0);
    if (!stk) {
        *e = (Err){.code = E_NOMEM};
        return;
    }
    for (int32_t v = 0; v < n; v++)
        own[v] = UNREACHED;
    for (Py_ssize_t j = 0; j < k; j++) {
        int32_t label = j < kept ? KEPT : (int32_t)(j - kept), top = 0;
        GUARD((uint32_t)starts[j] >= (uint32_t)n);
        if (claim(own, starts[j], label))
            stk[top++] = starts[j];
        while (top > 0) {
            int32_t u = stk[--top];
            int64_t a = off[u], b = off[u + 1];
            GUARD((uint64_t)a > um || (uint64_t)b > um);
            Py_ssize_t p = ns ? lower_bound(skip, ns, a) : 0;
            for (int64_t c = a; c < b; c++) {
                if (p < ns && skip[p] == c) {
                    p++;
                    continue;
                }
                int32_t t = tgt[c];
                GUARD((uint32_t)t >= (uint32_t)n);
                if (claim(own, t, label)) {
                    GUARD(top >= n);
                    stk[top++] = t;
                }
            }
        }
    }
    goto done;
changed:
    *e = (Err){.code = E_CHANGED};
done:
    free(stk);
}

PyDoc_STRVAR(sole_holders_doc,
"sole_holders(offsets, targets, starts, kept, skip) -> bytearray of int32[n]\n\n"
"starts int32[k], skip int64 (strictly ascending edge positions, not followed).  What\n"
"starts[:kept] reach is -3; of the rest, a node reached from exactly one candidate\n"
"starts[kept + j] is j, from several -2; -1 for nodes nothing reaches.");

static PyObject *
py_sole_holders(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *o_off, *o_tgt, *o_st, *o_skip, *o_out = NULL, *result = NULL;
    const void *off, *tgt, *st, *skip;
    Py_ssize_t n_off, m, k, kept, ns;
    char *out = NULL;
    int32_t n;
    Bufs b = {.n = 0};
    Err e = {.code = E_OK};

    if (!PyArg_ParseTuple(args, "OOOnO:sole_holders", &o_off, &o_tgt, &o_st, &kept, &o_skip))
        return NULL;
    if (get_array(&b, o_off, "offsets", 'u', 4, &off, &n_off) < 0 ||
        get_array(&b, o_tgt, "targets", 'i', 4, &tgt, &m) < 0 ||
        get_array(&b, o_st, "starts", 'i', 4, &st, &k) < 0 ||
        get_array(&b, o_skip, "skip", 'i', 8, &skip, &ns) < 0 ||
        graph_shape(n_off, n_off - 1, &n) < 0)
        goto done;
    if (kept < 0 || kept > k || k - kept > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "kept=%zd out of range [0, %zd]", kept, k);
        goto done;
    }
    if ((o_out = new_output((Py_ssize_t)n * 4, &out)) == NULL)
        goto done;
    Py_BEGIN_ALLOW_THREADS
    sole(off, tgt, skip, ns, st, k, kept, n, m, (int32_t *)out, &e);
    Py_END_ALLOW_THREADS
    if (e.code != E_OK)
        raise_err(&e);
    else
        result = Py_NewRef(o_out);
done:
    bufs_release(&b);
    Py_XDECREF(o_out);
    return result;
}

/* ---- module ---------------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"dominator_tree", py_dominator_tree, METH_VARARGS, dominator_tree_doc},
    {"type_inclusive", py_type_inclusive, METH_VARARGS, type_inclusive_doc},
    {"reachable_sizes", py_reachable_sizes, METH_VARARGS, reachable_sizes_doc},
    {"reach_mask", py_reach_mask, METH_VARARGS, reach_mask_doc},
    {"sole_holders", py_sole_holders, METH_VARARGS, sole_holders_doc},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot slots[] = {
#if PY_VERSION_HEX >= 0x030D0000
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "jupyter_memsnap.model._graph",
    .m_doc = "Compiled graph algorithms for jupyter_memsnap (see jupyter_memsnap.model.graph).",
    .m_size = 0,
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC
PyInit__graph(void)
{
    return PyModuleDef_Init(&module);
}
