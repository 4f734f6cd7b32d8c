/*
 * Compiled heap walker: every live object reachable in the process, as columns.
 *
 * walk(roots, seeds, exclude_objects, exclude_types, ndarray_type, gc_head, size_hint=0,
 *      site_fn=None, edges=True, native_types=(), graph_prefix=None)
 *
 * Phase 1 visits the closure of `roots` over tp_traverse referents plus the references
 * CPython hides from it (_cpython.h: str dict keys, code objects, type fields; numpy: an
 * array's base, dtype and object elements, a dtype's fields).  Objects in `exclude_objects`
 * or of an exact type in `exclude_types` are barriers: not recorded, not followed.  Phase 2
 * marks the machinery: everything reachable from a barrier (or from a seed of an excluded
 * type) through objects phase 1 did not reach.  Phase 3 visits, in order, each seed
 * (normally gc.get_objects()) that is still unknown: objects held from C, or garbage in
 * cycles.  Rows are numbered in discovery (BFS) order; `order` lists them by ascending
 * address.  An object whose reference count is zero is dead memory some traverse function
 * still reports (a free list): it is never recorded, held or followed.
 *
 * What has been seen is kept in bitmaps, one bit per 8 bytes of address space, in blocks of
 * 64 KiB of address space found through a small hash table: a few megabytes for millions of
 * objects, so that the test "seen?" on every reference is a cache hit, not a miss in a table
 * of a hundred megabytes.  Referents are stored while walking as 4-byte words, an address
 * within one of 127 windows of 256 MiB (rarely 12 bytes: the address itself); afterwards the
 * bitmaps give every object its rank by address (a prefix count), which turns each stored
 * referent into a row and sorts the object addresses in place into the ids.  Sizes take 4
 * bytes, with the rare larger one set aside: the walk's peak stays near 35 bytes per object.
 *
 * The GIL is held throughout and the cyclic GC is disabled.  While walking, only
 * tp_traverse functions, type lookups and the __sizeof__ of CPython's own types and of
 * numpy's ndarray run (no code that could free an object), so references are borrowed.
 * Objects whose size needs any other __sizeof__ are held by a strong reference before those
 * run, and with tracing every object is, until the end.  Instances of `native_types` are
 * returned too ("owners"), for the caller to add the native buffers they keep (see
 * native.py), and the address of every ndarray's and bytearray's own data buffer
 * ("native_address"), so that such buffers over that memory are not counted twice.
 * Nothing recurses: the object array is the BFS queue.
 *
 * frame_locals(frame) lists a frame's variables (running or finished) without building a dict on it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <numpy/arrayobject.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#endif
#include "_cpython.h"
#include "_interpreter.h"

/* Rows, plus one node per root and per holder group, are int32 in the graph algorithms. */
#define MAX_OBJECTS ((size_t)INT32_MAX - ((size_t)1 << 24))
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)0)
#endif
#define PREFETCH_AHEAD 8
#define TYPE_CACHE 256

/* ---------------------------------------------------------------- growable arrays */

struct Prefault;

typedef struct {
    void *data;
    size_t len, cap, item;
    size_t mapped; /* bytes mapped when data came from mmap, else 0 (PyMem_Raw) */
    int file;      /* 1 + the descriptor of the file it maps once big; 0: anonymous memory */
    struct Prefault *guard; /* while a helper thread faults its pages in (see Prefault) */
} Vec;

static void guard_lock(const Vec *v);
static void guard_unlock(const Vec *v);
static void vec_trim(Vec *v, size_t bytes);
#ifdef __linux__
static int vec_map(Vec *v, size_t bytes);
#endif

/* Arrays of more than BIG_BYTES live in their own mappings, on huge pages where the kernel
   allows: a walk fills hundreds of megabytes of fresh memory, and faulting it in 4 KiB at a
   time costs more than a tenth of the walk.  The graph's arrays map files the walk makes
   where the caller says (shared, their disk space allocated before any page is written: a
   full disk is a failed fallocate, never a SIGBUS), so that the kept graph is those files'
   page cache, written once, not memory copied into files afterwards.  What a file refuses
   goes on in anonymous memory. */
#define BIG_BYTES ((size_t)2 << 20)

#ifdef __linux__
#define EXT4_MAGIC 0xEF53     /* ext2, ext3 and ext4 */
#define XFS_MAGIC 0x58465342

/* 1 + the descriptor of a new file `prefix` + "XXXXXX", already unlinked, on a filesystem
   whose fallocate reserves the blocks that writes through a mapping then fill (ext4, XFS:
   elsewhere, a full disk could fail a write fault, a SIGBUS); 0 where there is none.  Only
   the walk holds it, so no one can truncate it under the mapping. */
static int graph_file(const char *prefix) {
    size_t len = strlen(prefix);
    char *path = PyMem_RawMalloc(len + 7);
    if (!path) return 0;
    memcpy(path, prefix, len);
    memcpy(path + len, "XXXXXX", 7);
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0) unlink(path);
    PyMem_RawFree(path);
    struct statfs fs;
    if (fd < 0) return 0;
    if (fstatfs(fd, &fs) != 0 || (fs.f_type != EXT4_MAGIC && fs.f_type != XFS_MAGIC)) {
        close(fd);
        return 0;
    }
    return fd + 1;
}

/* Whether v's file can grow to `bytes`, its disk space allocated (never past RLIMIT_FSIZE,
   whose SIGXFSZ would kill a process that does not ignore it). */
static int file_room(const Vec *v, size_t bytes) {
    struct rlimit limit;
    if (!v->file || getrlimit(RLIMIT_FSIZE, &limit) != 0) return 0;
    if (limit.rlim_cur != RLIM_INFINITY && (rlim_t)bytes > limit.rlim_cur) return 0;
    off_t have = (off_t)v->mapped;
    return fallocate(v->file - 1, 0, have, (off_t)bytes - have) == 0;
}

/* Give back what lies past `keep` bytes of v's file. */
static void file_trim(const Vec *v, size_t keep) {
    if (v->file) (void)ftruncate(v->file - 1, (off_t)keep);
}
#endif

static void free_bytes(void *data, size_t mapped) {
#ifdef __linux__
    if (mapped) {
        munmap(data, mapped);
        return;
    }
#endif
    PyMem_RawFree(data);
}

static void vec_free(Vec *v) {
    free_bytes(v->data, v->mapped);
    v->data = NULL;
    v->len = v->cap = v->mapped = 0;
    v->file = 0;
}

static int vec_resize(Vec *v, size_t want) {
    size_t ncap = v->cap ? v->cap : 1024;
    while (ncap < want) ncap += ncap / 2 + 1;
#ifdef __linux__
    size_t bytes = ncap * v->item;
    if (bytes >= BIG_BYTES) return vec_map(v, (bytes + BIG_BYTES - 1) & ~(BIG_BYTES - 1));
#endif
    void *nd = PyMem_RawRealloc(v->data, ncap * v->item);
    if (!nd) return -1;
    v->data = nd;
    v->cap = ncap;
    return 0;
}

static int vec_grow(Vec *v, size_t want) {
    guard_lock(v);
    int rc = vec_resize(v, want);
    guard_unlock(v);
    return rc;
}

#ifdef __linux__
/* v in a mapping of `bytes` (a multiple of BIG_BYTES): its file's while the file can grow. */
static int vec_map(Vec *v, size_t bytes) {
    int was_file = v->mapped && v->file, in_file = file_room(v, bytes);
    void *nd;
    if (v->mapped && was_file == in_file) {
        nd = mremap(v->data, v->mapped, bytes, MREMAP_MAYMOVE);
        if (nd == MAP_FAILED) return -1;
    }
    else {
        nd = in_file ? mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, v->file - 1, 0)
                     : MAP_FAILED;
        if (nd == MAP_FAILED) {
            in_file = 0;
            nd = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        }
        if (nd == MAP_FAILED) return -1;
        if (v->cap) memcpy(nd, v->data, v->cap * v->item);
        if (v->mapped)
            munmap(v->data, v->mapped);
        else
            PyMem_RawFree(v->data);
        if (!in_file) { /* anonymous from now on: the file's space goes back */
            file_trim(v, 0);
            v->file = 0;
        }
    }
#ifdef MADV_HUGEPAGE
    if (!in_file) (void)madvise(nd, bytes, MADV_HUGEPAGE);
#endif
    v->data = nd;
    v->mapped = bytes;
    v->cap = bytes / v->item;
    return 0;
}
#endif

static inline int vec_reserve(Vec *v, size_t want) {
    return want <= v->cap ? 0 : vec_grow(v, want);
}

/* Give back the memory past v's first `bytes` (kept as it is where that cannot be done). */
static void vec_shrink(Vec *v, size_t bytes) {
    guard_lock(v);
    vec_trim(v, bytes);
    guard_unlock(v);
}

static void vec_trim(Vec *v, size_t bytes) {
#ifdef __linux__
    if (v->mapped) {
        size_t keep = (bytes + 4095) & ~(size_t)4095;
        if (keep && keep < v->mapped) {
            void *shrunk = mremap(v->data, v->mapped, keep, 0);
            if (shrunk != MAP_FAILED) {
                v->mapped = keep;
                v->cap = keep / v->item;
                file_trim(v, keep);
            }
        }
        return;
    }
#endif
    if (bytes && bytes < v->cap * v->item) {
        void *shrunk = PyMem_RawRealloc(v->data, bytes);
        if (shrunk) {
            v->data = shrunk;
            v->cap = bytes / v->item;
        }
    }
}

#define VEC_AT(v, T, i) (((T *)(v).data)[i])
#define VEC_OF(T) {NULL, 0, 0, sizeof(T), 0, 0, NULL}

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

/* ---------------------------------------------------------------- pages faulted in ahead */

/* A walk writes hundreds of megabytes of fresh memory, a page fault at a time, and where a
   host backs a VM's page only when it is first touched, each fault costs the host's as well
   (2.2 s/GiB measured here).  A helper thread faults in the pages just past where the
   walk's big arrays are being written (MADV_POPULATE_WRITE: pages are made present, nothing
   is written), on another core, while the walk goes on.  It leaves arrays under
   PREFAULT_MIN_HELD alone and stays at most a sixteenth of what each holds (and
   PREFAULT_AHEAD) past it, so the peak grows by that much at most; it reads an array's
   mapping only under `lock`, which the walk holds while it moves one. */
