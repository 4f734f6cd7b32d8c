/*
 * What the interpreter keeps where no Python reference reaches it.
 *
 * interned_strings() returns the interpreter's dict of interned strings on CPython 3.12 and
 * 3.13 (None elsewhere).  Names unmarshalled with a module's code stay in it, immortal, after
 * the code that used them is gone; the dict is not tracked by the GC and no object refers to
 * it, so without this no walk reaches it.  The field is read through CPython's internal
 * headers, which is why this is its own small module built with Py_BUILD_CORE_MODULE: only
 * the minor versions whose layout was checked compile that path; any other gets None.
 *
 * TRACEBACK_KEYS, a capsule for the compiled walker (3.12 and 3.13 with the GIL): the
 * identity of tracemalloc's traceback of each of a batch of memory blocks, read from its
 * table under its lock, so that a traced snapshot builds one tuple per distinct allocation
 * site instead of one per object.  Tracebacks are interned by tracemalloc and freed only
 * when its traces are cleared, which needs the GIL the walker holds.
 *
 * untraced(on) sets or clears tracemalloc's reentrancy flag for this thread: while it is
 * set, tracemalloc does not trace the thread's allocations (as while it allocates for
 * itself).  Each traced allocation costs a traceback of every frame; a snapshot's own
 * allocations, made with it set, cost nothing and never show as the user's memory.  On 3.10
 * and 3.11 that flag is a static variable of Modules/_tracemalloc.c, so tracemalloc's hooks
 * on the PyMem_Malloc and PyObject_Malloc domains are replaced instead (the raw domain, used
 * without the GIL, keeps them) by pass-throughs to the allocators they wrap that drop the
 * trace of a block they free or move.  That is process-wide: a thread that runs meanwhile
 * (when the snapshot's Python code lets the GIL go) allocates untraced too.  The hooks come
 * back only if nothing changed the allocators meanwhile and tracemalloc still traces; a
 * tracemalloc.stop() (or stop and start) in between is left as it is.
 */
#define PY_SSIZE_T_CLEAN
#include <patchlevel.h>
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030E0000
#define MEMSNAP_INTERNED 1
#define Py_BUILD_CORE_MODULE 1
#endif
#include <Python.h>
#ifdef MEMSNAP_INTERNED
#include "internal/pycore_interp.h"
#include "internal/pycore_runtime.h"
#endif
#include "_interpreter.h"

#if defined(MEMSNAP_INTERNED) && !defined(Py_GIL_DISABLED)
/* Python/tracemalloc.c's trace_t on 3.12 and 3.13. */
typedef struct {
    size_t size;
    void *traceback;
} ms_trace;

static int traceback_keys(void *const *blocks, const void **keys, size_t n) {
    struct _tracemalloc_runtime_state *state = &_PyRuntime.tracemalloc;
    if (!state->config.tracing || !state->traces || !state->tables_lock) return -1;
    PyThread_acquire_lock(state->tables_lock, WAIT_LOCK);
    for (size_t i = 0; i < n; i++) {
        const ms_trace *trace = _Py_hashtable_get(state->traces, blocks[i]);
        keys[i] = trace ? trace->traceback : NULL;
    }
    PyThread_release_lock(state->tables_lock);
    return 0;
}

static const MemsnapTracebackKeys traceback_keys_api = {traceback_keys};
#endif

#if PY_VERSION_HEX < 0x030C0000
/* tracemalloc's hooks while set aside, and the pass-throughs installed in their place (their
   context: the allocator tracemalloc wraps). */
static struct {
    PyMemAllocatorEx mem, obj, bare_mem, bare_obj, through_mem, through_obj;
    int aside;
} hooks;

static void *through_malloc(void *ctx, size_t size) {
    PyMemAllocatorEx *a = ctx;
    return a->malloc(a->ctx, size);
}

static void *through_calloc(void *ctx, size_t nelem, size_t elsize) {
    PyMemAllocatorEx *a = ctx;
    return a->calloc(a->ctx, nelem, elsize);
}

/* The trace goes first, so that no block another thread gets at the same address loses its
   own. */
static void *through_realloc(void *ctx, void *ptr, size_t size) {
    PyMemAllocatorEx *a = ctx;
    if (ptr) (void)PyTraceMalloc_Untrack(0, (uintptr_t)ptr);
    return a->realloc(a->ctx, ptr, size);
}

static void through_free(void *ctx, void *ptr) {
    PyMemAllocatorEx *a = ctx;
    if (ptr) (void)PyTraceMalloc_Untrack(0, (uintptr_t)ptr);
    a->free(a->ctx, ptr);
}

static int same_allocator(const PyMemAllocatorEx *a, const PyMemAllocatorEx *b) {
    return a->ctx == b->ctx && a->malloc == b->malloc && a->calloc == b->calloc &&
           a->realloc == b->realloc && a->free == b->free;
}

/* The allocators tracemalloc's installed hooks wrap, or NULL when the hooks are not
   tracemalloc's: their contexts are the saved allocators of Modules/_tracemalloc.c's
   static struct {mem, raw, obj}, with one free function for all three and one malloc for
   mem and obj, another for raw. */
