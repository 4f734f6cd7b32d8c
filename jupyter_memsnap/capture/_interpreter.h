/* What _interpreter.c offers the compiled walker, through a capsule. */
#ifndef MEMSNAP_INTERPRETER_H
#define MEMSNAP_INTERPRETER_H
#include <stddef.h>

#define MEMSNAP_TRACEBACK_KEYS "jupyter_memsnap.capture._interpreter.TRACEBACK_KEYS"

typedef struct {
    /* keys[i] = the identity of tracemalloc's traceback of the memory block at blocks[i]
       (NULL: not traced); -1 when tracemalloc is not tracing. */
    int (*keys)(void *const *blocks, const void **keys, size_t n);
} MemsnapTracebackKeys;

#endif