#if defined(__linux__) && !defined(MADV_POPULATE_WRITE)
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; an older kernel says EINVAL and the helper stops */
#endif
#ifdef __linux__
#define HAVE_PREFAULT 1
#define PREFAULT_VECS 6
#define PREFAULT_STEP ((size_t)2 << 20)
#define PREFAULT_AHEAD ((size_t)16 << 20)
#define PREFAULT_MIN_OBJECTS ((size_t)1 << 20)
#define PREFAULT_MIN_HELD ((size_t)32 << 20)
#define PREFAULT_PAUSE_NS 100000L

typedef struct Prefault {
    pthread_mutex_t lock;
    pthread_t thread;
    Vec *vecs[PREFAULT_VECS];
    int by_row[PREFAULT_VECS];  /* 1: written at [row] as rows go, its len set at the end */
    size_t held[PREFAULT_VECS]; /* bytes each array holds, as the walk last said (atomic) */
    int stop;                   /* atomic */
} Prefault;

static void guard_lock(const Vec *v) {
    if (v->guard) pthread_mutex_lock(&v->guard->lock);
}

static void guard_unlock(const Vec *v) {
    if (v->guard) pthread_mutex_unlock(&v->guard->lock);
}

static void prefault_publish(Prefault *p, size_t rows) {
    for (int i = 0; i < PREFAULT_VECS; i++) {
        const Vec *v = p->vecs[i];
        size_t held = (p->by_row[i] ? rows + 1 : v->len) * v->item;
        __atomic_store_n(&p->held[i], held, __ATOMIC_RELAXED);
    }
}

static void *prefault_main(void *arg) {
    Prefault *p = arg;
    void *seen[PREFAULT_VECS] = {NULL};
    size_t done[PREFAULT_VECS] = {0};
    long pause = PREFAULT_PAUSE_NS;
    (void)pthread_setname_np(pthread_self(), "memsnap-fault");
    while (!__atomic_load_n(&p->stop, __ATOMIC_RELAXED)) {
        int busy = 0;
        for (int i = 0; i < PREFAULT_VECS; i++) {
            size_t held = __atomic_load_n(&p->held[i], __ATOMIC_RELAXED);
            if (held < PREFAULT_MIN_HELD) continue;
            size_t want = held + (held / 16 < PREFAULT_AHEAD ? held / 16 : PREFAULT_AHEAD);
            pthread_mutex_lock(&p->lock);
            Vec *v = p->vecs[i];
            if (v->mapped) {
                if (v->data != seen[i]) { /* moved or replaced: what is present is cheap */
                    seen[i] = v->data;
                    done[i] = 0;
                }
                want = (want < v->mapped ? want : v->mapped) & ~(size_t)4095;
                if (done[i] < want) {
                    size_t n = want - done[i] < PREFAULT_STEP ? want - done[i] : PREFAULT_STEP;
                    int rc = madvise((char *)v->data + done[i], n, MADV_POPULATE_WRITE);
                    done[i] = rc == 0 ? done[i] + n : v->mapped;
                    busy = 1;
                    if (rc != 0 && errno == EINVAL) /* a kernel without it */
                        __atomic_store_n(&p->stop, 1, __ATOMIC_RELAXED);
                }
            }
            pthread_mutex_unlock(&p->lock);
        }
        if (busy) {
            pause = PREFAULT_PAUSE_NS;
        }
        else { /* nothing to do yet: wait longer each time, up to 3.2 ms */
            struct timespec wait = {0, pause};
            nanosleep(&wait, NULL);
            pause = pause < 32 * PREFAULT_PAUSE_NS ? 2 * pause : pause;
        }
    }
    return NULL;
}

/* Start faulting in the pages of these arrays ahead of the walk (by_row: see Prefault);
   0 where it cannot. */
static int prefault_start(Prefault *p, Vec *const *vecs, const int *by_row) {
    memset(p, 0, sizeof(*p));
    if (pthread_mutex_init(&p->lock, NULL) != 0) return 0;
    for (int i = 0; i < PREFAULT_VECS; i++) {
        p->vecs[i] = vecs[i];
        p->by_row[i] = by_row[i];
        vecs[i]->guard = p;
    }
    prefault_publish(p, 0);
    pthread_attr_t attr;
    sigset_t all, old;
    int rc = pthread_attr_init(&attr);
    if (rc == 0) {
        (void)pthread_attr_setstacksize(&attr, (size_t)256 << 10);
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old); /* signals stay with the interpreter */
        rc = pthread_create(&p->thread, &attr, prefault_main, p);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
    }
    if (rc == 0) return 1;
    for (int i = 0; i < PREFAULT_VECS; i++) vecs[i]->guard = NULL;
    pthread_mutex_destroy(&p->lock);
    return 0;
}

static void prefault_stop(Prefault *p) {
    __atomic_store_n(&p->stop, 1, __ATOMIC_RELAXED);
    pthread_join(p->thread, NULL);
    for (int i = 0; i < PREFAULT_VECS; i++) p->vecs[i]->guard = NULL;
    pthread_mutex_destroy(&p->lock);
}
#else
static void guard_lock(const Vec *v) { (void)v; }
static void guard_unlock(const Vec *v) { (void)v; }
#endif

/* ---------------------------------------------------------------- owned result buffers */

/* A read-only buffer that owns memory the walk allocated: results reach numpy without a
   copy (np.frombuffer over a memoryview of it). */
typedef struct {
    PyObject_HEAD
    void *data;
    Py_ssize_t len;
    size_t mapped;
    char file_backed; /* its mapping is of a file the walk made (page cache, not anonymous) */
} Buffer;

static void buffer_dealloc(PyObject *self) {
    free_bytes(((Buffer *)self)->data, ((Buffer *)self)->mapped);
    PyObject_Free(self);
}

static int buffer_getbuffer(PyObject *self, Py_buffer *view, int flags) {
    Buffer *b = (Buffer *)self;
    return PyBuffer_FillInfo(view, self, b->data, b->len, 1, flags);
}

static PyBufferProcs buffer_procs = {buffer_getbuffer, NULL};

static PyObject *buffer_file_backed(PyObject *self, void *closure) {
    return PyBool_FromLong(((Buffer *)self)->file_backed);
}

static PyGetSetDef buffer_getset[] = {
    {"file_backed", buffer_file_backed, NULL, "Whether this memory maps a file.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject Buffer_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "jupyter_memsnap.capture._walker.Buffer",
    .tp_basicsize = sizeof(Buffer),
    .tp_dealloc = buffer_dealloc,
    .tp_as_buffer = &buffer_procs,
    .tp_getset = buffer_getset,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Memory of one result column, owned until the last view of it goes.",
};

/* A memoryview of the first `bytes` bytes of v's memory, which it takes over (v is left
   empty); NULL with an exception on failure, v untouched. */
static PyObject *vec_release(Vec *v, size_t bytes) {
    if (!v->data && vec_reserve(v, 1) < 0) return PyErr_NoMemory();
    Buffer *b = PyObject_New(Buffer, &Buffer_Type);
    if (!b) return NULL;
    vec_shrink(v, bytes);
    b->data = v->data;
    b->mapped = v->mapped;
    b->file_backed = v->mapped && v->file;
#ifdef __linux__
    if (b->file_backed) { /* read-only from now on, and out of the RSS: page cache, clean
                             once written back, that the OS may drop */
        (void)mprotect(b->data, b->mapped, PROT_READ);
        (void)madvise(b->data, b->mapped, MADV_DONTNEED);
    }
#endif
    b->len = (Py_ssize_t)bytes;
    v->data = NULL;
    v->len = v->cap = v->mapped = 0;
    v->file = 0;
    PyObject *view = PyMemoryView_FromObject((PyObject *)b);
    Py_DECREF(b);
    return view;
}

/* ---------------------------------------------------------------- type -> slot map */

typedef struct {
    uintptr_t *keys; /* 0 = empty */
    uint32_t *vals;
    size_t cap, len; /* cap: a power of two */
} PtrMap;

static inline size_t mix_hash(uint64_t k, size_t mask) {
    return (size_t)((k * 0x9E3779B97F4A7C15ull) >> 29) & mask;
}

static int ptrmap_init(PtrMap *m, size_t cap) {
    m->keys = PyMem_RawCalloc(cap, sizeof(uintptr_t));
    m->vals = PyMem_RawMalloc(cap * sizeof(uint32_t));
    m->cap = cap;
    m->len = 0;
    return m->keys && m->vals ? 0 : -1;
}

static void ptrmap_free(PtrMap *m) {
    PyMem_RawFree(m->keys);
    PyMem_RawFree(m->vals);
    m->keys = NULL;
    m->vals = NULL;
}

/* Slot of key k: either holding k or the empty slot where k belongs. */
static inline size_t ptrmap_slot(const PtrMap *m, uintptr_t k) {
    size_t mask = m->cap - 1, j = mix_hash(k, mask);
    while (m->keys[j] && m->keys[j] != k) j = (j + 1) & mask;
    return j;
}

/* Insert k (absent) -> v, growing first when half full. */
static int ptrmap_insert(PtrMap *m, uintptr_t k, uint32_t v) {
    if ((m->len + 1) * 2 > m->cap) {
        PtrMap bigger;
        if (ptrmap_init(&bigger, m->cap * 2) < 0) {
            ptrmap_free(&bigger);
            return -1;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i]) {
                size_t j = ptrmap_slot(&bigger, m->keys[i]);
                bigger.keys[j] = m->keys[i];
                bigger.vals[j] = m->vals[i];
            }
        bigger.len = m->len;
        ptrmap_free(m);
        *m = bigger;
    }
    size_t j = ptrmap_slot(m, k);
    m->keys[j] = k;
    m->vals[j] = v;
    m->len++;
    return 0;
}

/* ---------------------------------------------------------------- seen-bitmaps */

/* A block covers 2^CHUNK_SHIFT bytes of address space: CHUNK_PAIRS pairs of 64-bit words
   {recorded, other}, one bit per 8 bytes.  Distinct objects (at least 16 bytes each) never
   share a bit, whatever their alignment.  "other" marks barriers and machinery; once the
   walk is over it is replaced by the rank of the first recorded object its word covers. */
