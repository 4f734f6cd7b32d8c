from typing import Any

PREFAULTS: int  # 1: a large walk faults its pages in ahead on a helper thread (Linux)

def walk(
    roots: list[object],
    seeds: list[object],
    exclude_objects: list[object],
    exclude_types: tuple[type, ...],
    ndarray_type: type | None,
    gc_head: int,
    size_hint: int = 0,
    site_fn: object = None,
    edges: bool = True,
    native_types: tuple[type, ...] = (),
    graph_prefix: str | None = None,
    /,
) -> dict[str, Any]: ...