static PyMemAllocatorEx *tracemalloc_saved(const PyMemAllocatorEx *mem,
                                           const PyMemAllocatorEx *obj) {
    PyMemAllocatorEx raw;
    PyMem_GetAllocator(PYMEM_DOMAIN_RAW, &raw);
    PyMemAllocatorEx *saved = (PyMemAllocatorEx *)mem->ctx;
    if (!saved || raw.ctx != (void *)(saved + 1) || obj->ctx != (void *)(saved + 2) ||
        raw.free != mem->free || obj->free != mem->free || obj->malloc != mem->malloc ||
        obj->realloc != mem->realloc || raw.malloc == mem->malloc)
        return NULL;
    for (int d = 0; d < 3; d += 2)
        if (!saved[d].malloc || !saved[d].calloc || !saved[d].realloc || !saved[d].free)
            return NULL;
    return saved;
}

static int set_hooks_aside(int on) {
    PyMemAllocatorEx mem, obj;
    PyMem_GetAllocator(PYMEM_DOMAIN_MEM, &mem);
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &obj);
    if (on) {
        PyMemAllocatorEx *saved = hooks.aside ? NULL : tracemalloc_saved(&mem, &obj);
        if (!saved) return 0;
        hooks.mem = mem;
        hooks.obj = obj;
        hooks.bare_mem = saved[0];
        hooks.bare_obj = saved[2];
        PyMemAllocatorEx through = {NULL, through_malloc, through_calloc, through_realloc,
                                    through_free};
        hooks.through_mem = hooks.through_obj = through;
        hooks.through_mem.ctx = &hooks.bare_mem;
        hooks.through_obj.ctx = &hooks.bare_obj;
        PyMem_SetAllocator(PYMEM_DOMAIN_MEM, &hooks.through_mem);
        PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &hooks.through_obj);
        hooks.aside = 1;
        return 1;
    }
    if (!hooks.aside) return 0;
    /* PyTraceMalloc_Untrack of address 0 removes nothing and says whether tracemalloc
       traces, without allocating or running code. */
    int tracing = PyTraceMalloc_Untrack(0, 0) != -2;
    if (same_allocator(&mem, &hooks.through_mem) && same_allocator(&obj, &hooks.through_obj)) {
        PyMem_SetAllocator(PYMEM_DOMAIN_MEM, tracing ? &hooks.mem : &hooks.bare_mem);
        PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, tracing ? &hooks.obj : &hooks.bare_obj);
    }
    hooks.aside = 0;
    return 1;
}
#endif

/* This thread's allocations (3.10 and 3.11: every thread's) untraced while on.  Returns
   whether the state changed. */
static PyObject *untraced(PyObject *module, PyObject *arg) {
    int on = PyObject_IsTrue(arg);
    if (on < 0) return NULL;
#if PY_VERSION_HEX < 0x030C0000
    return PyBool_FromLong(set_hooks_aside(on));
#elif defined(MEMSNAP_INTERNED) && !defined(Py_GIL_DISABLED)
    Py_tss_t *key = &_PyRuntime.tracemalloc.reentrant_key;
    if (PyThread_tss_is_created(key) && (PyThread_tss_get(key) != NULL) != on)
        return PyBool_FromLong(PyThread_tss_set(key, on ? (void *)Py_True : NULL) == 0);
#endif
    Py_RETURN_FALSE;
}

static PyObject *interned_strings(PyObject *module, PyObject *unused) {
#ifdef MEMSNAP_INTERNED
    PyObject *interned = _Py_INTERP_CACHED_OBJECT(PyInterpreterState_Get(), interned_strings);
    if (interned != NULL && PyDict_CheckExact(interned)) return Py_NewRef(interned);
#endif
    Py_RETURN_NONE;
}

static PyMethodDef interpreter_methods[] = {
    {"interned_strings", interned_strings, METH_NOARGS,
     "The interpreter's dict of interned strings (3.12 and 3.13), else None."},
    {"untraced", untraced, METH_O,
     "untraced(on): skip (True) or trace again (False) this thread's allocations (3.10 and\n"
     "3.11: every thread's) while tracemalloc traces; returns whether the state changed."},
    {NULL, NULL, 0, NULL},
};

static int interpreter_exec(PyObject *module) {
#if defined(MEMSNAP_INTERNED) && !defined(Py_GIL_DISABLED)
    PyObject *capsule = PyCapsule_New((void *)&traceback_keys_api, MEMSNAP_TRACEBACK_KEYS, NULL);
    if (!capsule) return -1;
    int rc = PyModule_AddObjectRef(module, "TRACEBACK_KEYS", capsule);
    Py_DECREF(capsule);
    return rc;
#else
    return 0;
#endif
}

static PyModuleDef_Slot interpreter_slots[] = {
    {Py_mod_exec, interpreter_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef interpreter_module = {
    PyModuleDef_HEAD_INIT, "_interpreter", "What the interpreter keeps out of Python's reach.", 0,
    interpreter_methods, interpreter_slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__interpreter(void) { return PyModuleDef_Init(&interpreter_module); }