#define CHUNK_SHIFT 16
#define BLOCK_CACHE 8
#define CHUNK_PAIRS ((1u << CHUNK_SHIFT) >> 9)
#define BLOCK_WORDS (2 * CHUNK_PAIRS)

enum { RECORDED = 0, OTHER = 1 };

static inline uint64_t popcount64(uint64_t x) {
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__POPCNT__) || defined(__aarch64__))
    return (uint64_t)__builtin_popcountll(x);
#else
    x -= (x >> 1) & 0x5555555555555555ull;
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
    return (x * 0x0101010101010101ull) >> 56;
#endif
}

/* ---------------------------------------------------------------- type information */

enum { SIZE_CALL = 0, SIZE_OBJECT_FIXED = 1, SIZE_OBJECT_VAR = 2 };

/* What, beyond tp_traverse, instances of a type refer to (visit_referents). */
enum { K_PLAIN, K_NDARRAY, K_DTYPE, K_BYTEARRAY, K_DICT, K_DICT_SUBCLASS, K_CODE, K_TYPE, K_MODULE };

typedef struct {
    PyTypeObject *tp;    /* strong reference */
    PyObject *sizeof_fn; /* strong reference; the C __sizeof__ to call (SIZE_CALL) */
    PyCFunction direct;  /* its C function when it takes no arguments: called directly */
    int64_t fixed;       /* SIZE_OBJECT_FIXED: size once known, else -1 */
    int mode;
    int kind;
    int traverse;        /* instances are GC objects with tp_traverse (gc_check: ask each one) */
    int gc_check;
    int values;          /* instances may own an attribute-values block (3.11+) */
    int excluded;        /* an exclude_types entry: its instances are barriers */
    int owner;           /* a subclass of a native_types entry: reported with its object */
    int trusted;         /* sizing runs no code that could free an object */
    int64_t out;         /* index in the result's type list, -1 until a row has this type */
} TypeInfo;

/* A row whose size is 4 GiB or more (its 4-byte size slot holds UINT32_MAX). */
typedef struct {
    int64_t row;
    int64_t size;
} BigSize;

/* A referent is stored as one word: the index of its 256 MiB window of address space
   (bits 25..31) and its 8-byte slot there; or, unaligned or beyond WIN_MAX windows, as
   REF_ESCAPE and the address in two words. */
#define WIN_SHIFT 28
#define WIN_SLOT_BITS (WIN_SHIFT - 3)
#define WIN_SLOT_MASK ((1u << WIN_SLOT_BITS) - 1)
#define WIN_MAX 127
#define REF_ESCAPE 0xFFFFFFFFu

/* A data buffer outside its owner's object (an ndarray's or a bytearray's): its row, its
   bytes (counted in the row's size) and where it lives (so that other owners' buffers over
   the same memory are not counted again). */
typedef struct {
    uint64_t row;
    int64_t bytes;
    uint64_t address;
} Native;

/* ---------------------------------------------------------------- the walk state */

typedef struct {
    PtrMap blocks;       /* (address >> CHUNK_SHIFT) + 1 -> block number */
    struct BlockRef *sorted_blocks; /* after rank_blocks: the blocks by address */
    Vec bits;            /* uint64 words, BLOCK_WORDS per block */
    uint64_t recent_key[BLOCK_CACHE]; /* blocks looked up lately (direct-mapped): a dict's */
    size_t recent_base[BLOCK_CACHE];  /* keys and values, a list and its items, alternate */
    Vec objs;            /* PyObject* (borrowed): the BFS queue; rows compacted to its front */
    size_t head;         /* next queue position to process */
    size_t nrows;
    Vec otype;           /* uint32 result type index per row */
    Vec osize;           /* uint32 shallow size per row; UINT32_MAX: see `big` */
    Vec big;             /* BigSize: the rows whose size does not fit in 32 bits */
    Vec offsets;         /* uint32: offsets[i] .. offsets[i+1] = referents of row i */
    Vec refs;            /* uint32 words: referents of the rows (push_ref; later rows) */
    uint64_t win_key[WIN_MAX]; /* address >> WIN_SHIFT of each window */
    uint8_t win_hash[256];     /* window index + 1 by hash of its key, 0 empty */
    size_t n_win;
    uint64_t last_key;         /* the window used last, and its word's high bits */
    uint32_t last_word;
    Vec deferred;        /* uint32 rows to size once held (their __sizeof__ is foreign) */
    Vec natives;         /* Native: ndarray data buffers counted in their owner's size */
    Vec owners;          /* uint32 rows of instances of native_types (sized in Python) */
    PyObject *owner_list;/* those instances, held, taken before any code runs */
    Vec barriers;        /* PyObject* (borrowed: alive through their holders) */
    Vec machinery;       /* PyObject* (borrowed), objects marked as machinery */
    Vec *push_to;        /* where newly seen objects go: objs, or machinery */
    int mark_as;         /* RECORDED, or OTHER while marking machinery */
    int store_refs;      /* the referents being visited are a row's edges */
    PtrMap type_map;     /* type -> index into types */
    Vec types;           /* TypeInfo */
    Vec out_types;       /* uint32 index into types, per result type index */
    PyTypeObject **excluded_types;
    Py_ssize_t n_excluded_types;
    int numpy;           /* arrays and dtypes get their hidden references and data buffers */
    PyObject *native_types;  /* borrowed tuple of types */
    PyObject *object_sizeof; /* object.__sizeof__ */
    Py_ssize_t gc_head;
    int keep_edges;      /* 0: a census (ids, types, sizes), no reference graph */
    int held;            /* 1: deferred rows hold strong references; 2: every row does */
    PyObject *site_fn;   /* borrowed: obj -> allocation traceback tuple or None */
    PyObject *site_ids;  /* dict: traceback -> index */
    PyObject *site_list; /* list of tracebacks */
    Vec osite;           /* int32 site index per row, -1 unknown */
    int graph_files[2];  /* 1 + descriptors of the files offsets and refs map, 0: none */
    struct Prefault *prefault; /* the helper faulting in pages ahead, or NULL */
    int64_t sizeof_errors;
    PyTypeObject *type_cache_key[TYPE_CACHE];
    uint32_t type_cache_val[TYPE_CACHE];
} Walk;

/* First word of the block holding address p, or SIZE_MAX: absent (create == 0) or out of
   memory (create == 1, exception set).  A new block is zeroed. */
static size_t block_of(Walk *w, uintptr_t p, int create) {
    uint64_t key = ((uint64_t)p >> CHUNK_SHIFT) + 1;
    size_t c = (size_t)(key ^ (key >> 7)) & (BLOCK_CACHE - 1);
    if (key == w->recent_key[c]) return w->recent_base[c];
    size_t j = ptrmap_slot(&w->blocks, (uintptr_t)key);
    size_t base;
    if (w->blocks.keys[j]) {
        base = (size_t)w->blocks.vals[j] * BLOCK_WORDS;
    }
    else {
        if (!create) return SIZE_MAX;
        size_t block = w->blocks.len;
        base = block * BLOCK_WORDS;
        if (block >= UINT32_MAX || vec_reserve(&w->bits, base + BLOCK_WORDS) < 0 ||
            ptrmap_insert(&w->blocks, (uintptr_t)key, (uint32_t)block) < 0) {
            PyErr_NoMemory();
            return SIZE_MAX;
        }
        memset((uint64_t *)w->bits.data + base, 0, BLOCK_WORDS * sizeof(uint64_t));
        w->bits.len = base + BLOCK_WORDS;
    }
    w->recent_key[c] = key;
    w->recent_base[c] = base;
    return base;
}

/* The {recorded, other} pair holding p's bit, and the bit; NULL as block_of. */
static inline uint64_t *bit_pair(Walk *w, const void *p, uint64_t *bit, int create) {
    size_t base = block_of(w, (uintptr_t)p, create);
    if (base == SIZE_MAX) return NULL;
    size_t slot = ((uintptr_t)p & ((1u << CHUNK_SHIFT) - 1)) >> 3;
    *bit = 1ull << (slot & 63);
    return (uint64_t *)w->bits.data + base + 2 * (slot >> 6);
}

/* Mark p as RECORDED or OTHER unless it is marked already: 1 if newly marked, 0 if not,
   -1 on memory error. */
static inline int mark(Walk *w, PyObject *p, int as) {
    uint64_t bit, *pair = bit_pair(w, p, &bit, 1);
    if (!pair) return -1;
    if ((pair[0] | pair[1]) & bit) return 0;
    pair[as] |= bit;
    return 1;
}

/* After rank_blocks: the rank by address of a recorded p, or -1. */
static inline int64_t rank_of(Walk *w, const void *p) {
    uint64_t bit, *pair = bit_pair(w, p, &bit, 0);
    if (!pair || !(pair[0] & bit)) return -1;
    return (int64_t)(pair[1] + popcount64(pair[0] & (bit - 1)));
}

typedef struct BlockRef {
    uint64_t key;
    uint32_t block;
} BlockRef;

static inline unsigned lowest_bit(uint64_t x) {
#if defined(__GNUC__) || defined(__clang__)
    return (unsigned)__builtin_ctzll(x);
#else
    return (unsigned)popcount64((x & (0 - x)) - 1);
#endif
}

/* The addresses of the recorded objects, ascending, read off the bitmaps into ids. */
static void addresses_by_rank(Walk *w, char *ids) {
    size_t k = 0;
    for (size_t b = 0; b < w->blocks.len; b++) {
        uint64_t base = (w->sorted_blocks[b].key - 1) << CHUNK_SHIFT;
        const uint64_t *words =
            (const uint64_t *)w->bits.data + (size_t)w->sorted_blocks[b].block * BLOCK_WORDS;
        for (size_t i = 0; i < CHUNK_PAIRS; i++)
            for (uint64_t x = words[2 * i]; x; x &= x - 1) {
                uint64_t id = base + (((uint64_t)i * 64 + lowest_bit(x)) << 3);
                memcpy(ids + sizeof(uint64_t) * k++, &id, sizeof(id));
            }
    }
}

static int cmp_block(const void *a, const void *b) {
    uint64_t x = ((const BlockRef *)a)->key, y = ((const BlockRef *)b)->key;
    return (x > y) - (x < y);
}

/* Replace every "other" word by the rank of its word's first recorded object: a prefix
   count over the blocks in address order (kept in w->sorted_blocks). */
static int rank_blocks(Walk *w) {
    size_t nb = w->blocks.len, k = 0;
    BlockRef *list = w->sorted_blocks = PyMem_RawMalloc((nb + 1) * sizeof(BlockRef));
    if (!list) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t j = 0; j < w->blocks.cap; j++)
        if (w->blocks.keys[j]) list[k++] = (BlockRef){w->blocks.keys[j], w->blocks.vals[j]};
    qsort(list, nb, sizeof(BlockRef), cmp_block);
    uint64_t rank = 0;
    for (size_t b = 0; b < nb; b++) {
        uint64_t *words = (uint64_t *)w->bits.data + (size_t)list[b].block * BLOCK_WORDS;
        for (size_t i = 0; i < CHUNK_PAIRS; i++) {
            words[2 * i + 1] = rank;
            rank += popcount64(words[2 * i]);
        }
    }
    if (rank != w->nrows) {
        PyErr_SetString(PyExc_RuntimeError, "heap walk: recorded objects and rows disagree");
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- visiting */

static int is_excluded_type(const Walk *w, PyTypeObject *tp) {
    for (Py_ssize_t i = 0; i < w->n_excluded_types; i++)
        if (w->excluded_types[i] == tp) return 1;
    return 0;
}

/* The index of the window with key `key`, added if new; -1 when all are taken. */
static int window_of(Walk *w, uint64_t key) {
    size_t h = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 56);
    for (uint8_t s; (s = w->win_hash[h]) != 0; h = (h + 1) & 255)
        if (w->win_key[s - 1] == key) return s - 1;
    if (w->n_win == WIN_MAX) return -1;
    w->win_key[w->n_win] = key;
    w->win_hash[h] = (uint8_t)++w->n_win;
    return (int)w->n_win - 1;
}

/* Append referent r to the stored edges (see WIN_SHIFT). */
static int push_ref(Walk *w, const void *r) {
    uint64_t a = (uint64_t)(uintptr_t)r, key = a >> WIN_SHIFT;
    if (!(a & 7)) {
        int idx;
        if (key != w->last_key && (idx = window_of(w, key)) >= 0) {
            w->last_key = key;
            w->last_word = (uint32_t)idx << WIN_SLOT_BITS;
        }
        if (key == w->last_key)
            return vec_push_u32(&w->refs, w->last_word | ((uint32_t)(a >> 3) & WIN_SLOT_MASK));
    }
    if (vec_reserve(&w->refs, w->refs.len + 3) < 0) return -1;
    uint32_t *d = (uint32_t *)w->refs.data + w->refs.len;
    d[0] = REF_ESCAPE;
    d[1] = (uint32_t)a;
    d[2] = (uint32_t)(a >> 32);
    w->refs.len += 3;
    return 0;
}

/* The referent stored at words[*e], moving *e past it. */
static inline const void *ref_at(const Walk *w, const uint32_t *words, size_t *e) {
    uint32_t x = words[(*e)++];
    if (x == REF_ESCAPE) {
        uint64_t lo = words[*e], hi = words[*e + 1];
        *e += 2;
        return (const void *)(uintptr_t)(lo | hi << 32);
    }
    uint64_t base = w->win_key[x >> WIN_SLOT_BITS] << WIN_SHIFT;
    return (const void *)(uintptr_t)(base | (uint64_t)(x & WIN_SLOT_MASK) << 3);
}

/* tp_traverse callback: keep the edge, and queue the referent if it is new. */
static int visit(PyObject *r, void *arg) {
    Walk *w = (Walk *)arg;
    if (w->store_refs && push_ref(w, r) < 0) return -1;
    int fresh = mark(w, r, w->mark_as);
    if (fresh <= 0) return fresh;
    return vec_push_ptr(w->push_to, r);
}

/* An array's base, its dtype, and its elements when they are objects and it holds them:
   a view's elements are its base's (reached through it), and a view can name one element
   millions of times (np.broadcast_to, sliding windows: zero or overlapping strides). */
static int visit_ndarray(Walk *w, PyObject *o) {
    PyArrayObject_fields *a = (PyArrayObject_fields *)o;
    if (a->base && visit(a->base, w) < 0) return -1;
    if (a->descr && visit((PyObject *)a->descr, w) < 0) return -1;
    if (!a->descr || a->descr->type_num != NPY_OBJECT || !a->data) return 0;
    if (a->base && !(a->flags & NPY_ARRAY_OWNDATA)) return 0;
    int nd = a->nd;
    npy_intp total = 1;
    for (int d = 0; d < nd; d++) total *= a->dimensions[d];
    if (total <= 0 || nd > 64) return 0;
    npy_intp index[64];
    memset(index, 0, sizeof(index));
    for (npy_intp k = 0; k < total; k++) {
        char *p = a->data;
        for (int d = 0; d < nd; d++) p += index[d] * a->strides[d];
        PyObject *item;
        memcpy(&item, p, sizeof(item));
        if (item && visit(item, w) < 0) return -1;
        for (int d = nd - 1; d >= 0; d--) {
            if (++index[d] < a->dimensions[d]) break;
            index[d] = 0;
        }
    }
    return 0;
}

/* A structured or sub-array dtype's fields, names, sub-array and metadata (not GC). */
static int visit_dtype(Walk *w, PyObject *o) {
    PyArray_Descr *d = (PyArray_Descr *)o;
    if (!PyDataType_ISLEGACY(d)) return 0;
    PyObject *names = PyDataType_NAMES(d), *fields = PyDataType_FIELDS(d);
    PyObject *metadata = PyDataType_METADATA(d);
    PyArray_ArrayDescr *sub = PyDataType_SUBARRAY(d);
    if (names && fields && visit(fields, w) < 0) return -1;
    if (names && visit(names, w) < 0) return -1;
    if (sub && sub->base && visit((PyObject *)sub->base, w) < 0) return -1;
    if (sub && sub->shape && visit(sub->shape, w) < 0) return -1;
    if (metadata && visit(metadata, w) < 0) return -1;
    return 0;
}

/* A dict's keys and values (keys_only: its keys), in table order; no code runs. */
static int visit_dict(Walk *w, PyObject *o, int keys_only) {
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(o, &pos, &key, &value))
        if (visit(key, w) < 0 || (!keys_only && visit(value, w) < 0)) return -1;
    return 0;
}

/* Visit o's referents: tp_traverse and what it leaves out (see _cpython.h). */
static int visit_referents(Walk *w, PyObject *o, const TypeInfo *ti) {
    if (ti->kind == K_DICT) return visit_dict(w, o, 0);
    if (ti->kind == K_MODULE && ms_module_hides_dead(o)) {
        PyObject *dict = PyModule_GetDict(o);
        return dict ? visit(dict, w) : 0;
    }
    if (ti->traverse && (!ti->gc_check || PyObject_IS_GC(o))) {
        int rc = Py_TYPE(o)->tp_traverse(o, visit, w);
        if (rc) return rc;
    }
    switch (ti->kind) {
    case K_NDARRAY:
        return visit_ndarray(w, o);
    case K_DTYPE:
        return visit_dtype(w, o);
    case K_DICT_SUBCLASS:
        return visit_dict(w, o, 1);
    case K_CODE:
        return ms_code_referents((PyCodeObject *)o, visit, w);
    case K_TYPE:
        return ms_type_referents((PyTypeObject *)o, visit, w);
    default:
        return 0;
    }
}

/* ---------------------------------------------------------------- sizes */

static int sizeof_is_trusted(const Walk *w, PyObject *fn, PyCFunction direct) {
    if (!direct) return 0;
    PyTypeObject *owner = PyDescr_TYPE(fn);
    if (owner->tp_flags & Py_TPFLAGS_HEAPTYPE) return 0;
    return !strchr(owner->tp_name, '.') || owner == &PyArray_Type;
}

/* The __sizeof__ sys.getsizeof would call, or, where a class defines one in Python, the
   nearest C one in the MRO: a method descriptor of a base of tp, never one borrowed by an
   unrelated class (it would read the object as what it is not).  A new reference, or NULL:
   object's (with an exception only on memory errors). */
static PyObject *c_sizeof(PyTypeObject *tp) {
    static PyObject *name = NULL;
    if (!name && !(name = PyUnicode_InternFromString("__sizeof__"))) return NULL;
    PyObject *mro = tp->tp_mro;
    if (!mro || !PyTuple_Check(mro)) return NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(mro); i++) {
        PyObject *base = PyTuple_GET_ITEM(mro, i);
        PyObject *dict = PyType_Check(base) ? ms_type_dict((PyTypeObject *)base) : NULL;
        if (!dict) continue;
        PyObject *fn = PyDict_GetItemWithError(dict, name);
        Py_XINCREF(fn);
        Py_DECREF(dict);
        if (!fn) {
            if (PyErr_Occurred()) return NULL;
            continue;
        }
        if (Py_IS_TYPE(fn, &PyMethodDescr_Type) && PyType_IsSubtype(tp, PyDescr_TYPE(fn)))
            return fn;
        Py_DECREF(fn);
    }
    return NULL;
}

static TypeInfo *type_info_slow(Walk *w, PyTypeObject *tp, size_t cached) {
    size_t slot = ptrmap_slot(&w->type_map, (uintptr_t)tp);
    uint32_t found;
    if (w->type_map.keys[slot]) {
        found = w->type_map.vals[slot];
    }
    else {
        TypeInfo ti = {tp, NULL, NULL, -1, SIZE_OBJECT_FIXED, K_PLAIN, 0, 0, 0, 0, 0, 1, -1};
        PyObject *fn = c_sizeof(tp);
        if (PyErr_Occurred()) return NULL;
        if (fn && fn != w->object_sizeof) {
            ti.mode = SIZE_CALL;
            ti.sizeof_fn = fn;
            PyMethodDef *def = ((PyMethodDescrObject *)fn)->d_method;
            if ((def->ml_flags & ~METH_COEXIST) == METH_NOARGS) ti.direct = def->ml_meth;
            ti.trusted = sizeof_is_trusted(w, fn, ti.direct);
        }
        else {
            Py_XDECREF(fn);
#if PY_VERSION_HEX < 0x030D0000
            ti.mode = tp->tp_itemsize > 0 ? SIZE_OBJECT_VAR : SIZE_OBJECT_FIXED;
#else
            if (tp->tp_itemsize > 0) {
                ti.mode = SIZE_CALL;
                ti.sizeof_fn = Py_NewRef(w->object_sizeof);
                ti.trusted = 0;
            }
#endif
        }
        if (w->numpy && PyType_IsSubtype(tp, &PyArray_Type)) ti.kind = K_NDARRAY;
        else if (w->numpy && PyType_IsSubtype(tp, &PyArrayDescr_Type)) ti.kind = K_DTYPE;
        else if (PyType_IsSubtype(tp, &PyByteArray_Type)) ti.kind = K_BYTEARRAY;
        else if (tp == &PyDict_Type) ti.kind = K_DICT;
        else if (PyType_IsSubtype(tp, &PyDict_Type)) ti.kind = K_DICT_SUBCLASS;
        else if (tp == &PyCode_Type) ti.kind = K_CODE;
        else if (PyType_IsSubtype(tp, &PyType_Type)) ti.kind = K_TYPE;
        else if (PyType_IsSubtype(tp, &PyModule_Type)) ti.kind = K_MODULE;
        ti.traverse = PyType_IS_GC(tp) && tp->tp_traverse;
        ti.gc_check = tp->tp_is_gc != NULL;
        ti.values = ms_has_values(tp);
        ti.excluded = is_excluded_type(w, tp);
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(w->native_types); i++)
            if (PyType_IsSubtype(tp, (PyTypeObject *)PyTuple_GET_ITEM(w->native_types, i)))
                ti.owner = 1;
        size_t index = w->types.len;
        if (vec_reserve(&w->types, index + 1) < 0 ||
            ptrmap_insert(&w->type_map, (uintptr_t)tp, (uint32_t)index) < 0) {
            Py_XDECREF(ti.sizeof_fn);
            PyErr_NoMemory();
            return NULL;
        }
        Py_INCREF(tp);
        VEC_AT(w->types, TypeInfo, index) = ti;
        w->types.len++;
        found = (uint32_t)index;
    }
    w->type_cache_key[cached] = tp;
    w->type_cache_val[cached] = found;
    return &VEC_AT(w->types, TypeInfo, found);
}

/* What the walk knows about type tp (a direct-mapped cache in front of the type map). */
static inline TypeInfo *type_info(Walk *w, PyTypeObject *tp) {
    size_t h = ((uintptr_t)tp >> 6) & (TYPE_CACHE - 1);
    if (w->type_cache_key[h] == tp) return &VEC_AT(w->types, TypeInfo, w->type_cache_val[h]);
    return type_info_slow(w, tp, h);
}

/* __sizeof__ through fn (direct: its C function), or -1 when it fails; only a memory error
   is an error (-2, exception set): the walk stops rather than swallow it. */
static int64_t call_sizeof(Walk *w, PyObject *fn, PyCFunction direct, PyObject *o) {
    PyObject *r = direct ? direct(o, NULL) : PyObject_CallOneArg(fn, o);
    Py_ssize_t s = -1;
    if (r) {
        s = PyLong_AsSsize_t(r);
        Py_DECREF(r);
    }
    if (s < 0) {
        if (PyErr_ExceptionMatches(PyExc_MemoryError)) return -2;
        PyErr_Clear();
        w->sizeof_errors++;
        return -1;
    }
    return (int64_t)s;
}

/* What __sizeof__ reports for o (as sys.getsizeof calls it, before the pre-header), or -2
   on a memory error. */
static int64_t basic_size(Walk *w, TypeInfo *ti, PyObject *o) {
    PyTypeObject *tp = Py_TYPE(o);
    int64_t s;
    switch (ti->mode) {
    case SIZE_OBJECT_FIXED:
        if (ti->fixed < 0) ti->fixed = call_sizeof(w, w->object_sizeof, NULL, o);
        s = ti->fixed;
        if (s == -2) ti->fixed = -1;
        break;
    case SIZE_OBJECT_VAR:
        s = (int64_t)tp->tp_basicsize + (int64_t)Py_SIZE(o) * (int64_t)tp->tp_itemsize;
        break;
    default:
        s = call_sizeof(w, ti->sizeof_fn, ti->direct, o);
        if (s == -1) s = call_sizeof(w, w->object_sizeof, NULL, o);
    }
    if (s == -1) s = (int64_t)tp->tp_basicsize;
    return s;
}

/* A data buffer o keeps outside itself, counted in `raw` (its __sizeof__). */
static int record_native(Walk *w, uint32_t row, TypeInfo *ti, PyObject *o, int64_t raw) {
    int64_t bytes;
    void *address;
    if (ti->kind == K_NDARRAY) {
        PyArrayObject_fields *a = (PyArrayObject_fields *)o;
        if (!(a->flags & NPY_ARRAY_OWNDATA)) return 0;
        bytes = raw - (int64_t)Py_TYPE(o)->tp_basicsize -
                2 * (int64_t)a->nd * (int64_t)sizeof(npy_intp);
        address = a->data;
    }
    else {
        PyByteArrayObject *b = (PyByteArrayObject *)o;
        bytes = (int64_t)b->ob_alloc;
        address = b->ob_bytes;
    }
    if (bytes <= 0 || !address) return 0;
    if (vec_reserve(&w->natives, w->natives.len + 1) < 0) return -1;
    VEC_AT(w->natives, Native, w->natives.len++) =
        (Native){row, bytes, (uint64_t)(uintptr_t)address};
    return 0;
}

/* Size row i now: what sys.getsizeof reports, plus the memory o owns that it leaves out
   (an instance's attribute values, a heap type's docstring). */
static int size_row(Walk *w, size_t row, TypeInfo *ti, PyObject *o) {
    int64_t raw = basic_size(w, ti, o);
    if (raw == -2) return -1;
    int64_t s = raw + ms_pre_header(o, w->gc_head);
    if (ti->values) s += ms_values_bytes(o);
    if (ti->kind == K_TYPE) s += ms_type_doc_bytes((PyTypeObject *)o);
    if (s < 0) s = 0;
    if (s >= (int64_t)UINT32_MAX) {
        if (vec_reserve(&w->big, w->big.len + 1) < 0) return -1;
        VEC_AT(w->big, BigSize, w->big.len++) = (BigSize){(int64_t)row, s};
        s = (int64_t)UINT32_MAX;
    }
    VEC_AT(w->osize, uint32_t, row) = (uint32_t)s;
    if (ti->kind == K_NDARRAY || ti->kind == K_BYTEARRAY)
        return record_native(w, (uint32_t)row, ti, o, raw);
    return 0;
}

/* ---------------------------------------------------------------- phases */

/* Move o, queued as a row, to the "other" marks: it will not be one. */
static int unrecord(Walk *w, PyObject *o) {
    uint64_t bit, *pair = bit_pair(w, o, &bit, 0);
    if (!pair) return -1;
    pair[RECORDED] &= ~bit;
    pair[OTHER] |= bit;
    return 0;
}

/* Process every queued object: a barrier if its type is excluded, else the next row, with
   its type, its size (or a place in `deferred`) and its referents. */
static int drain(Walk *w) {
    while (w->head < w->objs.len) {
        size_t q = w->head++;
        PyObject **queue = (PyObject **)w->objs.data;
        PyObject *o = queue[q];
        if (q + PREFETCH_AHEAD < w->objs.len) PREFETCH(queue[q + PREFETCH_AHEAD]);
        if (Py_REFCNT(o) == 0) { /* dead memory on a free list: not an object */
            if (unrecord(w, o) < 0) return -1;
            continue;
        }
        TypeInfo *ti = type_info(w, Py_TYPE(o));
        if (!ti) return -1;
        if (ti->excluded) {
            if (unrecord(w, o) < 0 || vec_push_ptr(&w->barriers, o) < 0) return -1;
            continue;
        }
        if (w->nrows >= MAX_OBJECTS) {
            PyErr_Format(PyExc_OverflowError,
                         "the heap has more than %zu objects, more than a snapshot can index",
                         (size_t)MAX_OBJECTS);
            return -1;
        }
        size_t row = w->nrows++;
        queue[row] = o;
#ifdef HAVE_PREFAULT
        if (w->prefault && !(row & 4095)) prefault_publish(w->prefault, row);
#endif
        if (vec_reserve(&w->otype, row + 1) < 0 || vec_reserve(&w->osize, row + 1) < 0 ||
            (w->keep_edges && vec_reserve(&w->offsets, row + 2) < 0))
            return -1;
        if (ti->out < 0) {
            ti->out = (int64_t)w->out_types.len;
            if (vec_push_u32(&w->out_types, (uint32_t)(ti - (TypeInfo *)w->types.data)) < 0)
                return -1;
        }
        VEC_AT(w->otype, uint32_t, row) = (uint32_t)ti->out;
        if (ti->owner && vec_push_u32(&w->owners, (uint32_t)row) < 0) return -1;
        if (ti->trusted && !ti->owner) {
            if (size_row(w, row, ti, o) < 0) return -1;
        }
        else if (vec_push_u32(&w->deferred, (uint32_t)row) < 0) {
            return -1;
        }
        w->store_refs = w->keep_edges;
        int rc = visit_referents(w, o, ti);
        w->store_refs = 0;
        if (rc < 0) return -1;
        if (w->keep_edges) {
            if (w->refs.len > UINT32_MAX) {
                PyErr_SetString(PyExc_OverflowError,
                                "the heap has more references than a snapshot can index");
                return -1;
            }
            VEC_AT(w->offsets, uint32_t, row + 1) = (uint32_t)w->refs.len;
        }
    }
    w->otype.len = w->osize.len = w->nrows;
    return 0;
}

static int mark_machinery(Walk *w) {
    w->mark_as = OTHER;
    w->push_to = &w->machinery;
    Vec *lists[] = {&w->barriers, &w->machinery};
    for (size_t l = 0; l < 2; l++)
        for (size_t i = 0; i < lists[l]->len; i++) {
            PyObject *o = VEC_AT(*lists[l], PyObject *, i);
            if (Py_REFCNT(o) == 0) continue;
            TypeInfo *ti = type_info(w, Py_TYPE(o));
            if (!ti || visit_referents(w, o, ti) < 0) return -1;
        }
    w->mark_as = RECORDED;
    w->push_to = &w->objs;
    return 0;
}

/* tracemalloc's traceback of the memory block an object starts: 3.11's
   get_object_traceback looks a GC object up at its GC header, but an instance with a
   managed dict starts two words earlier, so it is looked up there (3.12 does it itself). */
static PyObject *object_traceback(Walk *w, PyObject *o) {
    PyObject *tb = PyObject_CallOneArg(w->site_fn, o);
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
    if (tb == Py_None && (Py_TYPE(o)->tp_flags & Py_TPFLAGS_MANAGED_DICT)) {
        Py_DECREF(tb);
        tb = _PyTraceMalloc_GetTraceback(0, (uintptr_t)o - (uintptr_t)ms_pre_header(o, w->gc_head));
    }
#endif
    return tb;
}

/* The index of traceback tb in the site table, added if new; -1 with an exception set, or
   -2 (no exception) when tb cannot be a key. */
static int64_t site_index(Walk *w, PyObject *tb) {
    PyObject *known = PyDict_GetItemWithError(w->site_ids, tb);
    if (known) return PyLong_AsLongLong(known);
    if (PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_MemoryError)) return -1;
        PyErr_Clear(); /* an unhashable traceback: leave the site unknown */
        return -2;
    }
    Py_ssize_t k = PyList_GET_SIZE(w->site_list);
    PyObject *num = PyLong_FromSsize_t(k);
    int rc = num ? PyDict_SetItem(w->site_ids, tb, num) : -1;
    Py_XDECREF(num);
    if (rc < 0 || PyList_Append(w->site_list, tb) < 0) return -1;
    return k;
}

/* The site of object o through the Python-level lookup: its index, -2 unknown, -1 error. */
static int64_t site_of(Walk *w, PyObject *o) {
    PyObject *tb = object_traceback(w, o);
    if (!tb) {
        if (PyErr_ExceptionMatches(PyExc_MemoryError)) return -1;
        PyErr_Clear();
        return -2;
    }
    int64_t k = tb == Py_None ? -2 : site_index(w, tb);
    Py_DECREF(tb);
    return k;
}

#define SITE_BATCH 4096

/* Sites by tracemalloc's own table (3.12+, see _interpreter.c): a batch of block addresses
   looked up under its lock, and a tuple built only for a traceback not met before.
   Returns the rows done (all, or 0 when the table cannot be read), -1 on error. */
static int64_t find_sites_by_table(Walk *w, int32_t *sites) {
#if PY_VERSION_HEX >= 0x030C0000
    const MemsnapTracebackKeys *api = PyCapsule_Import(MEMSNAP_TRACEBACK_KEYS, 0);
    if (!api) {
        PyErr_Clear();
        return 0;
    }
    void *blocks[SITE_BATCH];
    const void *keys[SITE_BATCH];
    PtrMap known; /* traceback identity -> site index */
    if (ptrmap_init(&known, 1024) < 0) {
        ptrmap_free(&known);
        PyErr_NoMemory();
        return -1;
    }
    PyObject **objs = (PyObject **)w->objs.data;
    int64_t done = (int64_t)w->nrows;
    for (size_t start = 0; start < w->nrows; start += SITE_BATCH) {
        size_t m = w->nrows - start < SITE_BATCH ? w->nrows - start : SITE_BATCH;
        for (size_t j = 0; j < m; j++) {
            PyObject *o = objs[start + j];
            blocks[j] = (char *)o - ms_pre_header(o, w->gc_head);
        }
        if (api->keys(blocks, keys, m) < 0) {
            done = start ? -1 : 0;
            if (start) PyErr_SetString(PyExc_RuntimeError, "tracemalloc stopped during a walk");
            break;
        }
        for (size_t j = 0; j < m; j++) {
            int64_t k = -2;
            if (keys[j]) {
                size_t slot = ptrmap_slot(&known, (uintptr_t)keys[j]);
                if (known.keys[slot]) {
                    k = known.vals[slot];
                }
                else if ((k = site_of(w, objs[start + j])) >= 0 &&
                         ptrmap_insert(&known, (uintptr_t)keys[j], (uint32_t)k) < 0) {
                    PyErr_NoMemory();
                    k = -1;
                }
            }
            if (k == -1) {
                done = -1;
                break;
            }
            sites[start + j] = k < 0 ? -1 : (int32_t)k;
        }
        if (done < 0) break;
    }
    ptrmap_free(&known);
    return done;
#else
    return 0;
#endif
}

/* Allocation site of every row (tracemalloc's traceback, interned to an index). */
static int find_sites(Walk *w) {
    size_t n = w->nrows;
    if (!(w->site_ids = PyDict_New()) || !(w->site_list = PyList_New(0))) return -1;
    if (vec_reserve(&w->osite, n + 1) < 0) return -1;
    int32_t *sites = (int32_t *)w->osite.data;
    int64_t done = find_sites_by_table(w, sites);
    if (done < 0) return -1;
    for (size_t i = (size_t)done; i < n; i++) {
        int64_t k = site_of(w, VEC_AT(w->objs, PyObject *, i));
        if (k == -1) return -1;
        sites[i] = k < 0 ? -1 : (int32_t)k;
    }
    w->osite.len = n;
    return 0;
}

static int cmp_big(const void *a, const void *b) {
    int64_t x = ((const BigSize *)a)->row, y = ((const BigSize *)b)->row;
    return (x > y) - (x < y);
}

static int cmp_native(const void *a, const void *b) {
    uint64_t x = ((const Native *)a)->row, y = ((const Native *)b)->row;
    return (x > y) - (x < y);
}

/* Let go of the rows measure_held holds (which may run finalizers: from here on the rows
   are addresses only). */
static void release_held(Walk *w) {
    PyObject **objs = (PyObject **)w->objs.data;
    if (w->held == 2)
        for (size_t i = 0; i < w->nrows; i++) Py_DECREF(objs[i]);
    if (w->held == 1)
        for (size_t i = 0; i < w->deferred.len; i++)
            Py_DECREF(objs[VEC_AT(w->deferred, uint32_t, i)]);
    w->held = 0;
}

/* Code may run from here on: take the owners and hold what is still read, then size the
   deferred rows (and find sites).  Native buffers end up in row order. */
static int measure_held(Walk *w) {
    PyObject **objs = (PyObject **)w->objs.data;
    uint32_t *rows = (uint32_t *)w->deferred.data;
    size_t n_native = w->natives.len;
    if (!(w->owner_list = PyList_New((Py_ssize_t)w->owners.len))) return -1;
    for (size_t i = 0; i < w->owners.len; i++) {
        PyObject *o = objs[VEC_AT(w->owners, uint32_t, i)];
        Py_INCREF(o);
        PyList_SET_ITEM(w->owner_list, (Py_ssize_t)i, o);
    }
    if (w->site_fn) {
        for (size_t i = 0; i < w->nrows; i++) Py_INCREF(objs[i]);
        w->held = 2;
    }
    else {
        for (size_t i = 0; i < w->deferred.len; i++) Py_INCREF(objs[rows[i]]);
        w->held = 1;
    }
    for (size_t i = 0; i < w->deferred.len; i++) {
        PyObject *o = objs[rows[i]];
        TypeInfo *ti = type_info(w, Py_TYPE(o));
        if (!ti || size_row(w, rows[i], ti, o) < 0) return -1;
    }
    if (w->natives.len > n_native)
        qsort(w->natives.data, w->natives.len, sizeof(Native), cmp_native);
    return w->site_fn ? find_sites(w) : 0;
}

/* Every stored referent turned into its rank by address, in place (dropping those that
   are not rows): a rank takes one word, a referent at least one.  The buffer then shrinks
   to the ranks. */
static void ranks_of_referents(Walk *w) {
    uint32_t *words = (uint32_t *)w->refs.data;
    uint32_t *off = (uint32_t *)w->offsets.data;
    size_t t = 0, e = 0;
    for (size_t r = 0; r < w->nrows; r++) {
        size_t end = (size_t)off[r + 1];
        while (e < end) {
            int64_t k = rank_of(w, ref_at(w, words, &e));
            if (k >= 0) words[t++] = (uint32_t)k;
        }
        off[r + 1] = (uint32_t)t;
    }
    w->refs.len = t;
    vec_shrink(&w->refs, t * sizeof(uint32_t));
}

/* The rows by address (order), the roots' rows, the referents' rows and the ids (the
   sorted addresses, in place of the rows' objects when every address is 8-byte aligned),
   from addresses alone. */
static int number_by_address(Walk *w, const Vec *root_ptrs, Vec *ids, Vec *order, Vec *root_idx) {
    size_t n = w->nrows;
    if (rank_blocks(w) < 0) return -1;
    if (w->keep_edges) ranks_of_referents(w);
    if (vec_reserve(order, n + 1) < 0 || vec_reserve(root_idx, root_ptrs->len + 1) < 0)
        return -1;
    uint32_t *ord = (uint32_t *)order->data;
    PyObject **objs = (PyObject **)w->objs.data;
    int aligned = sizeof(PyObject *) == sizeof(uint64_t);
    for (size_t r = 0; r < n; r++) {
        int64_t k = rank_of(w, objs[r]);
        if (k < 0) {
            PyErr_SetString(PyExc_RuntimeError, "heap walk: a row lost its mark");
            return -1;
        }
        ord[k] = (uint32_t)r;
        aligned &= !((uintptr_t)objs[r] & 7);
    }
    order->len = n;
    for (size_t i = 0; i < root_ptrs->len; i++) {
        int64_t k = rank_of(w, VEC_AT(*root_ptrs, PyObject *, i));
        VEC_AT(*root_idx, int32_t, i) = k < 0 ? -1 : (int32_t)ord[k];
    }
    root_idx->len = root_ptrs->len;
    if (aligned) { /* the bitmaps hold every address exactly: the rows' array becomes the ids */
        addresses_by_rank(w, (char *)w->objs.data);
    }
    else {
        if (vec_reserve(ids, n + 1) < 0) return -1;
        for (size_t k = 0; k < n; k++)
            VEC_AT(*ids, uint64_t, k) = (uint64_t)(uintptr_t)objs[ord[k]];
        ids->len = n;
        vec_free(&w->objs);
    }
    vec_free(&w->bits);
    ptrmap_free(&w->blocks);
    if (!w->keep_edges) {
        /* A census has no edges: offsets are zeros, in fresh pages nobody touches. */
        vec_free(&w->offsets);
        if (vec_reserve(&w->offsets, n + 1) < 0) return -1;
        if (!w->offsets.mapped) memset(w->offsets.data, 0, (n + 1) * sizeof(uint32_t));
        return 0;
    }
    uint32_t *targets = (uint32_t *)w->refs.data;
    for (size_t i = 0; i < w->refs.len; i++) targets[i] = ord[targets[i]];
    return 0;
}

/* ---------------------------------------------------------------- result */

static int put(PyObject *dict, const char *key, PyObject *value) {
    if (!value) return -1;
    int rc = PyDict_SetItemString(dict, key, value);
    Py_DECREF(value);
    return rc;
}

/* native_index, native_bytes and native_address: one column each, in row order. */
static int put_natives(Walk *w, PyObject *res) {
    size_t m = w->natives.len;
    Vec cols[3] = {VEC_OF(uint32_t), VEC_OF(int64_t), VEC_OF(uint64_t)};
    int rc = -1;
    if (vec_reserve(&cols[0], m + 1) < 0 || vec_reserve(&cols[1], m + 1) < 0 ||
        vec_reserve(&cols[2], m + 1) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    for (size_t i = 0; i < m; i++) {
        Native *x = &VEC_AT(w->natives, Native, i);
        VEC_AT(cols[0], uint32_t, i) = (uint32_t)x->row;
        VEC_AT(cols[1], int64_t, i) = x->bytes;
        VEC_AT(cols[2], uint64_t, i) = x->address;
    }
    if (put(res, "native_index", vec_release(&cols[0], m * sizeof(uint32_t))) < 0 ||
        put(res, "native_bytes", vec_release(&cols[1], m * sizeof(int64_t))) < 0 ||
        put(res, "native_address", vec_release(&cols[2], m * sizeof(uint64_t))) < 0)
        goto done;
    rc = 0;
done:
    for (int i = 0; i < 3; i++) vec_free(&cols[i]);
    return rc;
}

/* big_rows and big_sizes: the sizes of 4 GiB or more, in row order. */
static int put_big_sizes(Walk *w, PyObject *res) {
    size_t m = w->big.len;
    Vec rows = VEC_OF(int64_t), sizes = VEC_OF(int64_t);
    int rc = -1;
    if (vec_reserve(&rows, m + 1) < 0 || vec_reserve(&sizes, m + 1) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    if (m) qsort(w->big.data, m, sizeof(BigSize), cmp_big);
    for (size_t i = 0; i < m; i++) {
        VEC_AT(rows, int64_t, i) = VEC_AT(w->big, BigSize, i).row;
        VEC_AT(sizes, int64_t, i) = VEC_AT(w->big, BigSize, i).size;
    }
    if (put(res, "big_rows", vec_release(&rows, m * sizeof(int64_t))) < 0 ||
        put(res, "big_sizes", vec_release(&sizes, m * sizeof(int64_t))) < 0)
        goto done;
    rc = 0;
done:
    vec_free(&rows);
    vec_free(&sizes);
    return rc;
}

/* id_low, id_high and id_starts (compact.SortedIds): the ids, ascending uint64 in v, split
   in place into their low halves (entry k's 4 bytes lie in entry k / 2's 8, already read)
   and the runs of equal high halves. */
static int put_ids(Vec *v, size_t n, PyObject *res) {
    Vec high = VEC_OF(uint64_t), starts = VEC_OF(int64_t);
    char *d = (char *)v->data;
    int rc = -1;
    for (size_t k = 0; k < n; k++) {
        uint64_t id;
        memcpy(&id, d + k * sizeof(id), sizeof(id));
        if (k == 0 || id >> 32 != VEC_AT(high, uint64_t, high.len - 1)) {
            if (vec_reserve(&high, high.len + 1) < 0 || vec_reserve(&starts, starts.len + 2) < 0) {
                PyErr_NoMemory();
                goto done;
            }
            VEC_AT(high, uint64_t, high.len++) = id >> 32;
            VEC_AT(starts, int64_t, starts.len++) = (int64_t)k;
        }
        uint32_t low = (uint32_t)id;
        memcpy(d + k * sizeof(low), &low, sizeof(low));
    }
    if (vec_reserve(&starts, starts.len + 1) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    VEC_AT(starts, int64_t, starts.len++) = (int64_t)n;
    if (put(res, "id_low", vec_release(v, n * sizeof(uint32_t))) < 0 ||
        put(res, "id_high", vec_release(&high, high.len * sizeof(uint64_t))) < 0 ||
        put(res, "id_starts", vec_release(&starts, starts.len * sizeof(int64_t))) < 0)
        goto done;
    rc = 0;
done:
    vec_free(&high);
    vec_free(&starts);
    return rc;
}

static PyObject *finish(Walk *w, Vec *ids, Vec *order, Vec *root_idx, Vec *unreached) {
    size_t n = w->nrows;
    PyObject *res = PyDict_New();
    if (!res) return NULL;
    PyObject *type_list = PyList_New((Py_ssize_t)w->out_types.len);
    if (!type_list) goto fail;
    for (size_t t = 0; t < w->out_types.len; t++) {
        PyTypeObject *tp = VEC_AT(w->types, TypeInfo, VEC_AT(w->out_types, uint32_t, t)).tp;
        Py_INCREF(tp);
        PyList_SET_ITEM(type_list, (Py_ssize_t)t, (PyObject *)tp);
    }
    if (put(res, "type_objects", type_list) < 0 ||
        put_ids(ids->data ? ids : &w->objs, n, res) < 0 ||
        put(res, "order", vec_release(order, n * sizeof(uint32_t))) < 0 ||
        put(res, "types", vec_release(&w->otype, n * sizeof(uint32_t))) < 0 ||
        put(res, "sizes", vec_release(&w->osize, n * sizeof(uint32_t))) < 0 ||
        put_big_sizes(w, res) < 0 ||
        put(res, "offsets", vec_release(&w->offsets, (n + 1) * sizeof(uint32_t))) < 0 ||
        put(res, "targets", vec_release(&w->refs, w->refs.len * sizeof(uint32_t))) < 0 ||
        put(res, "roots", vec_release(root_idx, root_idx->len * sizeof(int32_t))) < 0 ||
        put(res, "unreached", vec_release(unreached, unreached->len * sizeof(uint32_t))) < 0 ||
        put_natives(w, res) < 0 || put(res, "owners", Py_NewRef(w->owner_list)) < 0 ||
        put(res, "owner_rows", vec_release(&w->owners, w->owners.len * sizeof(uint32_t))) < 0 ||
        put(res, "sizeof_errors", PyLong_FromLongLong(w->sizeof_errors)) < 0 ||
        put(res, "sites",
            w->site_fn ? vec_release(&w->osite, n * sizeof(int32_t)) : Py_NewRef(Py_None)) < 0 ||
        put(res, "site_table", w->site_list ? Py_NewRef(w->site_list) : PyList_New(0)) < 0)
        goto fail;
    return res;
fail:
    Py_DECREF(res);
    return NULL;
}

static void walk_free(Walk *w) {
    release_held(w);
    Py_XDECREF(w->owner_list);
    for (size_t t = 0; t < w->types.len; t++) {
        TypeInfo *ti = &VEC_AT(w->types, TypeInfo, t);
        Py_DECREF(ti->tp);
        Py_XDECREF(ti->sizeof_fn);
    }
    Vec *vecs[] = {&w->bits,     &w->objs,         &w->otype,    &w->osize,    &w->big,
                   &w->offsets,  &w->refs,         &w->deferred, &w->natives,
                   &w->owners, &w->barriers, &w->machinery, &w->types,
                   &w->out_types, &w->osite};
    for (size_t i = 0; i < sizeof(vecs) / sizeof(vecs[0]); i++) vec_free(vecs[i]);
    ptrmap_free(&w->blocks);
    PyMem_RawFree(w->sorted_blocks);
    ptrmap_free(&w->type_map);
    Py_XDECREF(w->object_sizeof);
    PyMem_Free(w->excluded_types);
    Py_XDECREF(w->site_ids);
    Py_XDECREF(w->site_list);
#ifdef __linux__
    for (int i = 0; i < 2; i++)
        if (w->graph_files[i]) close(w->graph_files[i] - 1); /* the mappings keep the files */
#endif
}

/* Mark o excluded up front; a followed barrier's referents are machinery unless reached. */
static int add_barrier(Walk *w, PyObject *o, int follow) {
    int fresh = mark(w, o, OTHER);
    if (fresh < 0) return -1;
    return fresh && follow ? vec_push_ptr(&w->barriers, o) : 0;
}

/* Queue o as a row unless it is known; 0 or -1 on memory error. */
static int enqueue(Walk *w, PyObject *o) {
    int fresh = mark(w, o, RECORDED);
    if (fresh <= 0) return fresh;
    return vec_push_ptr(&w->objs, o);
}

/* object.__sizeof__, a new reference (NULL with an exception). */
static PyObject *object_sizeof(void) {
    PyObject *dict = ms_type_dict(&PyBaseObject_Type);
    PyObject *fn = dict ? PyDict_GetItemString(dict, "__sizeof__") : NULL;
    Py_XINCREF(fn);
    Py_XDECREF(dict);
    if (!fn && !PyErr_Occurred())
        PyErr_SetString(PyExc_RuntimeError, "object.__sizeof__ not found");
    return fn;
}

static PyObject *walker_walk(PyObject *self, PyObject *args) {
    PyObject *roots, *seeds, *exclude_objects, *exclude_types, *ndarray_type;
    PyObject *site_fn = Py_None, *native_types = NULL;
    Py_ssize_t gc_head, hint = 0;
    PyObject *graph_prefix = Py_None;
    int keep_edges = 1;
    if (!PyArg_ParseTuple(args, "O!O!O!O!On|nOpO!O:walk", &PyList_Type, &roots, &PyList_Type,
                          &seeds, &PyList_Type, &exclude_objects, &PyTuple_Type, &exclude_types,
                          &ndarray_type, &gc_head, &hint, &site_fn, &keep_edges, &PyTuple_Type,
                          &native_types, &graph_prefix))
        return NULL;
    if (graph_prefix != Py_None && !PyUnicode_Check(graph_prefix)) {
        PyErr_SetString(PyExc_TypeError, "graph_prefix must be a str or None");
        return NULL;
    }
    static PyObject *no_types = NULL;
    if (!native_types && !(native_types = no_types ? no_types : (no_types = PyTuple_New(0))))
        return NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(native_types); i++)
        if (!PyType_Check(PyTuple_GET_ITEM(native_types, i))) {
            PyErr_SetString(PyExc_TypeError, "native_types must hold types");
            return NULL;
        }
    if (site_fn != Py_None && !PyCallable_Check(site_fn)) {
        PyErr_SetString(PyExc_TypeError, "site_fn must be callable or None");
        return NULL;
    }
    if (ndarray_type != Py_None && ndarray_type != (PyObject *)&PyArray_Type) {
        PyErr_SetString(PyExc_TypeError, "ndarray_type must be numpy.ndarray or None");
        return NULL;
    }
    if (gc_head < 0 || gc_head > 256) {
        PyErr_SetString(PyExc_ValueError, "gc_head must be in [0, 256]");
        return NULL;
    }
    if (hint < 0 || (size_t)hint > MAX_OBJECTS) hint = 0;
    Walk w;
    memset(&w, 0, sizeof(w));
    w.objs.item = w.barriers.item = w.machinery.item = sizeof(PyObject *);
    w.otype.item = w.deferred.item = w.owners.item = w.out_types.item = w.refs.item =
        w.osize.item = w.offsets.item = sizeof(uint32_t);
    w.bits.item = sizeof(int64_t);
    w.big.item = sizeof(BigSize);
    w.last_key = UINT64_MAX;
    w.natives.item = sizeof(Native);
    w.types.item = sizeof(TypeInfo);
    w.osite.item = sizeof(int32_t);
    w.push_to = &w.objs;
    w.mark_as = RECORDED;
    w.gc_head = gc_head;
    w.keep_edges = keep_edges;
    w.site_fn = site_fn == Py_None ? NULL : site_fn;
    w.numpy = ndarray_type != Py_None;
    w.native_types = native_types;
#ifdef __linux__
    if (keep_edges && graph_prefix != Py_None) {
        PyObject *prefix = NULL;
        if (!PyUnicode_FSConverter(graph_prefix, &prefix)) return NULL;
        w.graph_files[0] = w.offsets.file = graph_file(PyBytes_AS_STRING(prefix));
        w.graph_files[1] = w.refs.file = graph_file(PyBytes_AS_STRING(prefix));
        Py_DECREF(prefix);
    }
#endif
    PyObject *result = NULL;
    Vec root_ptrs = VEC_OF(PyObject *), root_idx = VEC_OF(int32_t),
        unreached = VEC_OF(uint32_t), ids = VEC_OF(uint64_t), order = VEC_OF(uint32_t);
    int gc_was_enabled = PyGC_Disable();

    /* Held for the whole walk; no Python code runs that could mutate them. */
    Py_INCREF(roots);
    Py_INCREF(seeds);

    if (!(w.object_sizeof = object_sizeof())) goto fail;
    w.n_excluded_types = PyTuple_GET_SIZE(exclude_types);
    w.excluded_types = PyMem_Malloc((size_t)(w.n_excluded_types + 1) * sizeof(PyTypeObject *));
    if (!w.excluded_types) goto nomem;
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
    if (ptrmap_init(&w.blocks, 4096) < 0 || ptrmap_init(&w.type_map, 1024) < 0 ||
        vec_reserve(&w.objs, expect) < 0 || vec_reserve(&w.otype, expect) < 0 ||
        vec_reserve(&w.osize, expect) < 0 ||
        vec_reserve(&w.offsets, keep_edges ? expect + 1 : 1) < 0 ||
        vec_reserve(&w.bits, expect / 2) < 0 ||
        (keep_edges && vec_reserve(&w.refs, 3 * expect) < 0))
        goto nomem;
    VEC_AT(w.offsets, uint32_t, 0) = 0;
    w.offsets.len = 1;
#ifdef HAVE_PREFAULT
    Prefault prefault;
    Vec *const ahead[PREFAULT_VECS] = {&w.objs,    &w.otype, &w.osize,
                                       &w.offsets, &w.refs,  &w.bits};
    const int by_row[PREFAULT_VECS] = {0, 1, 1, 1, 0, 0};
    if ((size_t)n_seeds * 3 + (size_t)hint >= PREFAULT_MIN_OBJECTS &&
        prefault_start(&prefault, ahead, by_row))
        w.prefault = &prefault;
#endif

    /* The argument containers are excluded but not followed (they hold everything); not
       an empty exclude_types: that is the interpreter's one empty tuple. */
    PyObject *own[] = {roots, seeds, exclude_objects, exclude_types};
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        if (Py_SIZE(own[i]) && add_barrier(&w, own[i], 0) < 0) goto nomem;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(exclude_objects); i++)
        if (add_barrier(&w, PyList_GET_ITEM(exclude_objects, i), 1) < 0) goto nomem;

    /* Phase 1: the roots. */
    for (Py_ssize_t i = 0; i < n_roots; i++) {
        PyObject *r = PyList_GET_ITEM(roots, i);
        if (vec_push_ptr(&root_ptrs, r) < 0 || enqueue(&w, r) < 0) goto nomem;
    }
    if (drain(&w) < 0) goto nomem;

    /* Phase 2: the machinery. */
    for (Py_ssize_t i = 0; i < n_seeds; i++) {
        PyObject *o = PyList_GET_ITEM(seeds, i);
        if (is_excluded_type(&w, Py_TYPE(o)) && add_barrier(&w, o, 1) < 0) goto nomem;
    }
    if (mark_machinery(&w) < 0) goto nomem;

    /* Phase 3: whatever nothing above reached; each such seed is the next row. */
    for (Py_ssize_t i = 0; i < n_seeds; i++) {
        size_t before = w.nrows, queued = w.objs.len;
        if (enqueue(&w, PyList_GET_ITEM(seeds, i)) < 0) goto nomem;
        if (w.objs.len == queued) continue;
        if (drain(&w) < 0) goto nomem;
        if (w.nrows > before && vec_push_u32(&unreached, (uint32_t)before) < 0) goto nomem;
    }
#ifdef HAVE_PREFAULT
    if (w.prefault) prefault_stop(w.prefault);
    w.prefault = NULL;
#endif
    if (measure_held(&w) < 0) goto nomem;
    release_held(&w);
    if (number_by_address(&w, &root_ptrs, &ids, &order, &root_idx) < 0) goto nomem;
    result = finish(&w, &ids, &order, &root_idx, &unreached);
    goto fail; /* common cleanup */
nomem:
    if (!PyErr_Occurred()) PyErr_NoMemory();
fail:
#ifdef HAVE_PREFAULT
    if (w.prefault) prefault_stop(w.prefault);
#endif
    walk_free(&w);
    Vec *locals[] = {&root_ptrs, &root_idx, &unreached, &ids, &order};
    for (size_t i = 0; i < sizeof(locals) / sizeof(locals[0]); i++) vec_free(locals[i]);
    Py_DECREF(roots);
    Py_DECREF(seeds);
    if (gc_was_enabled) PyGC_Enable();
    return result;
}

/* frame_locals(frame) -> [(name, value)]: a frame's bound variables, running or finished. */
static PyObject *walker_frame_locals(PyObject *self, PyObject *frame) {
    if (!PyFrame_Check(frame)) {
        PyErr_SetString(PyExc_TypeError, "frame_locals() takes a frame");
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out && ms_frame_locals((PyFrameObject *)frame, out) < 0) Py_CLEAR(out);
    return out;
}

static PyMethodDef walker_methods[] = {
    {"walk", walker_walk, METH_VARARGS,
     "walk(roots, seeds, exclude_objects, exclude_types, ndarray_type, gc_head, size_hint=0,"
     " site_fn=None, edges=True, native_types=()) -> dict\n\n"
     "Visit every object reachable from roots, then every unreached seed; return columns\n"
     "(read-only memoryviews) and the type objects."},
    {"frame_locals", walker_frame_locals, METH_O,
     "frame_locals(frame) -> list of (name, value): the frame's bound locals, cells and free\n"
     "variables (a cell's contents), read without building f_locals."},
    {NULL, NULL, 0, NULL},
};

/* Whether sys.getsizeof adds no GC header to a static type (see ms_pre_header). */
static int calibrate(void) {
    PyObject *getsizeof = PySys_GetObject("getsizeof"); /* borrowed */
    if (!getsizeof) return 0;
    PyObject *full = PyObject_CallOneArg(getsizeof, (PyObject *)&PyLong_Type);
    PyObject *bare = PyObject_CallMethod((PyObject *)&PyType_Type, "__sizeof__", "O",
                                         (PyObject *)&PyLong_Type);
    int rc = full && bare ? 0 : -1;
    if (rc == 0) ms_static_types_bare = PyObject_RichCompareBool(full, bare, Py_EQ) == 1;
    Py_XDECREF(full);
    Py_XDECREF(bare);
    return rc;
}

static int walker_exec(PyObject *m) {
    if (PyArray_ImportNumPyAPI() < 0 || PyType_Ready(&Buffer_Type) < 0 || calibrate() < 0)
        return -1;
#ifdef HAVE_PREFAULT
    return PyModule_AddIntConstant(m, "PREFAULTS", 1);
#else
    return PyModule_AddIntConstant(m, "PREFAULTS", 0);
#endif
}

static PyModuleDef_Slot walker_slots[] = {
    {Py_mod_exec, walker_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef walker_module = {
    PyModuleDef_HEAD_INIT, "_walker", "Compiled heap walker of jupyter_memsnap.", 0,
    walker_methods, walker_slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__walker(void) { return PyModuleDef_Init(&walker_module); }
